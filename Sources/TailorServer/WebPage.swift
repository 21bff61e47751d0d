// The web page the server shows at / : a chat over the same API any client uses (streamed
// answers; a model, adapter and collection to pick; the sources of a grounded answer, each
// opening its passage). One self-contained page: no build step, nothing fetched from elsewhere.
// The API key, when the server has one, is asked once and kept in the browser's local storage.
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
  main { display: grid; grid-template-columns: 1fr 320px; gap: 16px; padding: 16px; max-width: 1200px; margin: 0 auto; }
  #chat { background: var(--card); border: 1px solid var(--line); border-radius: 10px; display: flex; flex-direction: column; min-height: 70vh; }
  #log { flex: 1; padding: 16px; overflow-y: auto; }
  .msg { margin: 0 0 14px; white-space: pre-wrap; }
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
  .source .passage { display: none; margin-top: 6px; font-size: 13px; white-space: pre-wrap; background: var(--bg); padding: 8px; border-radius: 6px; }
  .source.open .passage { display: block; }
  .empty { color: var(--muted); font-size: 13px; }
</style>
</head>
<body>
<header>
  <h1>Tailor</h1>
  <label>Model <select id="model"></select></label>
  <label>Adapter <select id="adapter"><option value="">none</option></select></label>
  <label>Collection <select id="collection"><option value="">none</option></select></label>
  <label>Temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0" style="width:4em"></label>
</header>
<main>
  <section id="chat">
    <div id="log"><p class="empty">Ask something. With a collection chosen, answers come from your documents, with their sources.</p></div>
    <form id="send"><textarea id="input" placeholder="Your message" required></textarea><button id="go" type="submit">Send</button></form>
  </section>
  <aside><h2>Sources</h2><div id="sources"><p class="empty">The passages a grounded answer used appear here; click one to read it.</p></div></aside>
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
  const adapters = [...new Set(data.filter(m => m.kind === "adapter").map(m => m.id.split("+lora:")[1]))];
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
loadModels();
</script>
</body>
</html>
"""#
}
