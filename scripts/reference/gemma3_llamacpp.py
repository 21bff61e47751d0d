#!/usr/bin/env python3
"""Gemma 3 270M references from llama.cpp (through llama-cpp-python, CPU): token ids of hard
strings (SentencePiece tokenizer), greedy continuations with top-2 margins, and teacher-forced
top-10 logits. llama.cpp quantizes activations to 8 bits in its dot products, so an fp32 engine
agrees with it at near-ties only approximately; the tests use tolerances accordingly.

    pip install llama-cpp-python
    python3 scripts/reference/gemma3_llamacpp.py > Tests/TailorModelsTests/Fixtures/gemma3-llamacpp.json
"""
import json, os, sys
import numpy as np
import llama_cpp

path = os.path.expanduser(os.environ.get("TAILOR_HOME", "~/.cache/tailor")) + "/models/gemma-3-270m-Q4_K_M.gguf"
golden = json.load(open(os.path.join(os.path.dirname(__file__), "../../../shared/golden/smollm2-tokenizer.json")))
texts = [c["text"] for c in golden["cases"]] + ["<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", "a\n\n\nb    c\t\td"]

llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=2, logits_all=True, verbose=False, seed=0)
tok = [{"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=True, special=True)} for t in texts]

def lse(x):
    m = x.max(); return float(m + np.log(np.exp(x - m).sum()))

prompts = ["The capital of France is", "Once upon a time, in a small village by the sea,",
           "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", "Le café coûte 3,50 € — naïve façade;"]
greedy = []
for p in prompts:
    ids = llm.tokenize(p.encode("utf-8"), add_bos=True, special=True)
    llm.reset()
    llm.eval(ids)
    out, margins = [], []
    for _ in range(32):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        order = np.argsort(-logits)
        out.append(int(order[0])); margins.append(float(logits[order[0]] - logits[order[1]]))
        llm.eval([int(order[0])])
    greedy.append({"text": p, "prompt_ids": ids, "ids": out, "top2_margins": margins})

para = ("A library keeps its catalogue up to date by adding a card for every new book the day it arrives. "
        "Nobody rewrites the old cards, and nobody retrains the librarian: the knowledge lives in the drawers.")
ids = llm.tokenize(para.encode("utf-8"), add_bos=True, special=True)
llm.reset(); llm.eval(ids)
forced = []
for i in range(len(ids)):
    logits = np.array(llm.scores[i], dtype=np.float64)
    top = np.argsort(-logits)[:10]
    forced.append({"top": [[int(t), float(logits[t])] for t in top], "lse": lse(logits)})
json.dump({"llama_cpp_python": llama_cpp.__version__, "tokenizer": tok, "greedy": greedy,
           "forced": {"ids": ids, "positions": forced}}, sys.stdout, ensure_ascii=False)
