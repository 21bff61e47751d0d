#!/usr/bin/env python3
"""A tiny random Qwen2 model (2 layers, width 64, GQA 4/2, Q/K/V biases, untied output) written
as a GGUF file with gguf-py, and its fp32 logits from Hugging Face transformers, so that the
qwen2 path (biases, NeoX RoPE, separate output matrix) is checked against a real reference.

    python3 scripts/reference/tiny_qwen2.py Tests/TailorModelsTests/Fixtures
"""
import json, os, sys
import numpy as np
import torch
import gguf
from transformers import Qwen2Config, Qwen2ForCausalLM

out = sys.argv[1]
torch.manual_seed(0)
cfg = Qwen2Config(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-6,
                  tie_word_embeddings=False, attn_implementation="eager")
m = Qwen2ForCausalLM(cfg).eval().float()
with torch.no_grad():
    for n, p in m.named_parameters():
        if n.endswith("bias"): p.normal_(0, 0.2)
        elif "norm" in n: p.normal_(1, 0.1)
        else: p.normal_(0, 0.08)

ids = [int(x) for x in np.random.default_rng(1).integers(0, 256, 40)]
with torch.no_grad():
    logits = m(torch.tensor([ids])).logits[0].numpy()

w = gguf.GGUFWriter(os.path.join(out, "tiny-qwen2.gguf"), "qwen2")
w.add_block_count(2); w.add_context_length(256); w.add_embedding_length(64); w.add_feed_forward_length(128)
w.add_head_count(4); w.add_head_count_kv(2); w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-6)
sd = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()}
w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
for i in range(2):
    p = f"model.layers.{i}."
    for src, dst in [("input_layernorm.weight", "attn_norm.weight"), ("self_attn.q_proj.weight", "attn_q.weight"),
                     ("self_attn.q_proj.bias", "attn_q.bias"), ("self_attn.k_proj.weight", "attn_k.weight"),
                     ("self_attn.k_proj.bias", "attn_k.bias"), ("self_attn.v_proj.weight", "attn_v.weight"),
                     ("self_attn.v_proj.bias", "attn_v.bias"), ("self_attn.o_proj.weight", "attn_output.weight"),
                     ("post_attention_layernorm.weight", "ffn_norm.weight"), ("mlp.gate_proj.weight", "ffn_gate.weight"),
                     ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.down_proj.weight", "ffn_down.weight")]:
        w.add_tensor(f"blk.{i}.{dst}", sd[p + src])
w.add_tensor("output_norm.weight", sd["model.norm.weight"])
w.add_tensor("output.weight", sd["lm_head.weight"])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
json.dump({"ids": ids, "logits": logits.tolist(), "transformers": __import__("transformers").__version__, "torch": torch.__version__},
          open(os.path.join(out, "tiny-qwen2-logits.json"), "w"))
print("wrote tiny-qwen2.gguf and tiny-qwen2-logits.json")
