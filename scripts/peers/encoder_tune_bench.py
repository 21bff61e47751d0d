#!/usr/bin/env python3
"""The peer for `tailor bench tune-classifier`: PyTorch + transformers fine-tuning
BertForSequenceClassification on the CPU, as the Hugging Face Trainer does it (dynamic padding to
the longest text of each batch, dropout on, AdamW with linear warm-up and decay, clipping at 1),
same data order is not attempted, same batch size, same thread count. Prints one JSON line:
examples/s over the timed steps (the first two are warm-up), and validation accuracy when --val
is given.

    python3 scripts/peers/encoder_tune_bench.py MODEL_DIR TRAIN.jsonl [--val VAL.jsonl] [--threads 2 --batch 16 --steps 20 --epochs 1 --lr 5e-5]
"""
import argparse, json, os, random, resource, statistics, time


def load(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return [(r.get("text", r.get("input")), r["label"]) for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("train")
    ap.add_argument("--val")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (0: the whole run)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-len", type=int, default=128)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
    train = load(a.train)
    labels = sorted({l for _, l in train})
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=len(labels))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    steps_per_epoch = (len(train) + a.batch - 1) // a.batch
    total = steps_per_epoch * a.epochs if a.steps == 0 else a.steps + 2
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * total + 0.999), total)
    rng = random.Random(0)
    times, done, samples = [], 0, 0
    model.train()
    while done < total:
        order = list(range(len(train)))
        rng.shuffle(order)
        for s in range(0, len(order), a.batch):
            if done >= total:
                break
            idx = order[s:s + a.batch]
            t0 = time.perf_counter()
            enc = tok([train[i][0] for i in idx], padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
            y = torch.tensor([labels.index(train[i][1]) for i in idx])
            loss = model(**enc, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            if done >= 2:
                times.append(time.perf_counter() - t0)
                samples += len(idx)
            done += 1
    out = {"system": "pytorch+transformers", "torch": torch.__version__, "threads": a.threads, "batch": a.batch, "steps": len(times),
           "examples_per_second": samples / sum(times) if times else 0,
           "median_step_seconds": statistics.median(times) if times else 0,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if a.val:
        val = load(a.val)
        model.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(val), 64):
                part = val[s:s + 64]
                enc = tok([t for t, _ in part], padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
                pred = model(**enc).logits.argmax(-1).tolist()
                correct += sum(labels[p] == l for p, (_, l) in zip(pred, part))
        out["val_accuracy"] = correct / len(val)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
