#!/usr/bin/env python3
"""MCP read latency: drives `zkwiki mcp` over stdio with a plain JSON-RPC client.

Usage (from the repository root, after `cargo build --release -p cli -p server`):

    python3 cli/bench/mcp_latency.py [--pages 200] [--calls 300]

Starts a release zkwiki-server on 127.0.0.1 (random port, temp data dir), registers a user,
writes N pages of ~3 KiB, grants a read-only agent, then times `tools/call read_page` round trips
(the session verified the wiki once; each call checks the server's head state and answers from the
verified head and its page cache while the wiki is unchanged). Prints p50/p99/mean in milliseconds.
"""
import argparse, json, os, random, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZK = os.path.join(ROOT, "target/release/zkwiki")
SRV = os.path.join(ROOT, "target/release/zkwiki-server")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--calls", type=int, default=300)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    srv = subprocess.Popen([SRV, "--listen", "127.0.0.1:0", "--data-dir", f"{tmp}/srv"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = re.search(r"(http://\S+)", srv.stdout.readline()).group(1)
    env = dict(os.environ, ZKWIKI_CONFIG_DIR=f"{tmp}/cfg", ZKWIKI_DATA_DIR=f"{tmp}/data",
               ZKWIKI_PASSPHRASE="bench passphrase", ZKWIKI_TEST_KDF_FLOOR="1", ZKWIKI_URL=url)

    def zk(*args, stdin=None):
        return subprocess.run([ZK, *args], env=env, input=stdin, check=True,
                              capture_output=True, text=True).stdout

    try:
        zk("register", "bench", "--recovery-key-out", f"{tmp}/rk.txt")
        zk("wiki", "create", "bench")
        src = f"{tmp}/pages"
        for i in range(a.pages):
            os.makedirs(f"{src}/notes", exist_ok=True)
            with open(f"{src}/notes/page-{i}.md", "w") as f:
                f.write(f"# Page {i}\n" + ("lorem ipsum dolor sit amet " * 110) + "\n")
        zk("import", src)
        zk("agent", "grant", "bench-agent", "--role", "read", "--expires", "1h",
           "--out", f"{tmp}/agent.json")
        mcp = subprocess.Popen([ZK, "mcp", "--key", f"{tmp}/agent.json"], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        next_id = [0]

        def call(method, params):
            next_id[0] += 1
            mcp.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next_id[0], "method": method,
                                        "params": params}) + "\n")
            mcp.stdin.flush()
            while True:
                msg = json.loads(mcp.stdout.readline())
                if msg.get("id") == next_id[0]:
                    return msg

        call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "bench", "version": "0"}})
        mcp.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        mcp.stdin.flush()
        times = []
        for _ in range(a.calls):
            path = f"notes/page-{random.randrange(a.pages)}.md"
            t0 = time.perf_counter()
            r = call("tools/call", {"name": "read_page", "arguments": {"path": path}})
            times.append((time.perf_counter() - t0) * 1000)
            assert not r["result"].get("isError"), r
        times.sort()
        p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
        print(json.dumps({"pages": a.pages, "calls": a.calls, "p50_ms": round(p(0.50), 2),
                          "p99_ms": round(p(0.99), 2), "mean_ms": round(statistics.mean(times), 2)}))
        mcp.kill()
    finally:
        srv.kill()


if __name__ == "__main__":
    sys.exit(main())
