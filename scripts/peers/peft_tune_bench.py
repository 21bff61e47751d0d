#!/usr/bin/env python3
"""The peer for `tailor bench tune`: PyTorch + PEFT LoRA training on the CPU, same model (the GGUF,
dequantized to fp32 by transformers), same shape (rank, all projections, batch × seq random
tokens, every token trained), AdamW, same thread count. Prints one JSON line.

    python3 scripts/peers/peft_tune_bench.py MODEL.gguf [--threads 2 --rank 8 --batch 8 --seq 256 --steps 5]
"""
import argparse, json, os, resource, statistics, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.model)), gguf_file=os.path.basename(a.model), torch_dtype=torch.float32)
    model.config.use_cache = False
    cfg = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, bias="none",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-9)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq), generator=g)
    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step > 0:
            times.append(dt)
    med = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peer": "pytorch+peft", "torch": torch.__version__, "peft": __import__("peft").__version__,
                      "tokens_per_second": a.batch * a.seq / med, "median_step_seconds": med,
                      "peak_resident_bytes": peak, "threads": a.threads, "rank": a.rank, "batch": a.batch, "seq": a.seq}))


if __name__ == "__main__":
    main()
