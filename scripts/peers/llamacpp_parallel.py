#!/usr/bin/env python3
"""llama.cpp's batched decoding (through llama-cpp-python's C API) measured the way
`tailor bench --parallel` measures: N sequences, each a different p-token prompt of random
tokens, all prompts computed first (one llama_decode), then n greedy tokens per sequence, one
llama_decode per step carrying a token for every sequence id. Aggregate decode tokens/s counts
the llama_decode calls only (the greedy picks are outside the timing, as Tailor's steps time its
forward passes only); medians over repetitions after a warm-up. JSON out."""
import argparse, ctypes, json, resource, statistics, time
import numpy as np
import llama_cpp as L

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("-t", type=int, default=2)
ap.add_argument("--parallel", default="1,4,16,64"); ap.add_argument("-p", type=int, default=64)
ap.add_argument("-n", type=int, default=128); ap.add_argument("-r", type=int, default=3)
ap.add_argument("--unified", action="store_true", help="one KV buffer shared by the sequences (default: one per sequence)")
a = ap.parse_args()

# Quiet: llama.cpp logs every tensor at load.
_quiet = L.llama_log_callback(lambda level, text, data: None)
L.llama_log_set(_quiet, ctypes.c_void_p())
L.llama_backend_init()
mp = L.llama_model_default_params()
model = L.llama_model_load_from_file(a.model.encode(), mp)
vocab = L.llama_model_get_vocab(model)
V = L.llama_vocab_n_tokens(vocab)
out = []
for width in [int(x) for x in a.parallel.split(",")]:
    cp = L.llama_context_default_params()
    cp.n_ctx = width * (a.p + a.n + 8); cp.n_batch = max(width * a.p, width); cp.n_ubatch = min(cp.n_batch, 512)
    cp.n_seq_max = width; cp.n_threads = a.t; cp.n_threads_batch = a.t; cp.kv_unified = a.unified; cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    batch = L.llama_batch_init(max(width * a.p, width), 0, 1)
    rates, steps, prefill = [], [], []
    for rep in range(a.r + 1):
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
        rng = np.random.default_rng(1234 + width * 7919 + rep)
        k = 0
        for s in range(width):
            toks = rng.integers(0, V, a.p)
            for i, tok in enumerate(toks):
                batch.token[k] = int(tok); batch.pos[k] = i; batch.n_seq_id[k] = 1; batch.seq_id[k][0] = s
                batch.logits[k] = 1 if i == a.p - 1 else 0
                k += 1
        batch.n_tokens = k
        t0 = time.perf_counter(); assert L.llama_decode(ctx, batch) == 0; pdt = time.perf_counter() - t0
        nxt = []
        for s in range(width):
            lg = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s * a.p + a.p - 1), shape=(V,))
            nxt.append(int(lg.argmax()))
        decode_time, step_times = 0.0, []
        for step in range(a.n - 1):
            for s in range(width):
                batch.token[s] = nxt[s]; batch.pos[s] = a.p + step; batch.n_seq_id[s] = 1; batch.seq_id[s][0] = s; batch.logits[s] = 1
            batch.n_tokens = width
            t0 = time.perf_counter(); assert L.llama_decode(ctx, batch) == 0; dt = time.perf_counter() - t0
            decode_time += dt; step_times.append(dt)
            for s in range(width):
                lg = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s), shape=(V,))
                nxt[s] = int(lg.argmax())
        if rep:
            rates.append(width * (a.n - 1) / decode_time); steps += step_times; prefill.append(width * a.p / pdt)
    L.llama_batch_free(batch); L.llama_free(ctx)
    steps.sort()
    out.append({"sequences": width, "decode_tok_s": statistics.median(rates), "ms_per_token_p50": steps[len(steps) // 2] * 1000,
                "ms_per_token_p95": steps[min(len(steps) - 1, int(len(steps) * 0.95))] * 1000, "prefill_tok_s": statistics.median(prefill)})
print(json.dumps({"parallel": out, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "llama_cpp_python": L.__version__}))
