#!/usr/bin/env python3
"""llama.cpp (through llama-cpp-python) measured the way `tailor bench` measures: prefill of p
random tokens in one batch, decode of n tokens one at a time, after a warm-up; JSON out."""
import argparse, json, resource, time
import numpy as np
import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("-t", type=int, default=2); ap.add_argument("-p", type=int, default=512)
ap.add_argument("-n", type=int, default=128); ap.add_argument("-r", type=int, default=5)
a = ap.parse_args()
llm = llama_cpp.Llama(model_path=a.model, n_ctx=a.p + a.n + 8, n_batch=max(a.p, 1), n_ubatch=max(a.p, 1),
                      n_threads=a.t, n_threads_batch=a.t, verbose=False, logits_all=False)
rng = np.random.default_rng(1234)
V = llm.n_vocab()
pp, tg = [], []
for rep in range(a.r + 1):
    toks = [int(t) for t in rng.integers(0, V, max(a.p, 1))]
    if a.p:
        llm.reset(); t0 = time.perf_counter(); llm.eval(toks); dt = time.perf_counter() - t0
        if rep: pp.append(a.p / dt)
    if a.n:
        llm.reset(); t0 = time.perf_counter()
        for i in range(a.n): llm.eval([toks[i % len(toks)]])
        dt = time.perf_counter() - t0
        if rep: tg.append(a.n / dt)
print(json.dumps({"prefill": pp, "decode": tg, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "llama_cpp_python": llama_cpp.__version__}))
