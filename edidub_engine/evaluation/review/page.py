"""The review page: original and dub side by side, MOS ratings 1–10, approve / reject. Plain HTML + JS."""

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>EdiDub review</title>
<style>
body{font-family:system-ui,sans-serif;margin:20px;background:#fafafa;color:#222}
h1{font-size:20px} .shot{background:white;border:1px solid #ccc;border-radius:6px;padding:12px;margin:14px 0}
.pair{display:flex;gap:12px;flex-wrap:wrap} .pair figure{margin:0} video{width:360px;background:#000}
figcaption{font-size:12px;color:#555} .controls{margin-top:8px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
.verdict{font-weight:bold} .verdict.approved{color:#1a7f37} .verdict.rejected{color:#c62828} .verdict.pending{color:#9a6700}
.warn{color:#a05a00;font-size:12px} .saved{font-size:12px;color:#1a7f37} .error{color:#c62828}
button.approve{background:#e6f4ea} button.reject{background:#fdecea}
</style></head>
<body>
<h1 id="title">EdiDub review</h1>
<p>Play the original and the dub side by side; rate lip synchronisation and naturalness from 1 (bad) to 10 (perfect),
as in the paper's MOS study, then approve or reject the shot. Every change is saved at once.
Export: <a id="export-csv" href="/export.csv">CSV</a> · <a id="export-otio" href="/export.otio">OTIO markers</a></p>
<p><label>reviewer <input id="reviewer" placeholder="your name"></label> (saved with every rating)</p>
<div id="shots">loading…</div>
<script>
"use strict";
// the token of the address `edidub review` printed: sent with every request (the server answers nothing without it)
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const AUTH = {"Authorization": "token " + TOKEN}, Q = "?token=" + encodeURIComponent(TOKEN);
const options = (sel) => '<option value="">–</option>' + Array.from({length: 10}, (_, i) => `<option value="${i + 1}"${sel === i + 1 ? " selected" : ""}>${i + 1}</option>`).join("");
function esc(s) { return String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }
async function save(id, fields) {
  const card = document.querySelector(`[data-shot="${CSS.escape(id)}"]`);
  const status = card.querySelector(".saved");
  status.textContent = "saving…"; status.className = "saved";
  const reviewer = document.getElementById("reviewer").value.trim();
  if (reviewer) fields = {...fields, reviewer};
  const r = await fetch("/api/shots/" + encodeURIComponent(id), {method: "POST", headers: {...AUTH, "Content-Type": "application/json"}, body: JSON.stringify(fields)});
  const body = await r.json();
  if (!r.ok) { status.textContent = body.error || "not saved"; status.className = "saved error"; return; }
  const v = card.querySelector(".verdict");
  v.textContent = body.verdict; v.className = "verdict " + body.verdict;
  status.textContent = "saved"; card.dataset.saved = String(Date.now());
}
function render(batch) {
  document.getElementById("title").textContent = batch.title || "EdiDub review";
  const root = document.getElementById("shots");
  root.innerHTML = "";
  batch.shots.forEach((s, i) => {
    const div = document.createElement("div");
    div.className = "shot"; div.dataset.shot = s.shot_id; div.id = "shot-" + i;
    const t0 = s.start_s ?? 0, t1 = s.end_s ?? "";
    div.innerHTML = `<h2>${esc(s.shot_id)}</h2>
      <div class="pair">
        <figure><video class="original" controls preload="metadata" src="/media/${i}/original${Q}${s.proxy ? "" : `#t=${t0},${t1}`}"></video><figcaption>original: ${esc(s.original)} frames ${s.start_frame}–${s.end_frame - 1}${s.proxy ? " (H.264 proxy)" : ""}</figcaption></figure>
        <figure><video class="dubbed" controls preload="metadata" src="/media/${i}/dubbed${Q}"></video><figcaption>dub: ${esc(s.dubbed)}</figcaption></figure>
      </div>
      ${(s.warnings || []).map(w => `<div class="warn">⚠ ${esc(w)}</div>`).join("")}
      <div class="controls">
        <button class="play-both">▶ play both</button>
        <label><input type="checkbox" class="original-sound"> original's sound</label>
        <label>sync <select class="rating-sync" name="sync">${options(s.review.sync)}</select></label>
        <label>naturalness <select class="rating-naturalness" name="naturalness">${options(s.review.naturalness)}</select></label>
        <button class="approve">approve</button><button class="reject">reject</button>
        <span>verdict: <span class="verdict ${s.review.verdict}">${s.review.verdict}</span></span>
        <input class="note" placeholder="note" value="${esc(s.review.note)}">
        <span class="saved"></span>
      </div>`;
    const [orig, dub] = div.querySelectorAll("video");
    orig.muted = true;  // the two soundtracks at once are noise: the original is heard only when asked
    const hear = div.querySelector(".original-sound");
    hear.onchange = () => { orig.muted = !hear.checked; dub.muted = hear.checked; };
    div.querySelector(".play-both").onclick = () => { orig.currentTime = t0; dub.currentTime = 0; orig.play(); dub.play(); };
    div.querySelector(".rating-sync").onchange = e => save(s.shot_id, {sync: e.target.value || null});
    div.querySelector(".rating-naturalness").onchange = e => save(s.shot_id, {naturalness: e.target.value || null});
    div.querySelector(".approve").onclick = () => save(s.shot_id, {verdict: "approved"});
    div.querySelector(".reject").onclick = () => save(s.shot_id, {verdict: "rejected"});
    div.querySelector(".note").onchange = e => save(s.shot_id, {note: e.target.value});
    root.appendChild(div);
  });
  document.body.dataset.ready = "1";
}
const who = document.getElementById("reviewer");
who.value = localStorage.getItem("edidub-reviewer") || "";
who.onchange = () => localStorage.setItem("edidub-reviewer", who.value.trim());
for (const which of ["csv", "otio"]) document.getElementById("export-" + which).href = "/export." + which + Q;
fetch("/api/shots", {headers: AUTH}).then(async r => { const body = await r.json(); if (!r.ok) throw new Error(body.error); return body; }).then(render).catch(e => { document.getElementById("shots").textContent = "cannot load the batch: " + e; });
</script>
</body></html>
"""
