// EdiDub CEP host (ExtendScript, Premiere Pro before UXP). Called by host_cep.js; answers JSON.
// Track indices are 0-based (V1 = 0); times are tick strings (254016000000 per second).
// TrackItem.start/.end are sequence times without the zero point; .inPoint/.outPoint are source times.

function edidub_json(value) {
    // ExtendScript has no JSON object in every version: a small serialiser for plain data.
    if (value === null || value === undefined) return "null";
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    if (typeof value === "string") return '"' + value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
    var parts = [], k;
    if (value instanceof Array) { for (k = 0; k < value.length; k++) parts.push(edidub_json(value[k])); return "[" + parts.join(",") + "]"; }
    for (k in value) if (value.hasOwnProperty(k)) parts.push(edidub_json(String(k)) + ":" + edidub_json(value[k]));
    return "{" + parts.join(",") + "}";
}

function edidub_parse(text) { return eval("(" + text + ")"); }

function edidub_sequence() {
    var seq = app.project.activeSequence;
    if (!seq) throw new Error("No active sequence: open the sequence to dub in the timeline");
    return seq;
}

function edidub_listAudioTracks() {
    try {
        var seq = edidub_sequence(), out = [];
        for (var i = 0; i < seq.audioTracks.numTracks; i++) out.push({index: i, name: seq.audioTracks[i].name || ("A" + (i + 1))});
        return edidub_json(out);
    } catch (e) { return edidub_json({error: String(e.message || e)}); }
}

function edidub_readSelection(arg) {
    try {
        var dubIndex = edidub_parse(arg), seq = edidub_sequence(), shots = [], skipped = [], clips = [], i, j, clip;
        for (i = 0; i < seq.videoTracks.numTracks; i++) {
            for (j = 0; j < seq.videoTracks[i].clips.numItems; j++) {
                clip = seq.videoTracks[i].clips[j];
                if (!clip.isSelected()) continue;
                var path = clip.projectItem ? clip.projectItem.getMediaPath() : "";
                if (!path) { skipped.push(clip.name + ": no media file"); continue; }
                shots.push({item: "V" + (i + 1) + "@" + clip.start.ticks, name: clip.name, path: path, track_index: i,
                            start: clip.start.ticks, end: clip.end.ticks, "in": clip.inPoint.ticks, out: clip.outPoint.ticks});
            }
        }
        var sequenceInfo = {name: seq.name, timebase: String(seq.timebase), zero_point: String(seq.zeroPoint)};
        if (dubIndex === null) return edidub_json({sequence: sequenceInfo, dub_track: null, shots: shots, skipped: skipped});  // Adapt to actor: the takes
        var track = seq.audioTracks[dubIndex];
        if (!track) throw new Error("The sequence has no audio track A" + (dubIndex + 1));
        for (j = 0; j < track.clips.numItems; j++) {
            clip = track.clips[j];
            if (!clip.projectItem) continue;
            clips.push({name: clip.name, path: clip.projectItem.getMediaPath(), start: clip.start.ticks, end: clip.end.ticks, "in": clip.inPoint.ticks});
        }
        return edidub_json({sequence: sequenceInfo,
                            dub_track: {index: dubIndex, name: track.name || ("A" + (dubIndex + 1)), clips: clips},
                            shots: shots, skipped: skipped});
    } catch (e) { return edidub_json({error: String(e.message || e)}); }
}

function edidub_placeResult(arg) {
    try {
        var r = edidub_parse(arg), seq = edidub_sequence();
        if (!app.project.importFiles([r.path], true, app.project.rootItem, false)) throw new Error("Premiere did not import " + r.path);
        var found = app.project.rootItem.findItemsMatchingMediaPath(r.path, true);
        if (!found || found.length === 0) throw new Error("Imported " + r.path + " but cannot find it in the project");
        if (r.video_track_index >= seq.videoTracks.numTracks) {
            app.enableQE();  // adding a track needs the QE DOM
            qe.project.getActiveSequence().addTracks(1, seq.videoTracks.numTracks, 0);
        }
        seq.videoTracks[r.video_track_index].overwriteClip(found[0], String(r.ticks));  // the time as a ticks string
        return edidub_json({project_item: found[0].name, video_track_index: r.video_track_index, audio_track_index: r.audio_track_index,
                            ticks: String(r.ticks), action: "overwrite"});
    } catch (e) { return edidub_json({error: String(e.message || e)}); }
}
