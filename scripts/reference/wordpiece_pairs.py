#!/usr/bin/env python3
"""Sentence-pair encodings (cross-encoder input) from Hugging Face tokenizers with
all-MiniLM-L6-v2's tokenizer.json, truncated longest-first to 24 tokens.

    python3 scripts/reference/wordpiece_pairs.py > Tests/TailorTokenizersTests/Fixtures/wordpiece-pairs.json
"""
import json, os, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(os.path.expanduser(os.environ.get("TAILOR_HOME", "~/.cache/tailor")) + "/models/all-MiniLM-L6-v2/tokenizer.json")
t.no_padding(); t.enable_truncation(max_length=24)
pairs = [("What is retrieval-augmented generation?", "Retrieval-augmented generation looks passages up in a collection and answers from them."),
         ("Short question", "A much longer passage " * 10), ("naïve café 日本", "ÜBER straße")]
json.dump([{"a": a, "b": b, "max_length": 24, "ids": t.encode(a, b).ids, "type_ids": t.encode(a, b).type_ids} for a, b in pairs],
          sys.stdout, ensure_ascii=False)
