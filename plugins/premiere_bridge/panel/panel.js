/* EdiDub panel — talks to the local bridge (`edidub bridge premiere`) over a WebSocket and to
 * Premiere only through window.EdidubHost (premiere.js), so it runs in any browser for tests.
 *
 * Protocol: first message {op:"hello", token, session, jobs}; then "dub", "adapt", "cancel", "ack".
 * The bridge pushes welcome / accepted / adapt_accepted / progress / done / failed / cancelled / error / daemon.
 * Results belong to the panel's session: after a reconnect the bridge re-sends what was missed,
 * and the panel acks each result once it is placed (a repeat is recognised and only acked).
 * "Adapt to actor" sends the selected clips as one actor's takes; its result is a model bundle, which
 * becomes the Model choice every later dub names (options.model). */
(function (global) {
  "use strict";
  const doc = global.document;
  const store = global.localStorage;
  const $ = (id) => doc.getElementById(id);
  const KEY = { url: "edidub.bridge.url", token: "edidub.bridge.token", session: "edidub.session", jobs: "edidub.jobs", placed: "edidub.placed",
                model: "edidub.model", actor: "edidub.actor", strength: "edidub.strength" };
  const TICKS_PER_SECOND = 254016000000n;

  const state = { ws: null, connected: false, wantConnection: false, retry: null, session: store.getItem(KEY.session) || "",
                  rows: new Map(), jobs: loadJSON(KEY.jobs, {}), placed: new Set(loadJSON(KEY.placed, [])), timebase: null };

  function loadJSON(key, fallback) { try { return JSON.parse(store.getItem(key)) || fallback; } catch (e) { return fallback; } }
  function saveJobs() { store.setItem(KEY.jobs, JSON.stringify(state.jobs)); }
  function savePlaced() { store.setItem(KEY.placed, JSON.stringify([...state.placed].slice(-500))); }

  function log(text, kind) {
    const li = doc.createElement("li");
    li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
    if (kind) li.className = kind;
    $("log").appendChild(li);
    $("log").scrollTop = $("log").scrollHeight;
  }
  function setStatus(text, kind) { const s = $("status"); s.textContent = text; s.className = `pill ${kind}`; }
  function errorText(m) { return `${m.message || m.code}${m.hint ? ` — ${m.hint}` : ""}`; }

  function timecode(ticks) {
    if (!state.timebase) return `${ticks} ticks`;
    const frames = (BigInt(ticks) + BigInt(state.zeroPoint || "0")) / BigInt(state.timebase); // sequence timecode (NDF count)
    const fps = BigInt(Math.round(Number(TICKS_PER_SECOND) / Number(state.timebase)));
    const pad = (n) => String(n).padStart(2, "0");
    const s = frames / fps;
    return `${pad(s / 3600n)}:${pad((s / 60n) % 60n)}:${pad(s % 60n)}:${pad(frames % fps)} (record frame ${frames})`;
  }

  // -- shot rows ------------------------------------------------------------------------------
  function row(job) {
    let r = state.rows.get(job.job_id);
    if (!r) {
      const li = doc.createElement("li");
      li.dataset.jobId = job.job_id;
      li.innerHTML = '<div class="name"><b></b><span class="state">queued</span></div><div class="bar"><div class="fill"></div></div><div class="detail"></div>';
      li.querySelector("b").textContent = job.kind === "adapt" ? `Adapt to ${job.name}` : (job.name || job.shot_id);
      $("shots").appendChild(li);
      r = { li, maxDone: 0 };
      state.rows.set(job.job_id, r);
    }
    return r;
  }
  function showProgress(m) {
    const r = row(m);
    const total = m.frames_total || 0, done = m.frames_done || 0;
    const adapt = m.kind === "adapt"; // an adaptation counts training steps, a dub frames
    r.li.className = m.state;
    r.li.querySelector(".state").textContent = m.state === "running" ? (adapt ? "training" : (m.stage || "running")) : m.state;
    r.li.querySelector(".fill").style.width = total ? `${Math.min(100, (100 * done) / total).toFixed(1)}%` : "0%";
    r.li.querySelector(".detail").textContent = total ? `${adapt ? "step " : ""}${done}/${total}${adapt ? "" : " frames"}${m.eta_s ? ` · ${Math.ceil(m.eta_s)} s left` : ""}`
      : (adapt && m.state === "running" ? "reading the takes (faces, speech)…" : "");
    r.maxDone = Math.max(r.maxDone, total ? done / total : 0);
    r.li.dataset.maxProgress = r.maxDone.toFixed(3);
    updateButtons();
  }
  function finishRow(m, text) {
    const r = row(m);
    r.li.className = m.op;
    r.li.querySelector(".state").textContent = m.op === "done" ? (m.kind === "adapt" ? "ready" : "placed") : m.op;
    if (m.op === "done") { // a full bar, even where the dub finished between two progress events (a few frames take a second)
      r.li.querySelector(".fill").style.width = "100%";
      r.maxDone = 1;
      r.li.dataset.maxProgress = r.maxDone.toFixed(3);
    }
    r.li.querySelector(".detail").textContent = text;
    updateButtons();
  }
  function running() { return Object.keys(state.jobs).filter((id) => !["done", "failed", "cancelled"].includes(state.jobs[id].state)); }
  function updateButtons() {
    $("cancel").disabled = !state.connected || running().length === 0;
    $("dub").disabled = !state.connected;
    $("adapt").disabled = !state.connected;
  }

  // -- models ---------------------------------------------------------------------------------
  function addModel(name) {
    const select = $("model");
    if (name && ![...select.options].some((o) => o.value === name)) {
      const option = doc.createElement("option");
      option.value = name;
      option.textContent = name;
      select.appendChild(option);
    }
  }
  function fillModels(names) {
    const wanted = store.getItem(KEY.model) || "";
    for (const name of names) addModel(name);
    if (wanted && !names.includes(wanted)) log(`The daemon does not serve the model ${wanted}; dubbing with its default`, "warn");
    $("model").value = names.includes(wanted) ? wanted : "";
  }
  function useModel(name) {
    addModel(name);
    $("model").value = name;
    store.setItem(KEY.model, name);
  }

  // -- the bridge -----------------------------------------------------------------------------
  function send(message) {
    if (!state.ws || state.ws.readyState !== 1) { log("Not connected to the EdiDub bridge", "error"); return false; }
    state.ws.send(JSON.stringify(message));
    return true;
  }

  function connect() {
    const url = $("bridge-url").value.trim();
    const token = $("bridge-token").value.trim();
    store.setItem(KEY.url, url);
    store.setItem(KEY.token, token);
    if (!token) { setStatus("no token", "bad"); log("Paste the bridge's token (run `edidub bridge premiere --print-token`)", "error"); return; }
    clearTimeout(state.retry);
    if (state.ws) { state.ws.onclose = null; state.ws.close(); }
    state.wantConnection = true;
    setStatus("connecting…", "off");
    let ws;
    try { ws = new WebSocket(url); } catch (e) { setStatus("bad address", "bad"); log(`Cannot open ${url}: ${e.message}`, "error"); return; }
    state.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ op: "hello", token, session: state.session || undefined, client: "edidub-premiere-panel/0.1",
                                                jobs: Object.values(state.jobs) }));
    ws.onmessage = (event) => { let m; try { m = JSON.parse(event.data); } catch (e) { return; } handle(m); };
    ws.onclose = (event) => {
      state.connected = false;
      updateButtons();
      if (event.code === 4401) { state.wantConnection = false; setStatus("token refused", "bad"); return; }
      setStatus("bridge not running", "bad");
      if (state.wantConnection) state.retry = setTimeout(connect, 2000);
    };
  }

  async function handle(m) {
    switch (m.op) {
      case "welcome":
        state.connected = true;
        state.session = m.session;
        store.setItem(KEY.session, m.session);
        if (m.daemon && m.daemon.ok) {
          setStatus("connected", "ok");
          log(`Connected: EdiDub ${m.daemon.engine_version} (${(m.daemon.devices || []).join(", ")})`, "ok");
          fillModels(m.daemon.models || []);
        }
        else { setStatus("daemon down", "bad"); log(`Connected to the bridge, but the EdiDub daemon is not answering: ${errorText(m.daemon || {})}`, "error"); }
        for (const job of m.jobs || []) { state.jobs[job.job_id] = Object.assign(state.jobs[job.job_id] || {}, job); row(job); }
        saveJobs();
        updateButtons();
        refreshTracks();
        break;
      case "accepted":
        if (m.rate) log(`Sequence ${m.sequence} at ${m.rate} fps: ${m.jobs.length} shot(s) queued`);
        for (const job of m.jobs) {
          state.jobs[job.job_id] = { job_id: job.job_id, shot_id: job.shot_id, item: job.item, name: job.name, place: job.place, state: "queued" };
          row(job);
          log(`${job.name}: source frames ${job.source_frames[0]}–${job.source_frames[1]}, record ${job.record[0]}–${job.record[1]}`);
        }
        for (const s of m.skipped || []) log(`Skipped ${s.clip}: ${s.message}`, "warn");
        for (const w of m.warnings || []) log(w, "warn");
        saveJobs();
        updateButtons();
        break;
      case "adapt_accepted":
        state.jobs[m.job.job_id] = { job_id: m.job.job_id, shot_id: m.job.shot_id, item: "", name: m.job.name, place: {}, kind: "adapt", state: "queued" };
        row(m.job);
        log(`Adapting a model for ${m.job.name} on ${m.takes.length} take(s): ` +
            m.takes.map((t) => `${t.name} frames ${t.start_frame}–${t.end_frame}`).join(", "));
        for (const s of m.skipped || []) log(`Left out ${s.clip}: ${s.message}`, "warn");
        saveJobs();
        updateButtons();
        break;
      case "progress":
        if (state.jobs[m.job_id]) { state.jobs[m.job_id].state = m.state; saveJobs(); }
        showProgress(m);
        break;
      case "done":
        if (m.kind === "adapt") adapted(m);
        else await place(m);
        break;
      case "failed":
      case "cancelled":
        finishRow(m, m.error ? errorText(m.error) : "");
        log(`${m.name}: ${m.op}${m.error ? ` — ${errorText(m.error)}` : ""}`, m.op === "failed" ? "error" : "warn");
        forget(m.job_id);
        break;
      case "error":
        log(`${m.code}: ${errorText(m)}`, "error");
        if (m.code === "DAEMON_DOWN") setStatus("daemon down", "bad");
        if (m.code === "AUTH_FAILED") setStatus("token refused", "bad");
        break;
      case "daemon":
        log(m.ok ? m.message : `The EdiDub daemon stopped answering: ${errorText(m)}`, m.ok ? "ok" : "error");
        setStatus(m.ok ? "connected" : "daemon down", m.ok ? "ok" : "bad");
        break;
      case "cancel_reply":
        for (const r of m.results || []) if (!r.ok) log(`Cancel ${r.job_id}: ${r.message}`, "warn");
        break;
      default:
        break;
    }
  }

  async function place(m) {
    if (state.placed.has(m.job_id)) { forget(m.job_id); return; } // delivered again after a reconnect
    row(m).li.querySelector(".state").textContent = "placing…";
    try {
      const placed = await global.EdidubHost.placeResult({ path: m.path, ticks: m.place.ticks, video_track_index: m.place.video_track_index,
                                                          audio_track_index: m.place.audio_track_index, name: m.name });
      state.placed.add(m.job_id);
      savePlaced();
      const text = `${placed.action} on V${placed.video_track_index + 1} at ${timecode(placed.ticks)}`;
      const review = m.quality && m.quality.verdict === "review";
      finishRow(m, `${m.frames[1] - m.frames[0]} frames, ${m.frames_edited} edited · ${text}` + (m.model ? ` · model ${m.model}` : "") +
                (review ? ` · QC: review — ${(m.quality.reasons || []).join("; ")}` : m.quality && m.quality.verdict ? " · QC ok" : ""));
      row(m).li.dataset.qc = (m.quality && m.quality.verdict) || "";
      log(`${m.name}: imported ${m.path} and placed it (${text})`, "ok");
      forget(m.job_id);
    } catch (e) {
      finishRow(Object.assign({}, m, { op: "failed" }), `rendered to ${m.path}, but placing failed: ${e.message}`);
      log(`${m.name}: rendered to ${m.path}, but placing it failed: ${e.message}`, "error");
      forget(m.job_id);
    }
  }

  function adapted(m) {
    const b = m.bundle || {};
    const figures = `lip sync on the held-back frames ${Number(b.before_db).toFixed(2)} → ${Number(b.after_db).toFixed(2)} dB, ${b.steps} steps`;
    finishRow(m, `model ${b.name} · ${figures}`);
    useModel(b.name);
    log(`Model ${b.name} is ready (${figures}); dubbing now uses it`, "ok");
    forget(m.job_id);
  }

  function forget(jobId) {
    if (state.jobs[jobId]) { state.jobs[jobId].state = "finished"; delete state.jobs[jobId]; saveJobs(); }
    send({ op: "ack", job_id: jobId });
    updateButtons();
  }

  // -- Premiere -------------------------------------------------------------------------------
  async function refreshTracks() {
    const select = $("dub-track");
    const previous = select.value || store.getItem("edidub.dubTrack") || "";
    try {
      const tracks = await global.EdidubHost.listAudioTracks();
      select.innerHTML = "";
      for (const t of tracks) {
        const option = doc.createElement("option");
        option.value = String(t.index);
        option.textContent = `A${t.index + 1}${t.name && t.name !== `A${t.index + 1}` ? ` · ${t.name}` : ""}`;
        select.appendChild(option);
      }
      if ([...select.options].some((o) => o.value === previous)) select.value = previous;
      else if (tracks.length > 1) select.value = String(tracks[tracks.length - 1].index);
      // A two-shot: the dub track is the left face's (face 0), this one the right face's (face 1)
      const second = $("face1-track");
      const kept = second.value;
      second.innerHTML = "";
      second.appendChild(Object.assign(doc.createElement("option"), { value: "", textContent: "(one face)" }));
      for (const option of select.options) second.appendChild(option.cloneNode(true));
      if ([...second.options].some((o) => o.value === kept)) second.value = kept;
    } catch (e) {
      log(`Cannot read the sequence's audio tracks: ${e.message}`, "error");
    }
  }

  async function dubSelected() {
    if (!state.connected) { log("Not connected to the EdiDub bridge", "error"); return; }
    const dubTrack = parseInt($("dub-track").value, 10);
    if (Number.isNaN(dubTrack)) { log("Choose the dub audio track first", "error"); return; }
    store.setItem("edidub.dubTrack", String(dubTrack));
    let selection;
    try { selection = await global.EdidubHost.readSelection(dubTrack); }
    catch (e) { log(e.message, "error"); return; }
    for (const s of selection.skipped || []) log(`Skipped ${s}`, "warn");
    if (!selection.shots.length) { log("Select the video clips to dub in the timeline", "error"); return; }
    state.timebase = selection.sequence.timebase;
    state.zeroPoint = selection.sequence.zero_point;
    const requestId = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const secondTrack = $("face1-track").value === "" ? null : parseInt($("face1-track").value, 10);
    let faceTracks = null;
    if (secondTrack !== null) {  // a two-shot: each face's line on its own track, in one render
      if (secondTrack === dubTrack) { log("The second face needs a dub track of its own", "error"); return; }
      let second;
      try { second = await global.EdidubHost.readSelection(secondTrack); }
      catch (e) { log(e.message, "error"); return; }
      faceTracks = [{ face: "0", ...selection.dub_track }, { face: "1", ...second.dub_track }];
    }
    const model = $("model").value;
    const strength = editStrength();
    if (strength === null) { log("Edit strength is a number over 0 and at most 1 (1 follows the dub line fully)", "error"); $("strength").focus(); return; }
    log(`Dubbing ${selection.shots.length} shot(s) with ${selection.dub_track.name}${model ? `, model ${model}` : ""}` +
        `${strength < 1 ? `, edit strength ${strength}` : ""}…`);
    send({ op: "dub", request_id: requestId, sequence: selection.sequence, dub_track: selection.dub_track, shots: selection.shots,
           ...(faceTracks ? { face_tracks: faceTracks } : {}), options: { ...(model ? { model } : {}), strength } });
  }

  /** The Edit strength box as a number in (0, 1], or null when it holds something else. */
  function editStrength() {
    const value = Number($("strength").value);
    return Number.isFinite(value) && value > 0 && value <= 1 ? value : null;
  }

  async function adaptSelected() {
    if (!state.connected) { log("Not connected to the EdiDub bridge", "error"); return; }
    const name = $("actor-name").value.trim();
    if (!name) { log("Name the actor first (the name of the new model)", "error"); $("actor-name").focus(); return; }
    store.setItem(KEY.actor, name);
    let selection;
    try { selection = await global.EdidubHost.readSelection(null); }
    catch (e) { log(e.message, "error"); return; }
    for (const s of selection.skipped || []) log(`Skipped ${s}`, "warn");
    if (!selection.shots.length) { log("Select the actor's takes (video clips) in the timeline", "error"); return; }
    const requestId = `a${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    log(`Adapting a model for ${name} on ${selection.shots.length} selected clip(s)…`);
    send({ op: "adapt", request_id: requestId, name, clips: selection.shots });
  }

  function cancelAll() {
    const ids = running();
    if (ids.length && send({ op: "cancel", job_ids: ids })) log(`Cancelling ${ids.length} shot(s)…`, "warn");
  }

  // -- start ----------------------------------------------------------------------------------
  $("bridge-url").value = store.getItem(KEY.url) || $("bridge-url").value;
  $("bridge-token").value = store.getItem(KEY.token) || "";
  $("connect").addEventListener("click", connect);
  $("dub").addEventListener("click", dubSelected);
  $("cancel").addEventListener("click", cancelAll);
  $("refresh-tracks").addEventListener("click", refreshTracks);
  $("adapt").addEventListener("click", adaptSelected);
  $("model").addEventListener("change", () => store.setItem(KEY.model, $("model").value));
  $("strength").value = store.getItem(KEY.strength) || "1";
  $("strength").addEventListener("change", () => store.setItem(KEY.strength, $("strength").value));
  $("actor-name").value = store.getItem(KEY.actor) || "";
  updateButtons();
  if ($("bridge-token").value) connect();
  else { $("settings").open = true; refreshTracks(); }
  global.EdidubPanel = { connect, dubSelected, adaptSelected, cancelAll, state };
})(window);
