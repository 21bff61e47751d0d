#!/usr/bin/env python3
"""Checks that a `tailor tune-classifier` directory is a Hugging Face model: loads it with
transformers' AutoModelForSequenceClassification and AutoTokenizer, classifies texts, and
compares the probabilities with `tailor classify --json` on the same texts. Prints one JSON line.

    python3 scripts/reference/check_classifier.py CLASSIFIER_DIR TEXTS.jsonl [--tailor .build/release/tailor] [--limit 50]
"""
import argparse, json, subprocess, sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("texts")
    ap.add_argument("--tailor", default=".build/release/tailor")
    ap.add_argument("--limit", type=int, default=50)
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    rows = [json.loads(l) for l in open(a.texts) if l.strip()][: a.limit]
    texts = [r.get("text", r.get("input")) for r in rows]
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model)
    model.eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
        probs = torch.softmax(model(**enc).logits, -1).tolist()
    labels = [model.config.id2label[i] for i in range(len(probs[0]))]
    inp = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    out = subprocess.run([a.tailor, "classify", "-m", a.model, "--json"], input=inp, capture_output=True, text=True, check=True).stdout
    ours = [json.loads(l) for l in out.splitlines()]
    worst, agree = 0.0, 0
    for p, o in zip(probs, ours):
        worst = max(worst, max(abs(p[k] - o["scores"][labels[k]]) for k in range(len(labels))))
        agree += labels[max(range(len(p)), key=lambda k: p[k])] == o["label"]
    print(json.dumps({"texts": len(texts), "labels": labels, "architectures": model.config.architectures,
                      "same_label": agree, "max_probability_difference": worst, "transformers_loaded": True}))
    sys.exit(0 if agree == len(texts) and worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
