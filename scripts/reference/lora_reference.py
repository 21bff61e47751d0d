#!/usr/bin/env python3
"""Reference loss and LoRA gradients of SmolLM2-135M-Instruct (the Q4_1 GGUF, dequantized by
transformers) under PyTorch + PEFT, for Tests/TailorTuningTests/Fixtures/lora-reference.*.

LoRA r=4, alpha=8, all seven projections, no dropout; A and B are set by a formula the Swift
test reproduces (in Hugging Face row order; the test maps q/k rows to the GGUF order).
Two sequences of fixed token ids, loss masked on their first tokens, mean over trained tokens.

    python3 scripts/reference/lora_reference.py ~/.cache/tailor/models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json, math, os, sys
import numpy as np
import torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LAYERS_SAVED = [0, 15, 29]
RANK, ALPHA = 4, 8.0


def formula(rows, cols, layer, target, which):
    i = np.arange(rows, dtype=np.float64)[:, None]
    j = np.arange(cols, dtype=np.float64)[None, :]
    t = TARGETS.index(target)
    if which == "A":
        return 0.02 * np.sin(0.37 * i + 0.11 * j + 1.3 * layer + t)
    return 0.02 * np.cos(0.23 * i + 0.19 * j + 0.7 * layer + 2 * t)


def main():
    path = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "Tests/TailorTuningTests/Fixtures"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32)
    model.config.use_cache = False
    cfg = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none")
    model = get_peft_model(model, cfg)
    model.eval()  # no dropout anywhere
    layers = model.base_model.model.model.layers
    with torch.no_grad():
        for l, layer in enumerate(layers):
            for t in TARGETS:
                mod = getattr(layer.self_attn, t, None) or getattr(layer.mlp, t)
                a = mod.lora_A["default"].weight
                b = mod.lora_B["default"].weight
                a.copy_(torch.tensor(formula(a.shape[0], a.shape[1], l, t, "A"), dtype=torch.float32))
                b.copy_(torch.tensor(formula(b.shape[0], b.shape[1], l, t, "B"), dtype=torch.float32))

    seqs = [
        [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 314, 4211, 2, 198, 1, 4093],
        [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2],
    ]
    masked_prefix = [6, 3]   # targets for the first positions are not trained
    total, count = 0.0, 0
    for ids, skip in zip(seqs, masked_prefix):
        x = torch.tensor([ids])
        logits = model(input_ids=x).logits[0]          # [T, V]
        targets = torch.tensor(ids[1:])
        lp = torch.nn.functional.cross_entropy(logits[:-1], targets, reduction="none")
        lp = lp[skip:]
        total = total + lp.sum()
        count += lp.numel()
    loss = total / count
    loss.backward()

    tensors = {}
    for l in LAYERS_SAVED:
        for t in TARGETS:
            mod = getattr(layers[l].self_attn, t, None) or getattr(layers[l].mlp, t)
            tensors[f"layers.{l}.{t}.lora_A.grad"] = mod.lora_A["default"].weight.grad.detach().clone().contiguous()
            tensors[f"layers.{l}.{t}.lora_B.grad"] = mod.lora_B["default"].weight.grad.detach().clone().contiguous()
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "lora-reference.safetensors"))
    with open(os.path.join(out_dir, "lora-reference.json"), "w") as f:
        json.dump({"rank": RANK, "alpha": ALPHA, "targets": TARGETS, "layers": LAYERS_SAVED,
                   "sequences": seqs, "maskedPrefix": masked_prefix, "loss": loss.item(), "count": count,
                   "torch": torch.__version__, "transformers": __import__("transformers").__version__,
                   "peft": __import__("peft").__version__}, f, indent=1)
    print("loss", loss.item(), "count", count)


if __name__ == "__main__":
    main()
