/* A test double of Premiere Pro's UXP `premierepro` module, built from the documented names
 * (Project.getActiveProject, Project.getActiveSequence/importFiles/getRootItem/lockedAccess/
 * executeTransaction, Sequence.getSelection/getTimebase/getZeroPoint/get{Video,Audio}Track(Count),
 * TrackItemSelection.getTrackItems, track items' getStartTime/getEndTime/getInPoint/getOutPoint/
 * getName/getMediaType/getTrackIndex/getProjectItem, ClipProjectItem.cast/getMediaFilePath,
 * FolderItem.cast/getItems, TickTime.createWithTicks, SequenceEditor.getEditor/
 * createOverwriteItemAction/createInsertProjectItemAction, Constants.TrackItemType).
 * The sequence comes from window.__PPRO_FIXTURE__; every call that changes the project is
 * recorded in window.__ppro.calls. */
(function (global) {
  "use strict";
  const fixture = global.__PPRO_FIXTURE__;
  const calls = [];
  const state = { inLock: false, inTransaction: false };
  global.__ppro = { calls, state };
  const later = (value) => new Promise((resolve) => setTimeout(() => resolve(value), 1)); // async like the real API
  const TICKS = 254016000000;

  class Guid { constructor(s) { this.s = s; } toString() { return this.s; } static fromString(s) { return new Guid(s); } }
  const VIDEO = new Guid("video-media-type"), AUDIO = new Guid("audio-media-type");

  class TickTime {
    constructor(ticks) { this.ticks = String(ticks); this.ticksNumber = Number(ticks); this.seconds = Number(ticks) / TICKS; }
    static createWithTicks(ticks) { if (typeof ticks !== "string") throw new TypeError("createWithTicks takes a string"); return new TickTime(ticks); }
    static createWithSeconds(s) { return new TickTime(Math.round(s * TICKS)); }
  }
  TickTime.TIME_ZERO = new TickTime("0");

  class ProjectItem { constructor(name, path) { this.name = name; this._path = path; this.type = 1; } }
  class ClipProjectItem extends ProjectItem {
    static cast(item) { return item instanceof ClipProjectItem ? item : null; }
    async getMediaFilePath() { return later(this._path); }
  }
  class FolderItem extends ProjectItem {
    constructor(name) { super(name, ""); this.items = []; this.type = 2; }
    static cast(item) { return item instanceof FolderItem ? item : null; }
    async getItems() { return later(this.items.slice()); }
  }
  const root = new FolderItem("root");
  const footage = new FolderItem("Footage");
  root.items.push(footage);
  const byPath = new Map();
  function projectItem(path) {
    if (!byPath.has(path)) { const item = new ClipProjectItem(path.split(/[\\/]/).pop(), path); byPath.set(path, item); footage.items.push(item); }
    return byPath.get(path);
  }

  class TrackItem {
    constructor(data, trackIndex, mediaType) { this.d = data; this.trackIndex = trackIndex; this.mediaType = mediaType; }
    async getName() { return later(this.d.name); }
    async getStartTime() { return later(new TickTime(this.d.start)); }
    async getEndTime() { return later(new TickTime(this.d.end)); }
    async getInPoint() { return later(new TickTime(this.d.in)); }
    async getOutPoint() { return later(new TickTime(this.d.out || "0")); }
    async getTrackIndex() { return later(this.trackIndex); }
    async getMediaType() { return later(this.mediaType); }
    async getIsSelected() { return later(!!this.d.selected); }
    async getProjectItem() { return later(projectItem(this.d.path)); }
  }
  class Track {
    constructor(data, index, mediaType) { this.name = data.name; this.id = index; this.mediaType = mediaType;
                                          this.items = data.items.map((d) => new TrackItem(d, index, mediaType)); }
    async getIndex() { return later(this.id); }
    async getMediaType() { return later(this.mediaType); }
    getTrackItems(type, includeEmpty) { if (type !== Constants.TrackItemType.CLIP) throw new Error("expected TrackItemType.CLIP"); return this.items.slice(); }
  }
  const seq = fixture.sequence;
  const videoTracks = seq.video_tracks.map((t, i) => new Track(t, i, VIDEO));
  const audioTracks = seq.audio_tracks.map((t, i) => new Track(t, i, AUDIO));

  const sequence = {
    name: seq.name,
    async getTimebase() { return later(String(seq.timebase)); },
    async getZeroPoint() { return later(new TickTime(seq.zero_point)); },
    async getVideoTrackCount() { return later(videoTracks.length); },
    async getAudioTrackCount() { return later(audioTracks.length); },
    async getVideoTrack(i) { return later(videoTracks[i]); },
    async getAudioTrack(i) { return later(audioTracks[i]); },
    async getSelection() {
      const selected = [...videoTracks, ...audioTracks].flatMap((t) => t.items.filter((it) => it.d.selected));
      return later({ getTrackItems: () => selected.slice() });
    },
  };

  function action(kind, item, time, v, a, extra) {
    if (!state.inLock) throw new Error(`${kind} action created outside lockedAccess`);
    const record = { fn: kind, projectItem: item.name, path: item._path, ticks: time.ticks, videoTrackIndex: v, audioTrackIndex: a, inLock: state.inLock, ...extra };
    return { record };
  }
  const editor = {
    createOverwriteItemAction: (item, time, v, a) => action("createOverwriteItemAction", item, time, v, a, {}),
    createInsertProjectItemAction: (item, time, v, a, limitShift) => action("createInsertProjectItemAction", item, time, v, a, { limitShift }),
  };

  const project = {
    name: fixture.project || "EdiDub test project",
    async getActiveSequence() { return later(sequence); },
    async getRootItem() { return later(root); },
    async importFiles(paths, suppressUI, targetBin, asNumberedStills) {
      calls.push({ fn: "importFiles", paths: paths.slice(), suppressUI, targetBin, asNumberedStills });
      for (const p of paths) { const item = new ClipProjectItem(p.split(/[\\/]/).pop(), p); root.items.push(item); }
      return later(true);
    },
    lockedAccess(callback) { state.inLock = true; try { callback(); } finally { state.inLock = false; } },
    executeTransaction(callback, undoString) {
      if (!state.inLock) throw new Error("executeTransaction outside lockedAccess");
      const actions = [];
      callback({ addAction: (a) => { actions.push(a.record); return true; } });
      calls.push({ fn: "executeTransaction", undoString, actions, inLock: state.inLock });
      return true;
    },
  };

  const Constants = { TrackItemType: { EMPTY: 0, CLIP: 1, TRANSITION: 2, PREVIEW: 3, FEEDBACK: 4 }, MediaType: { ANY: 0, DATA: 1, VIDEO: 2, AUDIO: 3 } };
  global.premierepro = {
    Project: { getActiveProject: async () => later(project) },
    SequenceEditor: { getEditor: (s) => { if (s !== sequence) throw new Error("getEditor takes the sequence"); return editor; } },
    ClipProjectItem, FolderItem, TickTime, Guid, Constants,
  };
})(window);
