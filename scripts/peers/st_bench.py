#!/usr/bin/env python3
"""sentence-transformers (PyTorch, CPU) measured like `tailor bench embed`: one warm-up, then
repetitions of encoding every text with the given batch size; JSON out."""
import argparse, json, os, time
import torch
from sentence_transformers import SentenceTransformer

ap = argparse.ArgumentParser()
ap.add_argument("model_dir"); ap.add_argument("texts"); ap.add_argument("-t", type=int, default=2)
ap.add_argument("--batch", type=int, default=32); ap.add_argument("-r", type=int, default=3); ap.add_argument("-n", type=int, default=2000)
a = ap.parse_args()
torch.set_num_threads(a.t)
texts = [l.strip() for l in open(a.texts, encoding="utf-8") if l.strip()][: a.n]
m = SentenceTransformer(a.model_dir, device="cpu")
m.encode(texts[:64], batch_size=a.batch)
rates = []
for _ in range(a.r):
    t0 = time.perf_counter(); m.encode(texts, batch_size=a.batch); rates.append(len(texts) / (time.perf_counter() - t0))
rates.sort()
print(json.dumps({"sentences": len(texts), "sentences_per_s": rates, "median": rates[len(rates) // 2], "torch": torch.__version__}))
