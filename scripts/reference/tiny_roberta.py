#!/usr/bin/env python3
"""A tiny random RoBERTa (byte-level BPE tokenizer trained here, 2 layers, width 32) saved in
Hugging Face's layout, with reference token ids and mean-pooled embeddings from transformers,
so the RoBERTa path (BPE tokenizer, <s>…</s>, position ids offset by the padding index) is
checked against a real implementation.

    python3 scripts/reference/tiny_roberta.py Tests/TailorModelsTests/Fixtures/tiny-roberta
"""
import json, os, sys
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaModel, PreTrainedTokenizerFast
from tokenizers.processors import RobertaProcessing

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
corpus = ["Retrieval finds passages; fine-tuning changes weights.", "The capital of France is Paris.",
          "Tokenizers split text into pieces, and byte-level BPE never needs an unknown token.",
          "café naïve Zürich 日本語 emoji 🎉 numbers 12345 and CamelCaseWords!"] * 20
bpe = ByteLevelBPETokenizer()
bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
bpe._tokenizer.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                              unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
tok.save_pretrained(out)
torch.manual_seed(0)
cfg = RobertaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                    bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
m = RobertaModel(cfg, add_pooling_layer=False).eval()
m.save_pretrained(out, safe_serialization=True)
texts = ["The capital of France is Paris.", "  leading spaces and tabs\tok", "Unseen words: zyxwvut qqq 😀", "a"]
enc = tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    h = m(**enc).last_hidden_state
mask = enc["attention_mask"].unsqueeze(-1).float()
pooled = (h * mask).sum(1) / mask.sum(1)
ids = [tok(t)["input_ids"] for t in texts]
json.dump({"texts": texts, "input_ids": ids, "mean_pooled": pooled.tolist()}, open(os.path.join(out, "reference.json"), "w"), ensure_ascii=False)
print("wrote", sorted(os.listdir(out)))
