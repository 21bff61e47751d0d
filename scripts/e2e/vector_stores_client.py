#!/usr/bin/env python3
"""Files and vector stores through the real `openai` client against a running `tailor serve`:
upload, a store made from a file, a second file with attributes, polling until ingested, search
(plain and filtered by an attribute), an answer from the store with citations, removal. Used by
openai_client.py, and on its own against `tailor serve --store postgresql://…`. Prints what it
got as JSON.
    vector_stores_client.py BASE_URL API_KEY MODEL"""
import io, json, sys, time
import openai


def run(client, model, chunking=None):
    """The vector-store round trip; returns what the client got."""
    out = {}
    f1 = client.files.create(file=("tyres.md", io.BytesIO(b"# Tyres\n\nVelora city bikes ship with 42 mm puncture-resistant tyres inflated to 3.5 bar.\n")),
                             purpose="assistants")
    f2 = client.files.create(file=("lights.md", io.BytesIO(b"# Lights\n\nThe front light of a Velora bike runs for nine hours on one charge.\n")),
                             purpose="assistants")
    out["file"] = {"id": f1.id, "filename": f1.filename, "bytes": f1.bytes, "purpose": f1.purpose}
    out["file_listed"] = f1.id in [f.id for f in client.files.list()]
    out["file_content"] = client.files.content(f1.id).read().decode()
    extra = {"chunking_strategy": chunking} if chunking else {}
    vs = client.vector_stores.create(name="bike docs", file_ids=[f1.id], **extra)
    client.vector_stores.files.create(vector_store_id=vs.id, file_id=f2.id, attributes={"topic": "lights", "year": 2026})
    deadline = time.time() + 120
    while time.time() < deadline:
        files = client.vector_stores.files.list(vector_store_id=vs.id)
        if all(f.status != "in_progress" for f in files.data):
            break
        time.sleep(0.2)
    out["store_id"] = vs.id
    out["store_files"] = sorted((f.id, f.status) for f in files.data)
    store = client.vector_stores.retrieve(vs.id)
    out["store"] = {"id": store.id, "name": store.name, "completed": store.file_counts.completed, "status": store.status}
    out["stores_listed"] = vs.id in [v.id for v in client.vector_stores.list()]
    hits = client.vector_stores.search(vector_store_id=vs.id, query="How wide are the tyres?", max_num_results=2)
    out["search"] = [{"file_id": h.file_id, "filename": h.filename, "score": h.score, "text": h.content[0].text} for h in hits.data]
    only = client.vector_stores.search(vector_store_id=vs.id, query="How wide are the tyres?",
                                       filters={"type": "eq", "key": "topic", "value": "lights"})
    out["filtered_search"] = [h.filename for h in only.data]
    r = client.chat.completions.create(model=f"{model}+rag:{vs.id}", temperature=0, max_tokens=30,
                                       messages=[{"role": "user", "content": "What pressure are the tyres inflated to?"}])
    out["store_citations"] = [c.get("file") for c in (r.model_extra or {}).get("citations") or []]
    client.vector_stores.files.delete(vector_store_id=vs.id, file_id=f2.id)
    out["after_remove"] = [h.filename for h in client.vector_stores.search(vector_store_id=vs.id, query="front light charge").data]
    out["store_deleted"] = client.vector_stores.delete(vs.id).deleted
    out["listed_after_delete"] = vs.id in [v.id for v in client.vector_stores.list()]
    out["file_deleted"] = client.files.delete(f1.id).deleted
    try:
        client.files.retrieve(f1.id)
        out["deleted_file"] = "still there"
    except openai.NotFoundError as err:
        out["deleted_file"] = err.status_code
    return out


if __name__ == "__main__":
    base, key, model = sys.argv[1:4]
    print(json.dumps(run(openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300), model)))
