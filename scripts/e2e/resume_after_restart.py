#!/usr/bin/env python3
"""Work that must survive a restart of `tailor serve`, driven with the real `openai` client.
    resume_after_restart.py start BASE_URL API_KEY MODEL
        uploads training data and a large document, starts a fine-tuning job and a vector store
        ingest, waits until both are under way (the job past a checkpoint, the ingest embedding)
        and prints {"job", "store", "file", "job_step"}: the caller then kills the server.
    resume_after_restart.py finish BASE_URL API_KEY JOB_ID STORE_ID FILE_ID
        waits for both to finish on the restarted server and prints what it saw."""
import io, json, sys, time
import openai

mode, base, key = sys.argv[1:4]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=2, timeout=300)

if mode == "start":
    model = sys.argv[4]
    examples = [{"messages": [{"role": "user", "content": f"Which shop repairs bike number {i}?"},
                              {"role": "assistant", "content": "Velora Cycles on Harbour Street repairs it."}]} for i in range(32)]
    tf = client.files.create(file=("train.jsonl", io.BytesIO("".join(json.dumps(e) + "\n" for e in examples).encode())), purpose="fine-tune")
    # 8 steps per epoch, a validation and checkpoint every 2 steps, 40 steps in all.
    job = client.fine_tuning.jobs.create(model=model, training_file=tf.id, seed=3, hyperparameters={"n_epochs": 5, "batch_size": 4})
    sections = [f"## Part {i}\n\nThe Velora service manual, part {i}: torque the stem bolts of frame size {i % 7} to {4 + i % 3} Nm, "
                f"check the chain wear of model {i} every {500 + i} km, and grease the headset bearings of series {i % 11}.\n" for i in range(3000)]
    doc = client.files.create(file=("manual.md", io.BytesIO(("# Velora service manual\n\n" + "\n".join(sections)).encode())), purpose="assistants")
    store = client.vector_stores.create(name="manual")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=doc.id)
    deadline = time.time() + 600
    step = 0
    while time.time() < deadline:
        j = client.fine_tuning.jobs.retrieve(job.id)
        step = (j.model_extra or {}).get("step") or 0
        f = client.vector_stores.files.retrieve(vector_store_id=store.id, file_id=doc.id)
        embedding = f.status == "in_progress" and ((f.model_extra or {}).get("chunks_done") or 0) > 0
        if j.status == "running" and step >= 5 and (embedding or f.status == "completed"):
            break
        if j.status in ("failed", "cancelled", "succeeded"):
            break
        time.sleep(0.1)
    print(json.dumps({"job": job.id, "store": store.id, "file": doc.id, "job_step": step, "job_status": j.status, "file_status": f.status}))
else:
    job_id, store_id, file_id = sys.argv[4:7]
    deadline = time.time() + 900
    while time.time() < deadline:
        j = client.fine_tuning.jobs.retrieve(job_id)
        f = client.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id)
        if j.status in ("succeeded", "failed", "cancelled") and f.status != "in_progress":
            break
        time.sleep(0.5)
    events = [e.message for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job_id, limit=1000).data]
    hits = client.vector_stores.search(vector_store_id=store_id, query="chain wear of model 2999", max_num_results=3).data
    print(json.dumps({"job_status": j.status, "fine_tuned_model": j.fine_tuned_model, "job_step": (j.model_extra or {}).get("step"),
                      "file_status": f.status, "chunks": (f.model_extra or {}).get("chunks_done"),
                      "resumed": [m for m in events if "esume" in m], "search": [h.content[0].text for h in hits]}))
