#!/usr/bin/env python3
"""What a witness costs (docs/benchmarks.md, "Witnesses").

Two wikis of COUNT pages on one real server, one without witnesses and one that lists a real
witness (`zkwiki-server witness`, policy warn), keys unlocked once (`zkwiki unlock`): the latency
of `ls` and `cat` on an unchanged wiki and of `put` (which also submits the new head to the
witness), each median and 90th percentile of N runs; then the witness alone: checkpoint queries
per second from 8 threads, each a fresh nonce and a co-signature. Prints a Markdown table.

    cargo build --release -p cli -p server
    python3 cli/bench/witness.py 1000 50

Needs python3 and the release binaries; no other tool.
"""
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import env_for, run, start, start_server, timed


def queries_per_second(url, wiki, seconds=5, threads=8):
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i):
        while time.perf_counter() < stop:
            nonce = os.urandom(32).hex()
            with urllib.request.urlopen(f"{url}/witness/v1/wikis/{wiki}/checkpoint?nonce={nonce}") as r:
                assert len(json.load(r)["cosignature"]) > 200
            done[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(done) / seconds


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with tempfile.TemporaryDirectory() as tmp:
        srv, url = start_server(tmp)
        wit, wurl, fp = start(tmp, "witness", "--data-dir", os.path.join(tmp, "wit"), "witness",
                              "--listen", "127.0.0.1:0")
        try:
            home = os.path.join(tmp, "home")
            env = env_for(home, url)
            run(env, "register", "bench", "--recovery-key-out", os.path.join(tmp, "rk"))
            pages = os.path.join(tmp, "pages")
            for i in range(count):
                os.makedirs(os.path.join(pages, f"d{i % 20}"), exist_ok=True)
                with open(os.path.join(pages, f"d{i % 20}", f"p{i}.md"), "w") as f:
                    f.write(f"# page {i}\n\nsome text about topic {i % 97} and more\n" * 4)
            run(env, "unlock", "--for", "1h")
            rows = []
            for name, extra in [("none", []),
                                ("one witness", ["--witness", wurl, "--witness-fingerprint", fp])]:
                wiki = json.loads(run(env, "--json", "wiki", "create", name.replace(" ", "-"),
                                      *extra))["wiki"]
                run(env, "-w", wiki, "import", pages)
                run(env, "-w", wiki, "ls")
                ls = timed(env, n, "-w", wiki, "ls")
                cat = timed(env, n, "-w", wiki, "cat", "d1/p1.md")
                put = timed(env, n, "-w", wiki, "put", "bench.md", "-",
                            stdin=lambda i: f"# write {i}\n".encode())
                rows.append((name, ls, cat, put, wiki))
            qps = queries_per_second(wurl, rows[1][4])
            print(f"{count} pages, {n} runs each; median / p90 in ms\n")
            print("| witnesses | `ls` | `cat` | `put` |")
            print("|---|---|---|---|")
            for name, ls, cat, put, _ in rows:
                print(f"| {name} | {ls[0]:.1f} / {ls[1]:.1f} | {cat[0]:.1f} / {cat[1]:.1f} "
                      f"| {put[0]:.1f} / {put[1]:.1f} |")
            print(f"\nwitness checkpoint queries (8 threads, fresh nonce each): {qps:.0f}/s")
        finally:
            if "env" in locals():
                subprocess.run([Z, "-q", "lock"], env=env, capture_output=True)
            srv.terminate()
            wit.terminate()
            srv.wait()
            wit.wait()


if __name__ == "__main__":
    main()
