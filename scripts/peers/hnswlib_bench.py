#!/usr/bin/env python3
"""The hnswlib side of `tailor bench search`: the same vectors, queries and exact top-10
(written by `tailor bench search --export DIR`), the same graph parameters (M=16,
ef_construction=200, ef=64, cosine), the same threads. Prints JSON, one object per size.

Also times numpy's exact search (one matrix-vector product per query) for reference.
"""
import glob, json, os, re, sys, time

import hnswlib
import numpy as np

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/benchsearch"
threads = int(os.environ.get("THREADS", "2"))
queries = np.load(os.path.join(d, "queries.npy"))
out = []
for path in sorted(glob.glob(os.path.join(d, "vectors-*.npy")), key=lambda p: int(re.findall(r"(\d+)", os.path.basename(p))[0])):
    n = int(re.findall(r"(\d+)", os.path.basename(path))[0])
    x = np.load(path, mmap_mode="r")
    truth = np.load(os.path.join(d, f"truth-{n}.npy"))
    x = np.ascontiguousarray(x)
    idx = hnswlib.Index(space="cosine", dim=x.shape[1])
    idx.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    idx.set_num_threads(threads)
    t0 = time.perf_counter()
    idx.add_items(x, np.arange(n))
    build = time.perf_counter() - t0
    idx.set_ef(64)
    idx.set_num_threads(1)
    times, hit = [], 0
    for qi, q in enumerate(queries):
        s = time.perf_counter()
        labels, _ = idx.knn_query(q[None, :], k=10)
        times.append((time.perf_counter() - s) * 1000)
        hit += len(set(labels[0].tolist()) & set(truth[qi].tolist()))
    ex = []
    for q in queries[:50]:
        s = time.perf_counter()
        np.argpartition(-(x @ q), 10)[:10]
        ex.append((time.perf_counter() - s) * 1000)
    out.append({"chunks": n, "hnswBuildSeconds": build, "hnswP50ms": float(np.percentile(times, 50)),
                "hnswP95ms": float(np.percentile(times, 95)), "hnswRecallAt10": hit / (10 * len(queries)),
                "numpyExactP50ms": float(np.percentile(ex, 50)), "numpyExactP95ms": float(np.percentile(ex, 95)),
                "threads": threads, "hnswlib": getattr(hnswlib, "__version__", "?")})
    print(json.dumps(out[-1]), flush=True)
