#!/usr/bin/env python3
"""Daily-use CLI benchmark (docs/benchmarks.md, "CLI: daily use").

A generated wiki of COUNT pages is imported; the keys are unlocked once (`zkwiki unlock`, as a
person or an agent works); then the latency of `ls`, `cat` and `put` on an unchanged wiki, the
sustained rate of one writer, and 8 concurrent writers on one wiki (each its own HOME, as on
different machines) and 4 concurrent commands in one HOME. Prints a Markdown table.

    cargo build --release -p cli -p server
    python3 cli/bench/daily.py 1000 10000

Needs python3 and the release binaries; no other tool.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import ROOT, Z, env_for, run, start_server, timed


def writers(url, wiki, count, each, tmp):
    """`count` writers, each in its own HOME, each putting `each` pages at once."""
    homes = []
    for w in range(count):
        home = os.path.join(tmp, f"w{w}")
        env = env_for(home, url)
        env["ZKWIKI_WIKI"] = wiki
        run(env, "login", "bench")
        run(env, "unlock", "--for", "1h")
        homes.append(env)
    failures = []

    def go(env, w):
        for k in range(each):
            r = subprocess.run([Z, "-q", "put", f"conc/w{w}-{k}.md", "-"], env=env,
                               input=f"# writer {w} page {k}\n".encode(), capture_output=True)
            if r.returncode != 0:
                failures.append(r.stderr.decode().strip())

    t = time.perf_counter()
    threads = [threading.Thread(target=go, args=(env, w)) for w, env in enumerate(homes)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    secs = time.perf_counter() - t
    for env in homes:
        run(env, "lock")
    return secs, failures


def one_home(env, count):
    """`count` commands at once in one HOME (two writers, two readers)."""
    failures = []

    def go(i):
        for k in range(10):
            args = ["put", f"same-home/c{i}-{k}.md", "-"] if i % 2 == 0 else ["ls"]
            r = subprocess.run([Z, "-q", *args], env=env, input=b"# x\n", capture_output=True)
            if r.returncode != 0:
                failures.append(r.stderr.decode().strip())

    threads = [threading.Thread(target=go, args=(i,)) for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return failures


def bench(count):
    tmp = tempfile.mkdtemp(prefix="zkwiki-daily.")
    proc, url = start_server(tmp)
    try:
        subprocess.run([sys.executable, os.path.join(ROOT, "cli/bench/gen_pages.py"),
                        f"{tmp}/pages", str(count)], check=True, capture_output=True)
        env = env_for(f"{tmp}/me", url)
        run(env, "register", "bench", "--recovery-key-out", f"{tmp}/recovery.txt")
        wiki = run(env, "--json", "wiki", "create", "bench").decode()
        wiki = wiki.split('"wiki":')[1].split('"')[1]
        run(env, "import", f"{tmp}/pages")
        run(env, "unlock", "--for", "1h")
        run(env, "ls")  # the first command after the import fetches what the import created
        page = "area00/topic0/page-00000.md"
        rows = {
            "ls (unchanged wiki)": timed(env, 30, "ls"),
            "cat one page (unchanged wiki)": timed(env, 30, "cat", page),
            "search one word": timed(env, 30, "search", "kaka"),
            "put one page": timed(env, 30, "put", "bench/put.md", "-",
                                  stdin=lambda i: f"# version {i}\n".encode()),
        }
        n = 60
        t = time.perf_counter()
        for i in range(n):
            run(env, "put", f"rate/p{i}.md", "-", stdin=f"# page {i}\n".encode())
        rate = n / (time.perf_counter() - t)
        secs, failures = writers(url, wiki, 8, 25, tmp)
        same_home = one_home(env, 4)
        listed = run(env, "ls", "conc/").decode().split()
        run(env, "lock")
        return rows, rate, (8 * 25, secs, failures, len(listed)), same_home
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    counts = [int(c) for c in sys.argv[1:]] or [1000, 10000]
    results = {c: bench(c) for c in counts}
    print("| What | " + " | ".join(f"{c:,} pages" for c in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for what in results[counts[0]][0]:
        cells = [f"{results[c][0][what][0]:.0f} ms (p90 {results[c][0][what][1]:.0f})"
                 for c in counts]
        print(f"| `zkwiki {what}` | " + " | ".join(cells) + " |")
    print("| one writer, sequential `put`s | " +
          " | ".join(f"{results[c][1]:.1f} writes/s" for c in counts) + " |")
    cells = []
    for c in counts:
        total, secs, failures, listed = results[c][2]
        cells.append(f"{total} writes in {secs:.1f} s, {len(failures)} failed, {listed} listed after")
    print("| 8 writers (own HOMEs) × 25 `put`s at once | " + " | ".join(cells) + " |")
    print("| 4 commands at once in one HOME (2 writing, 2 listing) × 10 | " +
          " | ".join(f"{len(results[c][3])} failed" for c in counts) + " |")
    for c in counts:
        for f in results[c][2][2] + results[c][3]:
            print(f"failure ({c} pages): {f}", file=sys.stderr)


if __name__ == "__main__":
    main()
