#!/usr/bin/env python3
"""Reference losses and gradients of all-MiniLM-L6-v2 under PyTorch + transformers, for
Tests/TailorTuningTests/Fixtures/encoder-reference.*.

1. Classification (BertForSequenceClassification, 2 labels): three texts of different lengths,
   padded with an attention mask, eval mode (no dropout), mean cross-entropy. The new
   classifier's weights are saved so the Swift test uses the same ones.
2. Retrieval: mean pooling over the mask, L2 normalization, multiple-negatives ranking loss
   (scale 20) on two (query, passage) pairs, as sentence-transformers computes it.

Saved: the token ids, logits, losses, the gradients of a few tensors (the first 16 rows of a
matrix), and the norm of every tensor's gradient (metadata).

    python3 scripts/reference/encoder_reference.py ~/.cache/tailor/models/all-MiniLM-L6-v2
"""
import json, sys
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from safetensors.torch import save_file

SAVED = ["embeddings.LayerNorm.weight", "encoder.layer.0.attention.self.query.weight",
         "encoder.layer.0.attention.self.value.bias", "encoder.layer.3.intermediate.dense.bias",
         "encoder.layer.5.output.dense.weight", "encoder.layer.5.attention.output.LayerNorm.bias",
         "pooler.dense.weight", "pooler.dense.bias"]


def main():
    d = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "Tests/TailorTuningTests/Fixtures"
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(d)
    texts = ["A gorgeous, witty, seductive movie.",
             "The plot is nothing but boilerplate clichés from start to finish, and the script assumes that not only would subtlety be lost on the target audience, but that it's also too stupid to realize.",
             "Dull."]
    labels = torch.tensor([1, 0, 0])
    model = AutoModelForSequenceClassification.from_pretrained(d, num_labels=2)
    model.eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    res = model(**enc, labels=labels)
    res.loss.backward()
    tensors, meta = {}, {}
    ids = [tok(t)["input_ids"] for t in texts]
    meta["classify_ids"] = json.dumps(ids)
    meta["classify_labels"] = json.dumps(labels.tolist())
    meta["classify_loss"] = repr(res.loss.item())
    tensors["classify.logits"] = res.logits.detach().contiguous()
    tensors["classifier.weight"] = model.classifier.weight.detach().contiguous()
    tensors["classifier.bias"] = model.classifier.bias.detach().contiguous()
    norms = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        short = name[5:] if name.startswith("bert.") else name
        norms[short] = p.grad.norm().item()
        if short in SAVED or short.startswith("classifier."):
            tensors["classify.grad." + short] = p.grad.detach()[:16].contiguous()
    meta["classify_grad_norms"] = json.dumps(norms)

    # retrieval
    model = AutoModel.from_pretrained(d)
    model.eval()
    # Confusable pairs, so that the loss and its gradients are far from zero.
    queries = ["vitamin D deficiency and bone fractures in elderly women",
               "vitamin D supplements reduce fracture risk",
               "calcium intake and bone density in older adults"]
    passages = ["Low serum vitamin D was associated with more hip fractures among women over seventy.",
                "In a randomized trial, vitamin D supplementation did not lower the rate of fractures.",
                "Higher dietary calcium was linked to greater bone mineral density in the elderly."]
    qe = tok(queries, padding=True, return_tensors="pt")
    pe = tok(passages, padding=True, return_tensors="pt")

    def embed(e):
        h = model(**e).last_hidden_state
        m = e["attention_mask"].unsqueeze(-1).float()
        return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)

    q, p = embed(qe), embed(pe)
    scores = 20 * q @ p.T
    loss = F.cross_entropy(scores, torch.arange(len(queries)))
    loss.backward()
    meta["retrieval_query_ids"] = json.dumps([tok(t)["input_ids"] for t in queries])
    meta["retrieval_passage_ids"] = json.dumps([tok(t)["input_ids"] for t in passages])
    meta["retrieval_loss"] = repr(loss.item())
    tensors["retrieval.queries"] = q.detach().contiguous()
    tensors["retrieval.passages"] = p.detach().contiguous()
    norms = {}
    for name, par in model.named_parameters():
        if par.grad is None:
            continue
        norms[name] = par.grad.norm().item()
        if name in SAVED:
            tensors["retrieval.grad." + name] = par.grad.detach()[:16].contiguous()
    meta["retrieval_grad_norms"] = json.dumps(norms)
    save_file(tensors, out + "/encoder-reference.safetensors", metadata=meta)
    print("classification loss", res.loss.item(), "retrieval loss", loss.item())


if __name__ == "__main__":
    main()
