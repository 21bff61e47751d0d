#!/usr/bin/env python3
"""Checks that an adapter written by `tailor tune` means the same thing everywhere: greedy
continuations of a prompt by (1) Python transformers + peft loading adapter_model.safetensors,
(2) llama.cpp (llama-cpp-python) loading adapter.gguf with --lora, (3) `tailor generate --adapter`,
and (4) `tailor generate` on the model written by `tailor merge`. Prints the four token
sequences and exits non-zero when they differ.

    python3 scripts/reference/check_adapter.py MODEL.gguf ADAPTER_DIR [--prompt TEXT] [-n 24] [--tailor .build/release/tailor]
"""
import argparse, json, os, subprocess, sys, tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("adapter")
    ap.add_argument("--prompt", default="The three most important things about a good movie review are")
    ap.add_argument("-n", type=int, default=24)
    ap.add_argument("--tailor", default=".build/release/tailor")
    a = ap.parse_args()
    model = os.path.abspath(a.model)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PeftModel
    tok = AutoTokenizer.from_pretrained(os.path.dirname(model), gguf_file=os.path.basename(model))
    base = AutoModelForCausalLM.from_pretrained(os.path.dirname(model), gguf_file=os.path.basename(model), torch_dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, a.adapter)
    peft_model.eval()
    ids = tok(a.prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = peft_model.generate(ids, max_new_tokens=a.n, do_sample=False)
    results = {"peft": out[0, ids.shape[1]:].tolist()}

    from llama_cpp import Llama
    llm = Llama(model_path=model, lora_path=os.path.join(a.adapter, "adapter.gguf"), n_ctx=256, n_threads=2, verbose=False, seed=0)
    toks = llm.tokenize(a.prompt.encode(), add_bos=False, special=True)
    gen = []
    for t in llm.generate(toks, temp=0.0, top_k=1, reset=True):
        if t == llm.token_eos() or len(gen) >= a.n:
            break
        gen.append(t)
    results["llama.cpp --lora"] = gen

    def tailor(args):
        r = subprocess.run([a.tailor, "generate", "-p", a.prompt, "-n", str(a.n), "--temp", "0", "--json"] + args,
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)["tokens"]
    results["tailor --adapter"] = tailor(["-m", model, "--adapter", a.adapter, "--precision", "exact"])
    with tempfile.TemporaryDirectory() as d:
        merged = os.path.join(d, "merged.gguf")
        subprocess.run([a.tailor, "merge", "-m", model, "--adapter", a.adapter, "-o", merged, "--type", "f32"], check=True, capture_output=True)
        results["tailor merge (f32)"] = tailor(["-m", merged, "--precision", "exact"])
    for k, v in results.items():
        print(f"{k:22s} {v}")
    ref = results["peft"]
    same = {k: v[:len(ref)] == ref[:len(v)] and len(v) > 0 for k, v in results.items()}
    print(json.dumps({"prompt": a.prompt, "tokens": a.n, "same_as_peft": same, "results": results}))
    sys.exit(0 if all(same.values()) else 1)


if __name__ == "__main__":
    main()
