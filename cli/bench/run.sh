#!/usr/bin/env bash
# CLI benchmarks (docs/benchmarks.md, "CLI"): a generated 10,000-page wiki imported with
# `zkwiki import`, then `zkwiki clone` (git clone of the ciphertext over smart HTTP + verify +
# decrypt + write) against `git clone` + `git-crypt unlock` of the same plaintext pages, offline
# `zkwiki decrypt`, `ls` and search latency. Needs: release builds of zkwiki and zkwiki-server,
# git, git-crypt (apt-get install -y git-crypt), python3.
#
#   cargo build --release -p cli -p server && bash cli/bench/run.sh [COUNT=10000]
#   SKIP_GIT_CRYPT=1 bash cli/bench/run.sh       # without the git-crypt comparison
set -euo pipefail
COUNT=${1:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release
W=$(mktemp -d /tmp/zkwiki-bench.XXXXXX)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$W"' EXIT
now() { date +%s.%N; }
took() { python3 -c "print(f'{$(now) - $1:.2f}')"; }

python3 "$ROOT/cli/bench/gen_pages.py" "$W/pages" "$COUNT"
echo "pages: $COUNT, $(du -sb "$W/pages" | cut -f1) bytes of plaintext"

"$BIN/zkwiki-server" --listen 127.0.0.1:0 --data-dir "$W/srv" >"$W/srv.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do grep -q 'listening on' "$W/srv.log" && break; sleep 0.1; done
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$W/srv.log" | head -1)
export ZKWIKI_CONFIG_DIR=$W/cfg ZKWIKI_DATA_DIR=$W/data ZKWIKI_URL=$URL
export ZKWIKI_PASSPHRASE="benchmark passphrase"
Z=$BIN/zkwiki
$Z -q register bench >/dev/null
$Z -q wiki create bench >/dev/null

t=$(now); $Z -q import "$W/pages" >/dev/null; echo "import: $(took "$t") s"
t=$(now); $Z ls >/dev/null; echo "ls, first after the import (fetches the objects the import created): $(took "$t") s"
t=$(now); $Z ls >/dev/null; echo "ls, warm (git fetch, verify every blob, Argon2id, index): $(took "$t") s"
ZKWIKI_TIMING=1 $Z ls 2>&1 >/dev/null | sed 's/^/    /'
t=$(now); echo "one more line" | $Z -q put area00/topic0/page-00000.md >/dev/null; echo "put one page (the index may lag: not re-uploaded): $(took "$t") s"
rm -rf "$ZKWIKI_DATA_DIR/wikis"
t=$(now); $Z ls >/dev/null; echo "ls, cold (a new machine: fetches the whole wiki): $(took "$t") s"
cd "$W"
t=$(now); $Z -q clone bench clone >/dev/null; echo "zkwiki clone (git clone + verify + decrypt + write): $(took "$t") s"
t=$(now); $Z -q decrypt clone plain >/dev/null; echo "zkwiki decrypt (offline, from the clone): $(took "$t") s"
diff -r "$W/pages" "$W/plain" >/dev/null || echo "(the decrypted pages differ from the generated ones only by the put above)"
ix=$(git -C clone/.zkwiki/git ls-tree -r -l HEAD pages | sort -k4 -n | tail -1 | awk '{print $4}')
echo "largest blob (the search index): $ix bytes"
for q in "kaka" "banfin" "ruzeti" "kaka lomi" "cor*" "page 4242"; do
  us=$($Z --json search $q | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["search_us"], len(d["hits"]))')
  echo "search '$q': ${us% *} µs, ${us#* } hits"
done

# git-crypt on the same plaintext (SKIP_GIT_CRYPT=1 skips it: its unlock takes minutes).
if [ -z "${SKIP_GIT_CRYPT:-}" ]; then
mkdir "$W/gc" && cd "$W/gc" && git init -q -b main && git-crypt init >/dev/null
printf '* filter=git-crypt diff=git-crypt\n.gitattributes !filter !diff\n' >.gitattributes
cp -r "$W/pages/." . && git add -A && git -c user.name=b -c user.email=b@invalid commit -qm pages
git-crypt export-key "$W/gc.key"
cd "$W"
t=$(now); git clone -q "file://$W/gc" gcclone; echo "git clone of the git-crypt repository (file://): $(took "$t") s"
t=$(now); (cd gcclone && git-crypt unlock "$W/gc.key"); echo "git-crypt unlock (decrypts every file): $(took "$t") s"

fi

# Key rotation with re-encryption of every page (what follows revoking someone who may have kept
# the old keys): new epoch, then every page re-encrypted and committed in batches.
cd "$W"
t=$(now); $Z -q rotate --reencrypt >/dev/null; echo "rotate --reencrypt ($COUNT pages, end to end against the server): $(took "$t") s"
t=$(now); $Z ls >/dev/null; echo "ls after the re-encryption (fetches the new objects): $(took "$t") s"
