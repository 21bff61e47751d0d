#!/usr/bin/env python3
"""A bounded load test for an OpenAI-compatible server: N concurrent streamed chat completions
(plain asyncio sockets, HTTP/1.1 and server-sent events; no third-party client in the measure).

    load_chat.py BASE_URL MODEL [--concurrency 64] [--requests 64] [--max-tokens 64]
                 [--api-key KEY] [--pid PID] [--timeout 600]

Each request is a different short question (temperature 0). Prints one JSON object: requests,
failed (with the first errors), time to first token p50/p95/max (from sending the request to the
first content chunk), completion tokens (the `usage` of the last chunk where the server sends it,
else the number of content chunks), aggregate tokens/s (all completion tokens over the wall time
of the run), wall seconds, and the server's peak RSS (VmHWM of --pid) when given.
"""
import argparse, asyncio, json, statistics, sys, time
from urllib.parse import urlparse

TOPICS = ["photosynthesis", "the water cycle", "volcanoes", "the moon's phases", "rainbows",
          "how bicycles stay upright", "tides", "earthquakes", "the seasons", "clouds",
          "magnets", "how bees make honey", "thunder", "glaciers", "coral reefs", "comets"]


def question(i):
    return f"In a few sentences, explain {TOPICS[i % len(TOPICS)]} to a child. (Question {i + 1}.)"


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


async def one(i, args, host, port, path):
    body = json.dumps({"model": args.model, "stream": True, "temperature": 0, "max_tokens": args.max_tokens,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": question(i)}]}).encode()
    head = (f"POST {path}/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n")
    if args.api_key:
        head += f"Authorization: Bearer {args.api_key}\r\n"
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        status = (await reader.readline()).decode(errors="replace").strip()
        headers = {}
        while True:
            line = (await reader.readline()).decode(errors="replace")
            if line in ("\r\n", "\n", ""):
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if " 200" not in status:
            rest = await reader.read(4000)
            return {"ok": False, "error": f"{status}: {rest[:300].decode(errors='replace')}"}
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        ttft, chunks, usage, buf = None, 0, None, b""

        async def pieces():
            if chunked:
                while True:
                    size = int((await reader.readline()).strip() or b"0", 16)
                    if size == 0:
                        return
                    data = await reader.readexactly(size)
                    await reader.readline()
                    yield data
            else:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        return
                    yield data

        done = False
        async for data in pieces():
            buf += data
            while b"\n\n" in buf or b"\r\n\r\n" in buf:
                sep = b"\r\n\r\n" if (b"\r\n\r\n" in buf and (b"\n\n" not in buf or buf.index(b"\r\n\r\n") < buf.index(b"\n\n"))) else b"\n\n"
                event, buf = buf.split(sep, 1)
                for line in event.decode(errors="replace").splitlines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        continue
                    obj = json.loads(payload)
                    if obj.get("error"):
                        return {"ok": False, "error": json.dumps(obj["error"])[:300]}
                    if obj.get("usage"):
                        usage = obj["usage"]
                    for c in obj.get("choices") or []:
                        if (c.get("delta") or {}).get("content"):
                            chunks += 1
                            if ttft is None:
                                ttft = time.perf_counter() - t0
        if not done:
            return {"ok": False, "error": "stream ended without [DONE]"}
        tokens = (usage or {}).get("completion_tokens") or chunks
        return {"ok": True, "ttft": ttft if ttft is not None else time.perf_counter() - t0, "tokens": tokens,
                "seconds": time.perf_counter() - t0}
    finally:
        writer.close()


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("model")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--api-key")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    u = urlparse(args.base)
    host, port, path = u.hostname, u.port or 80, u.path.rstrip("/")
    sem = asyncio.Semaphore(args.concurrency)

    async def guarded(i):
        async with sem:
            try:
                return await asyncio.wait_for(one(i, args, host, port, path), args.timeout)
            except Exception as e:  # a failed request is counted, not fatal
                return {"ok": False, "error": f"{type(e).__name__}: {e}"}

    t0 = time.perf_counter()
    results = await asyncio.gather(*(guarded(i) for i in range(args.requests)))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["ok"]]
    ttfts = [r["ttft"] for r in ok]
    tokens = sum(r["tokens"] for r in ok)
    out = {"requests": len(results), "failed": len(results) - len(ok),
           "errors": [r["error"] for r in results if not r["ok"]][:5],
           "concurrency": args.concurrency, "max_tokens": args.max_tokens,
           "ttft_p50_ms": round(1000 * percentile(ttfts, 50), 1) if ttfts else None,
           "ttft_p95_ms": round(1000 * percentile(ttfts, 95), 1) if ttfts else None,
           "ttft_max_ms": round(1000 * max(ttfts), 1) if ttfts else None,
           "completion_tokens": tokens, "wall_seconds": round(wall, 2),
           "aggregate_tok_s": round(tokens / wall, 1) if wall > 0 else None,
           "mean_tokens_per_request": round(statistics.mean([r["tokens"] for r in ok]), 1) if ok else None}
    if args.pid:
        out["server_peak_rss_mib"] = peak_rss_mib(args.pid)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
