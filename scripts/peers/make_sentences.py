#!/usr/bin/env python3
"""2,000 real sentences of 30–60 words from BEIR SciFact abstracts (../shared/data), one per line."""
import json, random, sys
corpus = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
rnd = random.Random(7); out = []
for line in open(corpus, encoding="utf-8"):
    words = json.loads(line)["text"].split()
    i = 0
    while i + 30 <= len(words) and len(out) < n:
        k = rnd.randint(30, 60); out.append(" ".join(words[i:i + k])); i += k
    if len(out) >= n: break
print("\n".join(out))
