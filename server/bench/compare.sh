#!/usr/bin/env bash
# Server benchmarks for docs/benchmarks.md ("Server"): zkwiki-server (release) and Otterwiki, the
# same read and write workload, one after the other on this machine.
#
#   bash server/bench/compare.sh [SECONDS]      # from the repository root
#
# Otterwiki is installed from PyPI into target/otterwiki/venv (pip install otterwiki gunicorn) and
# run as its docs describe for production: a settings file (REPOSITORY, SECRET_KEY,
# SQLALCHEMY_DATABASE_URI; anonymous read and write; CSRF off so a script can post the editor form)
# under gunicorn with 2 workers (one per core) on 127.0.0.1.
set -euo pipefail
SECS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OW="$ROOT/target/otterwiki"
PORT=18090

echo "== machine: $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -q -p server --bin zkwiki-server --example loadgen
LOADGEN=target/release/examples/loadgen

echo "== zkwiki-server"
"$LOADGEN" --secs "$SECS" --conns 4 --writers 8 --starts 10
echo "== zkwiki-server --unsafe-no-fsync, data in tmpfs (the software alone, without the disk)"
TMPDIR=/dev/shm "$LOADGEN" --secs "$SECS" --conns 4 --writers 8 --starts 3 --no-fsync 2>&1 | grep -v WARN

echo "== Otterwiki"
if [ ! -x "$OW/venv/bin/gunicorn" ]; then
  python3 -m venv "$OW/venv"
  "$OW/venv/bin/pip" install -q otterwiki gunicorn
fi
echo "otterwiki $("$OW/venv/bin/pip" show otterwiki | sed -n 's/^Version: //p')"
rm -rf "$OW/repo" "$OW/db.sqlite"
mkdir -p "$OW/repo"
git -C "$OW/repo" init -q
cat > "$OW/settings.cfg" <<EOF
REPOSITORY = '$OW/repo'
SQLALCHEMY_DATABASE_URI = 'sqlite:///$OW/db.sqlite'
SECRET_KEY = 'benchmark-secret-key-0123456789'
READ_ACCESS = 'ANONYMOUS'
WRITE_ACCESS = 'ANONYMOUS'
WTF_CSRF_ENABLED = False
EOF
export OTTERWIKI_SETTINGS="$OW/settings.cfg"
start_ms() {
  python3 - "$OW" "$PORT" <<'EOF'
import subprocess, sys, time, urllib.request
ow, port = sys.argv[1], sys.argv[2]
t = time.time()
p = subprocess.Popen([ow + "/venv/bin/gunicorn", "-w", "2", "-b", "127.0.0.1:" + port,
                      "otterwiki.server:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        if urllib.request.urlopen("http://127.0.0.1:%s/-/healthz" % port, timeout=5).status == 200:
            break
    except Exception:
        time.sleep(0.005)
print("%.0f" % ((time.time() - t) * 1000))
p.terminate()
p.wait()
EOF
}
echo "start to first answered request (ms): $(start_ms) $(start_ms) $(start_ms)"
"$OW/venv/bin/gunicorn" -w 2 -b "127.0.0.1:$PORT" otterwiki.server:app >"$OW/gunicorn.log" 2>&1 &
GPID=$!
trap 'kill $GPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/-/healthz" >/dev/null && break
  sleep 0.1
done
"$LOADGEN" --otterwiki "http://127.0.0.1:$PORT" --secs "$SECS" --conns 4
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
