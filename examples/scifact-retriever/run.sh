#!/usr/bin/env bash
# Tuning all-MiniLM-L6-v2 to the SciFact domain without labelled pairs: (query, passage) pairs are
# generated from the corpus itself, then nDCG@10 on SciFact's 300 judged test queries is measured
# before and after, whole abstracts embedded (as sentence-transformers' evaluation does).
# SciFact's training queries come without relevance judgements in ../shared/data, so they cannot
# serve as pairs here.
#   GENERATE=titles (default): each abstract's title as the query of its text;
#   GENERATE=titles,sentences PAIRS=3000: plus one sentence as the query of the rest (inverse cloze);
#   GENERATE=questions DRAFTS=300: questions SmolLM2 drafts from 300 abstracts (3 epochs).
set -euo pipefail
cd "$(dirname "$0")"
beir=${BEIR:-../../../shared/data/beir-scifact}
tailor=${TAILOR:-tailor}
generate=${GENERATE:-titles}
out=results/${generate//,/-and-}${PAIRS:+-$PAIRS}
"$tailor" tune-retriever --corpus "$beir/corpus.jsonl" --beir "$beir" -o retriever --generate "$generate" --draft-limit "${DRAFTS:-400}" \
  ${PAIRS:+--max-pairs "$PAIRS"} --epochs 1 --batch 32 --max-len 128 --threads "${THREADS:-2}" "$@"
mkdir -p "$out"
cp retriever/evaluation.json retriever/metrics.jsonl retriever/loss.svg "$out/"
