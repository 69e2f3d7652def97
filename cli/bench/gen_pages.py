#!/usr/bin/env python3
"""Generates a wiki-like folder of markdown pages for the CLI benchmarks (docs/benchmarks.md).

    python3 cli/bench/gen_pages.py OUT_DIR [COUNT=10000] [SEED=1]

Sizes look like a real wiki: log-normal around a median of ~3 KiB, 1% of pages ~100 KiB.
Text is drawn from a fixed vocabulary of 20,000 pseudo-words with a Zipf-like distribution, so
the search index has realistic term counts. 100 folders, two levels deep; YAML front matter on
every page. Deterministic for a given seed.
"""

import os
import random
import sys

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
syll = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ban", "cor", "del", "fin", "gar", "hul"]
vocab = sorted({"".join(rng.choice(syll) for _ in range(rng.randint(2, 4))) for _ in range(25000)})[:20000]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
folders = [f"area{a:02d}/topic{t}" for a in range(20) for t in range(5)]


def text(size):
    words = rng.choices(vocab, weights=weights, k=max(1, size // 11))
    lines, line = [], []
    for i, w in enumerate(words):
        line.append(w)
        if len(line) >= 12:
            lines.append(" ".join(line))
            line = []
        if i % 120 == 119:
            lines.append("")
            lines.append("## " + " ".join(rng.choices(vocab, k=3)))
    lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


for i in range(count):
    size = 100 * 1024 if i % 100 == 99 else int(min(60000, max(300, rng.lognormvariate(8.0, 0.6))))
    folder = folders[i % len(folders)]
    path = os.path.join(out, folder, f"page-{i:05d}.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    body = f"---\ntitle: Page {i}\ntags: [{rng.choice(vocab)}, {rng.choice(vocab)}]\n---\n# Page {i}\n\n" + text(size)
    with open(path, "w") as f:
        f.write(body)
