#!/usr/bin/env python3
"""Reference dequantization for every GGML block type, from the numpy implementation in the
`gguf` package (independent of llama.cpp's C and of Tailor's Swift). Writes synthetic random
blocks (with finite half-precision scales) and real blocks from the model files, with their
dequantized values and a dot product against a fixed vector.

    pip install gguf
    python3 scripts/reference/quant_blocks.py > Tests/TailorKernelsTests/Fixtures/quant-blocks.json
"""
import base64, json, os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize

TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# Byte offsets of half-precision scales in each block, kept finite and modest in random blocks.
HALF_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
               "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
rng = np.random.default_rng(20261121)

def half_bytes(v):
    return np.float16(v).tobytes()

def synthetic(name, nblocks):
    t = Q[name]
    bs, tb = gguf.GGML_QUANT_SIZES[t]
    if name == "F32":
        raw = rng.standard_normal(nblocks * bs).astype(np.float32).tobytes()
    elif name == "F16":
        raw = rng.standard_normal(nblocks * bs).astype(np.float16).tobytes()
    elif name == "BF16":
        raw = (rng.standard_normal(nblocks * bs).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    else:
        b = bytearray(rng.integers(0, 256, size=nblocks * tb, dtype=np.uint8).tobytes())
        for k in range(nblocks):
            for off in HALF_FIELDS[name]:
                b[k * tb + off:k * tb + off + 2] = half_bytes(rng.uniform(-0.05, 0.05))
        raw = bytes(b)
    return raw

def entry(name, raw, source):
    t = Q[name]
    bs, tb = gguf.GGML_QUANT_SIZES[t]
    n = len(raw) // tb * bs
    vals = dequantize(np.frombuffer(raw, dtype=np.uint8), t).astype(np.float32).reshape(-1)
    assert vals.size == n
    x = np.cos(np.arange(n, dtype=np.float64) * 0.37).astype(np.float32)
    return {"type": name, "source": source, "elements": n, "bytes": base64.b64encode(raw).decode(),
            "values": [float(v) for v in vals], "x_dot": float(np.dot(vals.astype(np.float64), x.astype(np.float64)))}

def real_blocks(path, count_blocks=4):
    out = []
    if not os.path.exists(path):
        print(f"warning: {path} missing; no real blocks from it", file=sys.stderr)
        return out
    r = gguf.GGUFReader(path)
    seen = set()
    for t in r.tensors:
        name = t.tensor_type.name
        if name in seen or name not in TYPES:
            continue
        seen.add(name)
        bs, tb = gguf.GGML_QUANT_SIZES[t.tensor_type]
        raw = bytes(np.asarray(t.data).view(np.uint8).reshape(-1)[: count_blocks * tb])
        out.append(entry(name, raw, f"{os.path.basename(path)}:{t.name}"))
    return out

cache = os.path.expanduser(os.environ.get("TAILOR_HOME", "~/.cache/tailor")) + "/models/"
items = [entry(n, synthetic(n, 4 if Q[n] in (Q.F32, Q.F16, Q.BF16) or gguf.GGML_QUANT_SIZES[Q[n]][0] == 256 else 8) if n not in ("F32", "F16", "BF16") else synthetic(n, 64), "synthetic") for n in TYPES]
items += real_blocks(cache + "SmolLM2-135M-Instruct.Q4_1.gguf")
items += real_blocks(cache + "gemma-3-270m-Q4_K_M.gguf")
json.dump({"gguf": gguf.__version__ if hasattr(gguf, "__version__") else "installed", "items": items}, sys.stdout)
