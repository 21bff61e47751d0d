#!/usr/bin/env python3
"""Drives a running `tailor serve` with the real `openai` Python client (PyPI) and prints what
it got as JSON: the models listed, a chat answer, the same answer streamed, an answer through an
adapter and through a collection (with its citations), embeddings, the error a bad model name
gives, and files and vector stores: upload, a store made from the files, polling until ingested,
search with an attribute filter, an answer from the store, removal; a fine-tuning job from an
uploaded JSONL (its loss events, checkpoints, and its model answering), and a cancelled one.
    openai_client.py BASE_URL API_KEY MODEL ADAPTER COLLECTION"""
import io, json, os, sys, time
import openai

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vector_stores_client

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

# Files and vector stores.
out.update(vector_stores_client.run(client, model, chunking={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}))

# Fine-tuning jobs.
examples = [{"messages": [{"role": "user", "content": f"What is the code word number {i}?"},
                          {"role": "assistant", "content": "The code word is VELORA."}]} for i in range(16)]
data = "".join(json.dumps(e) + "\n" for e in examples).encode()
tf = client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
job = client.fine_tuning.jobs.create(model=model, training_file=tf.id, seed=7,
                                     hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 5, "max_steps": 6})
out["job_created"] = {"id": job.id, "status": job.status, "object": job.object}
deadline = time.time() + 600
while time.time() < deadline:
    job = client.fine_tuning.jobs.retrieve(job.id)
    if job.status in ("succeeded", "failed", "cancelled"):
        break
    time.sleep(0.5)
out["job"] = {"status": job.status, "fine_tuned_model": job.fine_tuned_model, "trained_tokens": job.trained_tokens,
              "error": job.error.model_dump() if job.error else None}
events = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100).data
out["job_loss_steps"] = sorted(e.data["step"] for e in events if e.type == "metrics" and e.data and "train_loss" in e.data)
out["job_checkpoints"] = [c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(fine_tuning_job_id=job.id).data]
out["jobs_listed"] = job.id in [j.id for j in client.fine_tuning.jobs.list().data]
if job.fine_tuned_model:
    r = client.chat.completions.create(model=job.fine_tuned_model, temperature=0, max_tokens=12,
                                       messages=[{"role": "user", "content": "What is the code word number 3?"}])
    out["tuned_chat"] = r.choices[0].message.content
    out["tuned_listed"] = job.fine_tuned_model in [m.id for m in client.models.list().data]
long_job = client.fine_tuning.jobs.create(model=model, training_file=tf.id, hyperparameters={"n_epochs": 50})
out["cancelled"] = client.fine_tuning.jobs.cancel(long_job.id).status
deadline = time.time() + 120
while time.time() < deadline and client.fine_tuning.jobs.retrieve(long_job.id).status != "cancelled":
    time.sleep(0.2)
out["cancelled_final"] = client.fine_tuning.jobs.retrieve(long_job.id).status
notes = client.files.create(file=("notes.md", io.BytesIO(b"# Notes\n\nNot training data.\n")), purpose="assistants")
try:
    client.fine_tuning.jobs.create(model=model, training_file=notes.id)
    out["wrong_purpose"] = "accepted"
except openai.BadRequestError as err:
    out["wrong_purpose"] = err.status_code
print(json.dumps(out))
