/* EdiDub panel — every call into Premiere Pro lives here (UXP `premierepro` module).
 *
 * The rest of the panel (panel.js) only sees window.EdidubHost:
 *   listAudioTracks()            -> [{index, name}]
 *   readSelection(dubTrackIndex) -> {sequence: {name, timebase, zero_point}, dub_track: {index, name, clips}, shots}
 *                                   (dubTrackIndex null: the selected video clips alone, dub_track null — the takes
 *                                   "Adapt to actor" sends)
 *   placeResult(result)          -> {project_item, video_track_index, audio_track_index, ticks, action}
 * Times are TickTime.ticks strings (254016000000 ticks per second); track indices are 0-based.
 *
 * Which Premiere: the UXP module when present (Premiere 25.6+), else the CEP host (host_cep.js,
 * older Premiere), else window.premierepro — a test double with the same documented names.
 */
(function (global) {
  "use strict";

  function loadPpro() {
    if (global.premierepro) return global.premierepro; // a test double, or a host that exposes it
    if (typeof require === "function") {
      try { return require("premierepro"); } catch (e) { /* not UXP */ }
    }
    return null;
  }

  async function context() {
    const ppro = loadPpro();
    if (!ppro) throw new Error("The Premiere Pro API is not available: open this panel inside Premiere Pro 25.6 or later");
    const project = await ppro.Project.getActiveProject();
    if (!project) throw new Error("No project is open in Premiere Pro");
    const sequence = await project.getActiveSequence();
    if (!sequence) throw new Error("No active sequence: open the sequence to dub in the timeline");
    return { ppro, project, sequence };
  }

  const ticksOf = (t) => String(t.ticks);

  async function mediaPathOf(ppro, trackItem) {
    const projectItem = await trackItem.getProjectItem();
    const clip = projectItem ? ppro.ClipProjectItem.cast(projectItem) : null;
    return clip ? await clip.getMediaFilePath() : "";
  }

  async function listAudioTracks() {
    const { sequence } = await context();
    const count = await sequence.getAudioTrackCount();
    const tracks = [];
    for (let i = 0; i < count; i++) {
      const track = await sequence.getAudioTrack(i);
      tracks.push({ index: i, name: (track && track.name) || `A${i + 1}` });
    }
    return tracks;
  }

  async function readSelection(dubTrackIndex) {
    const { ppro, sequence } = await context();
    const timebase = String(await sequence.getTimebase());
    const zeroPoint = await sequence.getZeroPoint();
    const videoTrackCount = await sequence.getVideoTrackCount();
    const videoType = videoTrackCount > 0 ? String(await (await sequence.getVideoTrack(0)).getMediaType()) : null;

    const selection = await sequence.getSelection();
    const shots = [];
    const skipped = [];
    for (const item of await selection.getTrackItems()) {
      if (videoType === null || String(await item.getMediaType()) !== videoType) continue; // the audio half of a linked clip
      const name = await item.getName();
      const path = await mediaPathOf(ppro, item);
      if (!path) { skipped.push(`${name}: no media file (offline, a sequence or a graphic)`); continue; }
      const trackIndex = await item.getTrackIndex();
      const start = ticksOf(await item.getStartTime());
      shots.push({
        item: `V${trackIndex + 1}@${start}`, name, path, track_index: trackIndex,
        start, end: ticksOf(await item.getEndTime()),
        in: ticksOf(await item.getInPoint()), out: ticksOf(await item.getOutPoint()),
      });
    }

    const sequenceInfo = { name: sequence.name, timebase, zero_point: ticksOf(zeroPoint) };
    if (dubTrackIndex === null) return { sequence: sequenceInfo, dub_track: null, shots, skipped };
    const dubTrack = await sequence.getAudioTrack(dubTrackIndex);
    if (!dubTrack) throw new Error(`The sequence has no audio track A${dubTrackIndex + 1}`);
    const clips = [];
    for (const item of await dubTrack.getTrackItems(ppro.Constants.TrackItemType.CLIP, false)) {
      const path = await mediaPathOf(ppro, item);
      if (!path) continue;
      clips.push({
        name: await item.getName(), path,
        start: ticksOf(await item.getStartTime()), end: ticksOf(await item.getEndTime()), in: ticksOf(await item.getInPoint()),
      });
    }
    return {
      sequence: sequenceInfo,
      dub_track: { index: dubTrackIndex, name: dubTrack.name || `A${dubTrackIndex + 1}`, clips },
      shots, skipped,
    };
  }

  async function findProjectItem(ppro, folder, path, depth) {
    for (const child of await folder.getItems()) {
      const clip = ppro.ClipProjectItem.cast(child);
      if (clip) {
        let media = "";
        try { media = await clip.getMediaFilePath(); } catch (e) { media = ""; }
        if (media === path) return clip;
      }
      const bin = depth < 8 ? ppro.FolderItem.cast(child) : null;
      if (bin && !clip) {
        const found = await findProjectItem(ppro, bin, path, depth + 1);
        if (found) return found;
      }
    }
    return null;
  }

  /* Import the dubbed clip and overwrite it onto the track above the source, at the shot's
     record time, as one undoable step. A track index past the last track: an insert action,
     which Premiere answers by adding the track (createInsertProjectItemAction's documented rule).
     The render is picture only (the bridge asks for no sound), so neither edit touches an audio
     track: the editor's dub line stays, and an insert with limitShift moves nothing else. */
  async function placeResult(result) {
    const { ppro, project, sequence } = await context();
    const imported = await project.importFiles([result.path], true, await project.getRootItem(), false);  // targetBin: a ProjectItem
    if (!imported) throw new Error(`Premiere did not import ${result.path}`);
    const item = await findProjectItem(ppro, await project.getRootItem(), result.path, 0);
    if (!item) throw new Error(`Imported ${result.path} but cannot find it in the project`);
    const time = ppro.TickTime.createWithTicks(String(result.ticks));
    const editor = ppro.SequenceEditor.getEditor(sequence);
    const videoTracks = await sequence.getVideoTrackCount();
    const insert = result.video_track_index >= videoTracks;
    let ok = false;
    project.lockedAccess(() => {
      ok = project.executeTransaction((compoundAction) => {
        const action = insert
          ? editor.createInsertProjectItemAction(item, time, result.video_track_index, result.audio_track_index, true)
          : editor.createOverwriteItemAction(item, time, result.video_track_index, result.audio_track_index);
        compoundAction.addAction(action);
      }, `EdiDub: dub ${result.name || "shot"}`);
    });
    if (ok === false) throw new Error("Premiere refused the edit (is the target track locked?)");
    return { project_item: item.name, video_track_index: result.video_track_index, audio_track_index: result.audio_track_index,
             ticks: String(result.ticks), action: insert ? "insert (new track)" : "overwrite" };
  }

  const uxpHost = { kind: "uxp", listAudioTracks, readSelection, placeResult };
  if (loadPpro()) global.EdidubHost = uxpHost;
  else if (global.EdidubCepHost && global.EdidubCepHost.available()) global.EdidubHost = global.EdidubCepHost;
  else global.EdidubHost = uxpHost; // fails with a clear message on use
})(typeof window !== "undefined" ? window : globalThis);
