#!/usr/bin/env python3
"""Trivia questions and answers from the PyPI package chatterbot-corpus (english/trivia.yml), as
a knowledge task:

    python3 scripts/data/trivia.py OUT_DIR [--per-doc 10]

OUT_DIR/docs/trivia-NN.md   the facts as documents (for `tailor ingest`, i.e. RAG),
OUT_DIR/documents.jsonl     the same documents as {"text"} (for `tailor tune`, knowledge injection),
OUT_DIR/qa-train.jsonl      the pairs as {"prompt", "completion"} (fine-tuning on questions),
OUT_DIR/eval.jsonl          {"question", "answer"} for evaluation.
With --fresh N, the last N pairs are held back as facts that arrive later:
OUT_DIR/fresh-docs/*.md and OUT_DIR/fresh-eval.jsonl (for `tailor compare --fresh-docs/--fresh-eval`).
"""
import argparse, json, os

import yaml

from pypi_wheel import read_member


def pairs():
    data = yaml.safe_load(read_member("chatterbot-corpus", "chatterbot_corpus/data/english/trivia.yml"))
    out = []
    for conv in data["conversations"]:
        if isinstance(conv, list) and len(conv) == 2 and all(isinstance(x, (str, int)) for x in conv):
            q, a = str(conv[0]).strip(), str(conv[1]).strip().rstrip(".")
            if q.endswith("?") and a:
                out.append((q, a))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--per-doc", type=int, default=10)
    ap.add_argument("--fresh", type=int, default=0)
    a = ap.parse_args()
    qa = pairs()
    fresh = qa[len(qa) - a.fresh:] if a.fresh else []
    qa = qa[:len(qa) - a.fresh] if a.fresh else qa
    if fresh:
        os.makedirs(os.path.join(a.out, "fresh-docs"), exist_ok=True)
        for i in range(0, len(fresh), a.per_doc):
            body = "\n\n".join(f"{q} {ans}." for q, ans in fresh[i:i + a.per_doc])
            with open(os.path.join(a.out, "fresh-docs", f"new-facts-{i // a.per_doc + 1:02d}.md"), "w") as f:
                f.write(f"# New trivia facts {i // a.per_doc + 1}\n\n{body}\n")
        with open(os.path.join(a.out, "fresh-eval.jsonl"), "w") as f:
            for q, ans in fresh:
                f.write(json.dumps({"question": q, "answer": ans}, ensure_ascii=False) + "\n")
    os.makedirs(os.path.join(a.out, "docs"), exist_ok=True)
    docs = []
    for i in range(0, len(qa), a.per_doc):
        body = "\n\n".join(f"{q} {ans}." for q, ans in qa[i:i + a.per_doc])
        text = f"# Trivia facts {i // a.per_doc + 1}\n\n{body}\n"
        docs.append(text)
        with open(os.path.join(a.out, "docs", f"trivia-{i // a.per_doc + 1:02d}.md"), "w") as f:
            f.write(text)
    with open(os.path.join(a.out, "documents.jsonl"), "w") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "qa-train.jsonl"), "w") as f:
        for q, ans in qa:
            f.write(json.dumps({"prompt": q, "completion": ans + "."}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "eval.jsonl"), "w") as f:
        for q, ans in qa:
            f.write(json.dumps({"question": q, "answer": ans}, ensure_ascii=False) + "\n")
    print(f"{len(qa)} question/answer pairs, {len(docs)} documents, {len(fresh)} fresh pairs")


if __name__ == "__main__":
    main()
