#!/usr/bin/env bash
# Tuning all-MiniLM-L6-v2 to the SciFact domain without labelled pairs: (query, passage) pairs are
# generated from the corpus itself (each abstract's title as a query of its text, and one sentence
# as a query of the rest of its abstract), then nDCG@10 on SciFact's 300 judged test queries is
# measured before and after, whole abstracts embedded (as sentence-transformers' evaluation does).
# SciFact's training queries come without relevance judgements in ../shared/data, so they cannot
# serve as pairs here.
set -euo pipefail
cd "$(dirname "$0")"
beir=${BEIR:-../../../shared/data/beir-scifact}
tailor=${TAILOR:-tailor}
"$tailor" tune-retriever --corpus "$beir/corpus.jsonl" --beir "$beir" -o retriever \
  --max-pairs "${PAIRS:-3000}" --epochs 1 --batch 32 --max-len 128 --threads "${THREADS:-2}" "$@"
mkdir -p results
cp retriever/evaluation.json retriever/metrics.jsonl retriever/loss.svg results/
