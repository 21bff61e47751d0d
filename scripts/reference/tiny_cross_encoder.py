#!/usr/bin/env python3
"""A tiny random cross-encoder (BertForSequenceClassification, num_labels=1, WordPiece vocabulary
trained here, 2 layers, width 32) in Hugging Face's layout, with reference pair scores from
transformers, so that Tailor's cross-encoder path (pair encoding, pooler, classifier) is checked
against a real implementation.

    python3 scripts/reference/tiny_cross_encoder.py Tests/TailorModelsTests/Fixtures/tiny-cross-encoder
"""
import json, os, sys
import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
corpus = ["How often are hydraulic brakes bled?", "Hydraulic brakes are bled every twelve months with mineral oil.",
          "City tyres run at four and a half bar.", "The warranty covers the frame for life.",
          "Which model needs more pressure when loaded?", "Batteries are covered for 800 charge cycles."] * 20
wp = BertWordPieceTokenizer(lowercase=True)
wp.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
wp.save_model(out)
tok = BertTokenizerFast(vocab_file=os.path.join(out, "vocab.txt"), do_lower_case=True)
tok.save_pretrained(out)
torch.manual_seed(0)
cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=64, num_labels=1)
m = BertForSequenceClassification(cfg).eval()
m.save_pretrained(out, safe_serialization=True)
pairs = [("How often are hydraulic brakes bled?", "Hydraulic brakes are bled every twelve months with mineral oil."),
         ("How often are hydraulic brakes bled?", "City tyres run at four and a half bar."),
         ("warranty", "The warranty covers the frame for life. " * 6),
         ("Which model needs more pressure when loaded?", "Batteries are covered for 800 charge cycles.")]
enc = tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation="longest_first", max_length=64, return_tensors="pt")
with torch.no_grad():
    scores = m(**enc).logits[:, 0].tolist()
ids = [tok(a, b, truncation="longest_first", max_length=64)["input_ids"] for a, b in pairs]
json.dump({"pairs": pairs, "input_ids": ids, "scores": scores}, open(os.path.join(out, "reference.json"), "w"))
for f in ["tokenizer.json", "special_tokens_map.json"]:
    p = os.path.join(out, f)
    if f != "tokenizer.json" and os.path.exists(p): os.remove(p)
print("wrote", sorted(os.listdir(out)))
