#!/usr/bin/env python3
"""Drives a running `tailor serve` with the real `openai` Python client (PyPI) and prints what
it got as JSON: the models listed, a chat answer, the same answer streamed, an answer through an
adapter and through a collection (with its citations), embeddings, and the error a bad model
name gives.   openai_client.py BASE_URL API_KEY MODEL ADAPTER COLLECTION"""
import json, sys
import openai

base, key, model, adapter, collection = sys.argv[1:6]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
out = {"openai_version": openai.__version__}
out["models"] = [m.id for m in client.models.list().data]
msgs = [{"role": "user", "content": "What is the capital of France?"}]
r = client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=12, seed=1)
out["chat"] = r.choices[0].message.content
out["finish_reason"] = r.choices[0].finish_reason
out["usage"] = r.usage.model_dump() if r.usage else None
parts = []
for chunk in client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=12, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
out["streamed"] = "".join(parts)
out["stream_chunks"] = len(parts)
r = client.chat.completions.create(model=f"{model}+lora:{adapter}", messages=msgs, temperature=0, max_tokens=12)
out["adapter_chat"] = r.choices[0].message.content
r = client.chat.completions.create(model=f"{model}+rag:{collection}", temperature=0, max_tokens=40,
                                   messages=[{"role": "user", "content": "How many charge cycles does the battery warranty cover?"}])
out["rag_chat"] = r.choices[0].message.content
out["citations"] = (r.model_extra or {}).get("citations")
e = client.embeddings.create(model="all-MiniLM-L6-v2", input=["A man is eating.", "Someone has a meal."])
out["embedding_dims"] = [len(d.embedding) for d in e.data]
try:
    client.chat.completions.create(model="no-such-model", messages=msgs, max_tokens=4)
    out["bad_model"] = "no error"
except openai.NotFoundError as err:
    out["bad_model"] = {"status": err.status_code, "code": (err.body or {}).get("code") if isinstance(err.body, dict) else None}
try:
    openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
    out["bad_key"] = "no error"
except openai.AuthenticationError as err:
    out["bad_key"] = {"status": err.status_code}
print(json.dumps(out))
