#!/usr/bin/env bash
# Knowledge QA: which approach answers questions about your documents? Trivia facts from the PyPI
# package chatterbot-corpus as 76 small documents; the same documents are indexed for RAG and
# used to fine-tune (continued pre-training on {"text"}); 30 facts arrive after training
# (freshness). Writes report/report.md and report/report.html.
#   examples/compare-knowledge/run.sh [--limit N]     (from the repository root, after ./scripts/setup)
set -euo pipefail
cd "$(dirname "$0")"
TAILOR=../../.build/release/tailor
[ -f data/eval.jsonl ] || python3 ../../scripts/data/trivia.py data --per-doc 3 --fresh 30
$TAILOR compare --eval data/eval.jsonl --docs data/docs --train data/documents.jsonl --epochs 3 --lr 5e-4 --batch 4 \
  --fresh-docs data/fresh-docs --fresh-eval data/fresh-eval.jsonl --changes weekly -o report "$@"
