// The web page the server shows at / : a chat over the same API any client uses (streamed
// answers; a model, adapter and collection to pick; the sources of a grounded answer, each
// opening its passage), collections (vector stores) with uploads and live ingest progress,
// fine-tuning jobs with live loss curves, and `tailor compare` reports. One self-contained page:
// no build step, nothing fetched from elsewhere. The API key, when the server has one, is asked
// once and kept in the browser's local storage.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tailor</title>
<style>
  :root { --bg: #f6f7f9; --card: #fff; --ink: #1d2430; --muted: #6a7382; --accent: #2f6fde; --line: #dde1e7; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; gap: 12px; align-items: center; padding: 10px 16px; background: var(--card); border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  label { color: var(--muted); font-size: 13px; }
  select, input, textarea, button { font: inherit; }
  select, input { padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 320px; gap: 16px; padding: 16px; max-width: 1200px; margin: 0 auto; }
  #chat { background: var(--card); border: 1px solid var(--line); border-radius: 10px; display: flex; flex-direction: column; min-height: 70vh; }
  #log { flex: 1; padding: 16px; overflow-y: auto; }
  .msg { margin: 0 0 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .msg.user b { color: var(--accent); }
  .msg.assistant b { color: #1b8a5a; }
  .msg.error { color: #b3261e; }
  form { display: flex; gap: 8px; padding: 12px; border-top: 1px solid var(--line); }
  textarea { flex: 1; resize: vertical; min-height: 44px; padding: 8px; border: 1px solid var(--line); border-radius: 8px; }
  button { padding: 8px 16px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  aside { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
  aside h2 { font-size: 15px; margin: 4px 0 8px; }
  .source { border-top: 1px solid var(--line); padding: 8px 0; cursor: pointer; }
  .source .file { font-weight: 600; }
  .source .where { color: var(--muted); font-size: 13px; }
  .source .passage { overflow-wrap: anywhere; display: none; margin-top: 6px; font-size: 13px; white-space: pre-wrap; background: var(--bg); padding: 8px; border-radius: 6px; }
  .source.open .passage { display: block; }
  .empty { color: var(--muted); font-size: 13px; }
  nav { display: flex; gap: 4px; margin-left: auto; }
  nav a { padding: 4px 10px; border-radius: 6px; color: var(--ink); text-decoration: none; }
  nav a.on { background: var(--accent); color: #fff; }
  .page { display: none; } .page.on { display: grid; }
  .panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; margin-bottom: 12px; }
  .panel h2 { font-size: 15px; margin: 4px 0 8px; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  td, th { text-align: left; padding: 4px 8px; border-top: 1px solid var(--line); }
  .bar { height: 8px; background: var(--bg); border-radius: 4px; overflow: hidden; min-width: 120px; }
  .bar > div { height: 100%; background: var(--accent); }
  .status-completed, .status-succeeded { color: #1b8a5a; } .status-failed { color: #b3261e; } .status-cancelled { color: var(--muted); }
  .row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
  svg.curve { width: 100%; height: 220px; background: var(--bg); border-radius: 6px; }
  iframe.report { width: 100%; height: 75vh; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  .one { grid-template-columns: 1fr; }
</style>
</head>
<body>
<header>
  <h1>Tailor</h1>
  <label>Model <select id="model"></select></label>
  <label>Adapter <select id="adapter"><option value="">none</option></select></label>
  <label>Collection <select id="collection"><option value="">none</option></select></label>
  <label>Temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0" style="width:4em"></label>
  <nav><a href="#chat" id="tab-chat" class="on">Chat</a><a href="#collections" id="tab-collections">Collections</a><a href="#tuning" id="tab-tuning">Fine-tuning</a><a href="#reports" id="tab-reports">Reports</a></nav>
</header>
<main id="page-chat" class="page on">
  <section id="chat">
    <div id="log"><p class="empty">Ask something. With a collection chosen, answers come from your documents, with their sources.</p></div>
    <form id="send"><textarea id="input" placeholder="Your message" required></textarea><button id="go" type="submit">Send</button></form>
  </section>
  <aside><h2>Sources</h2><div id="sources"><p class="empty">The passages a grounded answer used appear here; click one to read it.</p></div></aside>
</main>
<main id="page-collections" class="page one">
  <section class="panel"><h2>Collections</h2>
    <div class="row"><input id="newStore" placeholder="New collection name"><button id="createStore" type="button">Create</button></div>
    <table id="stores"><tr><th>Collection</th><th>Files</th><th>Status</th><th></th></tr></table>
  </section>
  <section class="panel"><h2>Add a document</h2>
    <div class="row"><label>To <select id="uploadStore"></select></label><input id="uploadFile" type="file" multiple><button id="upload" type="button">Upload and ingest</button></div>
    <table id="ingests"><tr><th>File</th><th>Collection</th><th>Status</th><th>Progress</th></tr></table>
  </section>
</main>
<main id="page-tuning" class="page one">
  <section class="panel"><h2>New fine-tuning job</h2>
    <div class="row"><label>Base <select id="tuneModel"></select></label><label>Training data (JSONL) <input id="tuneFile" type="file" accept=".jsonl,.json"></label>
      <label>Epochs <input id="tuneEpochs" type="number" min="1" max="50" value="3" style="width:4em"></label><button id="tune" type="button">Start</button></div>
  </section>
  <section class="panel"><h2>Jobs</h2><table id="jobs"><tr><th>Job</th><th>Base</th><th>Status</th><th>Step</th><th>Loss</th><th>Model</th><th></th></tr></table></section>
  <section class="panel"><h2 id="curveTitle">Loss</h2><svg id="curve" class="curve" viewBox="0 0 600 220" preserveAspectRatio="none"></svg>
    <div class="row"><span style="color:#2f6fde">― training loss</span><span style="color:#d9822b">● validation loss</span></div></section>
</main>
<main id="page-reports" class="page one">
  <section class="panel"><h2>Comparison reports</h2><table id="reports"><tr><th>Report</th><th>Written</th></tr></table></section>
  <section class="panel" id="reportView" style="display:none"><iframe id="reportFrame" class="report" title="report"></iframe></section>
</main>
<script>
const $ = id => document.getElementById(id);
let key = localStorage.getItem("tailorKey") || "";
let history = [];
async function api(path, options = {}) {
  options.headers = Object.assign({"Content-Type": "application/json"}, options.headers || {});
  if (key) options.headers["Authorization"] = "Bearer " + key;
  let r = await fetch(path, options);
  if (r.status === 401) {
    key = prompt("This server asks for an API key:") || "";
    localStorage.setItem("tailorKey", key);
    if (key) { options.headers["Authorization"] = "Bearer " + key; r = await fetch(path, options); }
  }
  return r;
}
function add(role, text) {
  if (history.length === 0) $("log").innerHTML = "";
  const p = document.createElement("p");
  p.className = "msg " + role;
  const b = document.createElement("b"); b.textContent = role === "user" ? "You: " : role === "assistant" ? "Tailor: " : "";
  const span = document.createElement("span"); span.textContent = text;
  p.append(b, span); $("log").append(p); $("log").scrollTop = $("log").scrollHeight;
  return span;
}
function showSources(cites) {
  const box = $("sources"); box.innerHTML = "";
  if (!cites || !cites.length) { box.innerHTML = '<p class="empty">No sources for this answer.</p>'; return; }
  for (const c of cites) {
    const d = document.createElement("div"); d.className = "source";
    const f = document.createElement("div"); f.className = "file"; f.textContent = "[" + c.number + "] " + c.file.split("/").pop();
    const w = document.createElement("div"); w.className = "where"; w.textContent = (c.location || "") + (c.cited ? " · cited" : "");
    const t = document.createElement("div"); t.className = "passage"; t.textContent = c.snippet;
    d.append(f, w, t); d.onclick = () => d.classList.toggle("open"); box.append(d);
  }
}
async function loadModels() {
  const r = await api("/v1/models");
  if (!r.ok) { add("error", "Could not list the models: " + r.status); return; }
  const data = (await r.json()).data;
  const bases = data.filter(m => m.kind === "model").map(m => m.id);
  const adapters = [...new Set(data.filter(m => m.kind === "adapter" || m.kind === "fine-tuned").map(m => m.id.split("+lora:")[1]))];
  const collections = [...new Set(data.filter(m => m.kind === "collection").map(m => m.id.split("+rag:")[1]))];
  for (const b of bases) $("model").append(new Option(b, b));
  const preferred = bases.find(b => b.includes("SmolLM2")); if (preferred) $("model").value = preferred;
  for (const a of adapters) $("adapter").append(new Option(a, a));
  for (const c of collections) $("collection").append(new Option(c, c));
}
$("send").onsubmit = async e => {
  e.preventDefault();
  const text = $("input").value.trim(); if (!text) return;
  $("input").value = ""; $("go").disabled = true;
  add("user", text); history.push({role: "user", content: text});
  let model = $("model").value;
  if ($("adapter").value) model += "+lora:" + $("adapter").value;
  if ($("collection").value) model += "+rag:" + $("collection").value;
  const out = add("assistant", "");
  try {
    const r = await api("/v1/chat/completions", {method: "POST", body: JSON.stringify({model, messages: history, stream: true,
      temperature: parseFloat($("temp").value) || 0, max_tokens: 400})});
    if (!r.ok) { const err = await r.json().catch(() => ({})); out.textContent = "Error: " + ((err.error || {}).message || r.status); out.parentElement.className = "msg error"; return; }
    const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "", answer = "";
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, i).trim(); buf = buf.slice(i + 2);
        if (!line.startsWith("data: ")) continue;
        const payload = line.slice(6); if (payload === "[DONE]") continue;
        const chunk = JSON.parse(payload);
        const delta = ((chunk.choices || [])[0] || {}).delta || {};
        if (delta.content) { answer += delta.content; out.textContent = answer; $("log").scrollTop = $("log").scrollHeight; }
        if (chunk.citations) showSources(chunk.citations);
      }
    }
    history.push({role: "assistant", content: answer});
    if (!$("collection").value) showSources([]);
  } catch (err) { out.textContent = "Error: " + err; }
  finally { $("go").disabled = false; $("input").focus(); }
};
// Tabs.
const pages = ["chat", "collections", "tuning", "reports"];
function show(name) {
  if (!pages.includes(name)) name = "chat";
  for (const p of pages) { $("page-" + p).classList.toggle("on", p === name); $("tab-" + p).classList.toggle("on", p === name); }
  if (name === "collections") refreshStores();
  if (name === "tuning") refreshJobs();
  if (name === "reports") refreshReports();
}
window.onhashchange = () => show(location.hash.slice(1));
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const rows = (table, list) => { while (table.rows.length > 1) table.deleteRow(1); for (const r of list) table.append(r); };
async function json(path, options) {
  const r = await api(path, options);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error || {}).message || ("HTTP " + r.status));
  return body;
}
async function uploadFile(file, purpose) {
  const form = new FormData(); form.append("purpose", purpose); form.append("file", file, file.name);
  const headers = key ? {"Authorization": "Bearer " + key} : {};
  const r = await fetch("/v1/files", {method: "POST", body: form, headers});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error || {}).message || ("HTTP " + r.status));
  return body;
}

// Collections: the vector stores, uploads and their ingest progress.
let watched = [];   // [storeId, fileId, filename]
async function refreshStores() {
  try {
    const stores = (await json("/v1/vector_stores")).data;
    rows($("stores"), stores.map(v => {
      const tr = el("tr"); tr.append(el("td", v.name && v.name !== v.id ? v.name + " (" + v.id + ")" : v.id),
        el("td", v.file_counts.completed + " of " + v.file_counts.total), el("td", v.status, "status-" + v.status));
      const td = el("td"); const ask = el("a", "chat with it"); ask.href = "#chat";
      ask.onclick = () => { $("collection").value = v.id; }; td.append(ask); tr.append(td); return tr;
    }));
    const chosen = $("uploadStore").value; $("uploadStore").innerHTML = "";
    for (const v of stores) $("uploadStore").append(new Option(v.name || v.id, v.id));
    if (chosen) $("uploadStore").value = chosen;
    for (const v of stores) if (![...$("collection").options].some(o => o.value === v.id)) $("collection").append(new Option(v.name || v.id, v.id));
  } catch (err) { add("error", "Collections: " + err.message); }
}
async function refreshIngests() {
  const list = [];
  for (const [store, file, name] of watched) {
    try {
      const f = await json("/v1/vector_stores/" + store + "/files/" + file);
      const tr = el("tr"); tr.append(el("td", name), el("td", store), el("td", f.status + (f.last_error ? ": " + f.last_error.message : ""), "status-" + f.status));
      const done = f.chunks_done || 0, total = f.chunks_total || 0;
      const pct = f.status === "completed" ? 100 : total ? Math.round(100 * done / total) : 0;
      const bar = el("div", undefined, "bar"); const fill = el("div"); fill.style.width = pct + "%"; bar.append(fill);
      const td = el("td"); td.append(bar, el("span", done + (total ? " / " + total : "") + " chunks")); tr.append(td); list.push(tr);
    } catch (err) { list.push(el("tr", name + ": " + err.message)); }
  }
  rows($("ingests"), list);
  if (watched.length) refreshStores();
}
$("createStore").onclick = async () => {
  const name = $("newStore").value.trim(); if (!name) return;
  try { const v = await json("/v1/vector_stores", {method: "POST", body: JSON.stringify({name})}); $("newStore").value = ""; await refreshStores(); $("uploadStore").value = v.id; }
  catch (err) { alert(err.message); }
};
$("upload").onclick = async () => {
  const store = $("uploadStore").value, files = [...$("uploadFile").files];
  if (!store) { alert("Create a collection first."); return; }
  for (const file of files) {
    try {
      const f = await uploadFile(file, "assistants");
      await json("/v1/vector_stores/" + store + "/files", {method: "POST", body: JSON.stringify({file_id: f.id})});
      watched.push([store, f.id, file.name]);
    } catch (err) { alert(file.name + ": " + err.message); }
  }
  $("uploadFile").value = ""; refreshIngests();
};
setInterval(() => { if ($("page-collections").classList.contains("on") && watched.length) refreshIngests(); }, 1000);

// Fine-tuning jobs with their loss curves.
let shownJob = null;
async function refreshJobs() {
  try {
    const jobs = (await json("/v1/fine_tuning/jobs?limit=50")).data;
    if (!$("tuneModel").options.length) for (const o of $("model").options) $("tuneModel").append(new Option(o.text, o.value));
    rows($("jobs"), jobs.map(j => {
      const tr = el("tr"); const view = el("a", "loss curve"); view.href = "#tuning"; view.onclick = () => { shownJob = j.id; drawCurve(); };
      const td = el("td"); td.append(view);
      tr.append(el("td", j.id), el("td", j.model), el("td", j.status + (j.error ? ": " + j.error.message : ""), "status-" + j.status),
        el("td", (j.step || 0) + (j.total_steps ? " / " + j.total_steps : "")), el("td", j.train_loss != null ? j.train_loss.toFixed(4) : ""),
        el("td", j.fine_tuned_model || ""), td);
      return tr;
    }));
    if (!shownJob && jobs.length) shownJob = jobs[0].id;
    drawCurve();
  } catch (err) { add("error", "Fine-tuning: " + err.message); }
}
async function drawCurve() {
  if (!shownJob) return;
  const events = (await json("/v1/fine_tuning/jobs/" + shownJob + "/events?limit=100000")).data.filter(e => e.type === "metrics" && e.data).reverse();
  $("curveTitle").textContent = "Loss of " + shownJob;
  const svg = $("curve"); svg.innerHTML = "";
  const train = events.filter(e => e.data.train_loss != null).map(e => [e.data.step, e.data.train_loss]);
  const valid = events.filter(e => e.data.valid_loss != null).map(e => [e.data.step, e.data.valid_loss]);
  const all = train.concat(valid); if (!all.length) return;
  const maxX = Math.max(...all.map(p => p[0]), 1), ys = all.map(p => p[1]), lo = Math.min(...ys), hi = Math.max(...ys), span = (hi - lo) || 1;
  const X = x => 30 + 560 * x / maxX, Y = y => 200 - 180 * (y - lo) / span;
  const ns = "http://www.w3.org/2000/svg";
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", train.map(p => X(p[0]) + "," + Y(p[1])).join(" ")); line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2f6fde"); line.setAttribute("stroke-width", "2"); svg.append(line);
  for (const p of valid) { const c = document.createElementNS(ns, "circle"); c.setAttribute("cx", X(p[0])); c.setAttribute("cy", Y(p[1])); c.setAttribute("r", "4"); c.setAttribute("fill", "#d9822b"); svg.append(c); }
  for (const [y, label] of [[hi, hi.toFixed(3)], [lo, lo.toFixed(3)]]) { const t = document.createElementNS(ns, "text"); t.setAttribute("x", 2); t.setAttribute("y", Y(y) + 4); t.setAttribute("font-size", "11"); t.textContent = label; svg.append(t); }
}
$("tune").onclick = async () => {
  const file = $("tuneFile").files[0]; if (!file) { alert("Choose a JSONL file of examples."); return; }
  try {
    const f = await uploadFile(file, "fine-tune");
    const j = await json("/v1/fine_tuning/jobs", {method: "POST", body: JSON.stringify({model: $("tuneModel").value, training_file: f.id,
      hyperparameters: {n_epochs: parseInt($("tuneEpochs").value) || 3}})});
    shownJob = j.id; $("tuneFile").value = ""; refreshJobs();
  } catch (err) { alert(err.message); }
};
setInterval(() => { if ($("page-tuning").classList.contains("on")) refreshJobs(); }, 2000);

// Reports written by `tailor compare`.
async function refreshReports() {
  try {
    const reports = (await json("/v1/tailor/reports")).data;
    if (!reports.length) { rows($("reports"), [el("tr", "No reports yet: run tailor compare with -o inside the reports folder, or start the server with --reports DIR.")]); return; }
    rows($("reports"), reports.map(r => {
      const tr = el("tr"); const a = el("a", r.name); a.href = "#reports";
      a.onclick = async () => {
        // Fetched with the API key, then shown in the frame (a frame's own request carries no key).
        const page = await api("/reports/" + encodeURIComponent(r.id) + "/report.html");
        $("reportView").style.display = ""; $("reportFrame").srcdoc = await page.text();
      };
      const td = el("td"); td.append(a); tr.append(td, el("td", new Date(r.created_at * 1000).toLocaleString())); return tr;
    }));
  } catch (err) { add("error", "Reports: " + err.message); }
}

loadModels().then(() => show(location.hash.slice(1)));
</script>
</body>
</html>
"""#
}
