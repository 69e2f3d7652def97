"""Helpers shared by the CLI benchmarks (`daily.py`, `witness.py`): the release binaries, a
server process on loopback, a `zkwiki` environment per HOME, and timing of commands."""
import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
Z = os.path.join(BIN, "zkwiki")
PASSPHRASE = "benchmark passphrase"


def start(tmp, name, *args):
    """Starts `zkwiki-server ARGS`, logging to TMP/NAME.log; returns (process, URL, the key
    fingerprint it prints or None)."""
    log = open(os.path.join(tmp, f"{name}.log"), "w+")
    proc = subprocess.Popen([os.path.join(BIN, "zkwiki-server"), *args], stdout=log,
                            stderr=subprocess.STDOUT)
    text = ""
    for _ in range(100):
        log.seek(0)
        text = log.read()
        if "listening on" in text:
            fp = text.split("key fingerprint ")[1].split("\n")[0] if "fingerprint" in text else None
            return proc, text.split("listening on ")[1].split()[0], fp
        time.sleep(0.1)
    raise SystemExit(f"{name} did not start:\n{text}")


def start_server(tmp):
    """The wiki server with its data in TMP/srv: (process, URL)."""
    proc, url, _ = start(tmp, "server", "--listen", "127.0.0.1:0", "--data-dir",
                         os.path.join(tmp, "srv"))
    return proc, url


def env_for(home, url):
    """The environment of a `zkwiki` user living in HOME, talking to URL."""
    env = dict(os.environ)
    env.update(ZKWIKI_CONFIG_DIR=f"{home}/cfg", ZKWIKI_DATA_DIR=f"{home}/data", HOME=home,
               ZKWIKI_URL=url, ZKWIKI_PASSPHRASE=PASSPHRASE)
    return env


def run(env, *args, stdin=None):
    """Runs `zkwiki -q ARGS`; stops the benchmark if it fails."""
    r = subprocess.run([Z, "-q", *args], env=env, input=stdin, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"zkwiki {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")
    return r.stdout


def timed(env, n, *args, stdin=None):
    """Median and 90th percentile of n runs, in ms."""
    times = []
    for i in range(n):
        data = stdin(i) if callable(stdin) else stdin
        t = time.perf_counter()
        run(env, *args, stdin=data)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.9) - 1, 0)]
