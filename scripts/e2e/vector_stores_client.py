#!/usr/bin/env python3
"""Files and vector stores through the real `openai` client against a running `tailor serve`
(used with `--store postgresql://…`, so the stores live in PostgreSQL): upload, a store made from
a file, a second file with attributes, polling until ingested, search (plain and filtered), an
answer from the store with citations, removal. Prints what it got as JSON.
    vector_stores_client.py BASE_URL API_KEY MODEL"""
import io, json, sys, time
import openai

base, key, model = sys.argv[1:4]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
out = {}
f1 = client.files.create(file=("tyres.md", io.BytesIO(b"# Tyres\n\nVelora city bikes ship with 42 mm puncture-resistant tyres inflated to 3.5 bar.\n")),
                         purpose="assistants")
f2 = client.files.create(file=("lights.md", io.BytesIO(b"# Lights\n\nThe front light of a Velora bike runs for nine hours on one charge.\n")),
                         purpose="assistants")
vs = client.vector_stores.create(name="bike docs", file_ids=[f1.id])
client.vector_stores.files.create(vector_store_id=vs.id, file_id=f2.id, attributes={"topic": "lights"})
deadline = time.time() + 120
while time.time() < deadline:
    files = client.vector_stores.files.list(vector_store_id=vs.id)
    if all(f.status != "in_progress" for f in files.data):
        break
    time.sleep(0.2)
out["store_id"] = vs.id
out["statuses"] = sorted(f.status for f in files.data)
out["listed"] = vs.id in [v.id for v in client.vector_stores.list()]
hits = client.vector_stores.search(vector_store_id=vs.id, query="How wide are the tyres?", max_num_results=2)
out["search"] = [h.filename for h in hits.data]
out["top_text"] = hits.data[0].content[0].text if hits.data else ""
only = client.vector_stores.search(vector_store_id=vs.id, query="How wide are the tyres?",
                                   filters={"type": "eq", "key": "topic", "value": "lights"})
out["filtered"] = [h.filename for h in only.data]
r = client.chat.completions.create(model=f"{model}+rag:{vs.id}", temperature=0, max_tokens=30,
                                   messages=[{"role": "user", "content": "What pressure are the tyres inflated to?"}])
out["citations"] = [c.get("file") for c in (r.model_extra or {}).get("citations") or []]
client.vector_stores.files.delete(vector_store_id=vs.id, file_id=f2.id)
out["after_remove"] = [h.filename for h in client.vector_stores.search(vector_store_id=vs.id, query="front light charge").data]
out["deleted"] = client.vector_stores.delete(vs.id).deleted
out["listed_after_delete"] = vs.id in [v.id for v in client.vector_stores.list()]
print(json.dumps(out))
