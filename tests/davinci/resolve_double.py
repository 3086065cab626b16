"""A test double of DaVinci Resolve's scripting object graph, built from the documented API.

Resolve → ProjectManager → Project → MediaPool / Folder / MediaPoolItem, Timeline → TimelineItem.
Every public method bears a documented name and signature (``resolve_api.DOCUMENTED``; a test
checks it), and every call is recorded as ``"Class.Method"`` in :data:`CALLS` so tests can
check that the scripts call nothing undocumented.

The documented quirks it reproduces:

* track indices are 1-based (``1 <= i <= GetTrackCount(type)``); an index out of range
  gives None / False, as Resolve does, and is recorded in :data:`MISUSE`;
* record frames are absolute and include the start timecode (86400 at 24 fps and 23.976,
  107892 for 01:00:00;00 at 29.97 DF); ``AddMarker``'s frameId is relative to the start;
* ``AppendToTimeline`` with ``recordFrame``/``trackIndex``: ``endFrame`` exclusive (as measured
  on 21.0), a clip over an occupied range is silently dropped and a phantom item returned;
* ``ImportMedia`` imports into the *current* folder; ``GetSelectedClips`` exists only from
  21.0.4 (``version``); ``GetCurrentVideoItem`` is the clip on the topmost track at the playhead;
  ``GetMarkInOut`` (19.1.0+) gives the In/Out marks in frames from the timeline's start, keys left out when unset;
* ``Timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE)`` writes a Resolve-shaped OTIO
  (bare paths, media ranges counted from the media's start timecode, ``Resolve_OTIO`` metadata).
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction

import opentimelineio as otio

from edidub_engine.media import probe_video

CALLS: set[str] = set()
MISUSE: list[str] = []
_ids = itertools.count(1)

RATES = {"24": (Fraction(24), False), "23.976": (Fraction(24000, 1001), False), "25": (Fraction(25), False),
         "29.97": (Fraction(30000, 1001), False), "29.97 DF": (Fraction(30000, 1001), True), "30": (Fraction(30), False)}


def _tc_to_frame(tc: str, rate: Fraction) -> int:
    return round(otio.opentime.from_timecode(tc, float(rate)).value)


def _frame_to_tc(frame: int, rate: Fraction, df: bool) -> str:
    return otio.opentime.to_timecode(otio.opentime.RationalTime(frame, float(rate)), float(rate), drop_frame=df)


class _Recorded:
    """Records every public call as "Class.Method"."""

    _kind = "?"

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if not name.startswith("_") and callable(value):
            CALLS.add(f"{object.__getattribute__(self, '_kind')}.{name}")
        return value


class Resolve(_Recorded):
    _kind = "Resolve"
    EXPORT_AAF, EXPORT_EDL, EXPORT_FCP_7_XML, EXPORT_OTIO = 0, 1, 2, 16
    EXPORT_NONE, EXPORT_AAF_NEW, EXPORT_AAF_EXISTING = 0, 1, 2

    def __init__(self, version: str = "21.0.4"):
        self._version = version
        self._pm = ProjectManager(self)

    def GetProjectManager(self):
        return self._pm

    def GetVersionString(self):
        return self._version

    def Fusion(self):
        return None  # headless (-nogui): no UIManager window


class ProjectManager(_Recorded):
    _kind = "ProjectManager"

    def __init__(self, resolve):
        self._resolve = resolve
        self._current = None

    def CreateProject(self, projectName, mediaLocationPath=None):
        self._current = Project(self._resolve, projectName)
        return self._current

    def GetCurrentProject(self):
        return self._current


class Project(_Recorded):
    _kind = "Project"

    def __init__(self, resolve, name):
        self._resolve = resolve
        self._name = name
        self._pool = MediaPool(self)
        self._timelines: list[Timeline] = []
        self._current = None
        self._settings = {"timelineFrameRate": "24"}

    def GetName(self):
        return self._name

    def GetMediaPool(self):
        return self._pool

    def GetCurrentTimeline(self):
        return self._current

    def SetCurrentTimeline(self, timeline):
        self._current = timeline
        return True

    def GetTimelineCount(self):
        return len(self._timelines)

    def GetSetting(self, settingName=None):
        return self._settings.get(settingName, "")

    def GetUniqueId(self):
        return f"project-{id(self)}"


class Folder(_Recorded):
    _kind = "Folder"

    def __init__(self, name):
        self._name = name
        self._clips: list[MediaPoolItem] = []
        self._subs: list[Folder] = []

    def GetName(self):
        return self._name

    def GetClipList(self):
        return list(self._clips)

    def GetSubFolderList(self):
        return list(self._subs)


class MediaPoolItem(_Recorded):
    _kind = "MediaPoolItem"

    def __init__(self, path):
        info = probe_video(path)
        self._props = {"File Path": str(path), "Clip Name": os.path.basename(path), "Frames": str(info.frame_count),
                       "FPS": f"{float(info.rate):.3f}".rstrip("0").rstrip("."), "Start TC": info.start_timecode or "00:00:00:00"}
        self._rate = info.rate
        self._frames = info.frame_count
        self._uid = f"mpi-{next(_ids)}"

    @classmethod
    def _audio(cls, path, rate):
        item = cls.__new__(cls)
        item._props = {"File Path": str(path), "Clip Name": os.path.basename(path), "Frames": "", "FPS": "", "Start TC": "00:00:00:00"}
        item._rate, item._frames, item._uid = rate, None, f"mpi-{next(_ids)}"
        return item

    def GetName(self):
        return self._props["Clip Name"]

    def GetClipProperty(self, propertyName=None):
        if not propertyName:
            return dict(self._props)
        return self._props.get(propertyName, "")

    def GetMediaId(self):
        return self._uid

    def GetUniqueId(self):
        return self._uid


class MediaPool(_Recorded):
    _kind = "MediaPool"

    def __init__(self, project):
        self._project = project
        self._root = Folder("Master")
        self._current = self._root

    def GetRootFolder(self):
        return self._root

    def AddSubFolder(self, folder, name):
        sub = Folder(name)
        folder._subs.append(sub)
        return sub

    def GetCurrentFolder(self):
        return self._current

    def SetCurrentFolder(self, folder):
        if not isinstance(folder, Folder):
            return False
        self._current = folder
        return True

    def ImportMedia(self, items):
        out = []
        for path in items:
            if isinstance(path, str) and os.path.isfile(path):
                item = MediaPoolItem(path)
                self._current._clips.append(item)
                out.append(item)
        return out

    def AppendToTimeline(self, *clips):
        if len(clips) == 1 and isinstance(clips[0], list):
            clips = clips[0]
        tl = self._project._current
        out = []
        for info in clips:
            if not isinstance(info, dict):
                MISUSE.append("AppendToTimeline without clipInfo dicts")
                continue
            mpi = info["mediaPoolItem"]
            start, end = int(info.get("startFrame", 0)), int(info.get("endFrame", mpi._frames))
            track = int(info.get("trackIndex", 1))
            if not 1 <= track <= len(tl._video):
                MISUSE.append(f"AppendToTimeline trackIndex {track}")
                continue
            duration = int((end - start) * tl._rate / mpi._rate)  # mixed rates floor
            rec = int(info.get("recordFrame", tl.GetEndFrame()))
            item = TimelineItem(tl, mpi, rec, duration, start, name=mpi.GetName())
            if any(i._start < rec + duration and rec < i._start + i._duration for i in tl._video[track - 1]):
                out.append(item)  # the documented quirk: dropped silently, a phantom comes back
                continue
            tl._video[track - 1].append(item)
            tl._video[track - 1].sort(key=lambda i: i._start)
            out.append(item)
        return out


class TimelineItem(_Recorded):
    _kind = "TimelineItem"

    def __init__(self, timeline, mpi, start, duration, left, name=None, speed=1.0):
        self._tl = timeline
        self._mpi = mpi
        self._start, self._duration, self._left = int(start), int(duration), int(left)
        self._name = name or (mpi.GetName() if mpi else "Title")
        self._speed = speed
        self._markers: dict[float, dict] = {}
        self._uid = f"ti-{next(_ids)}"

    def GetName(self):
        return self._name

    def GetStart(self, subframe_precision=False):
        return self._start

    def GetEnd(self, subframe_precision=False):
        return self._start + self._duration

    def GetDuration(self, subframe_precision=False):
        return self._duration

    def GetLeftOffset(self, subframe_precision=False):
        return self._left

    def GetRightOffset(self, subframe_precision=False):
        if self._mpi is None or self._mpi._frames is None:
            return 0
        return self._mpi._frames - self._left - int(self._duration * self._speed)

    def _src_rate(self):
        return self._mpi._rate if self._mpi is not None and self._mpi._frames is not None else self._tl._rate

    def GetSourceStartFrame(self):
        return self._left

    def GetSourceEndFrame(self):
        return self._left + int(round(self._duration * self._speed * self._src_rate() / self._tl._rate))

    def GetSourceStartTime(self):
        return float(self._left / self._src_rate())

    def GetSourceEndTime(self):
        return float(self.GetSourceEndFrame() / self._src_rate())

    def GetMediaPoolItem(self):
        return self._mpi

    def GetTrackTypeAndIndex(self):
        for kind, tracks in (("video", self._tl._video), ("audio", self._tl._audio)):
            for i, items in enumerate(tracks, 1):
                if self in items:
                    return [kind, i]
        return ["video", 0]

    def GetUniqueId(self):
        return self._uid

    def GetClipEnabled(self):
        return True

    def AddMarker(self, frameId, color, name, note, duration, customData=""):
        if frameId in self._markers:
            return False
        self._markers[float(frameId)] = {"color": color, "duration": duration, "note": note, "name": name, "customData": customData}
        return True

    def GetMarkers(self):
        return dict(self._markers)


class Timeline(_Recorded):
    """``rate``: Resolve's "timelineFrameRate" text ("24", "23.976", "29.97 DF")."""

    _kind = "Timeline"

    def __init__(self, project, name, rate="24", start_timecode="01:00:00:00", video_tracks=1, audio_tracks=2):
        self._project = project
        self._name = name
        self._rate_text = rate
        self._rate, self._df = RATES[rate]
        self._start_tc = start_timecode
        self._start = _tc_to_frame(start_timecode, self._rate)
        self._video = [[] for _ in range(video_tracks)]
        self._audio = [[] for _ in range(audio_tracks)]
        self._names = {"video": [f"Video {i + 1}" for i in range(video_tracks)], "audio": [f"Audio {i + 1}" for i in range(audio_tracks)]}
        self._markers: dict[float, dict] = {}
        self._selected: list[TimelineItem] = []
        self._playhead = self._start
        self._marks: dict[str, dict[str, int]] = {}  # GetMarkInOut's shape: frames from the timeline's start

    # -- test set-up (not Resolve API) ---------------------------------------------------------
    def _add_video(self, track, mpi, record, duration, left=0, speed=1.0):
        item = TimelineItem(self, mpi, record, duration, left, speed=speed)
        self._video[track - 1].append(item)
        return item

    def _add_audio(self, track, path, record, duration, left=0):
        item = TimelineItem(self, MediaPoolItem._audio(path, self._rate), record, duration, left)
        self._audio[track - 1].append(item)
        return item

    def _tracks(self, kind):
        return {"video": self._video, "audio": self._audio}.get(kind)

    def _check(self, kind, index):
        tracks = self._tracks(kind)
        if tracks is None or not 1 <= int(index) <= len(tracks):
            MISUSE.append(f"{kind} track index {index}")
            return None
        return tracks[int(index) - 1]

    # -- documented API -------------------------------------------------------------------------
    def GetName(self):
        return self._name

    def GetSetting(self, settingName=None):
        # as Resolve: the rate as a number ("29.97"), drop frame in its own setting ("1"/"0")
        return {"timelineFrameRate": self._rate_text.split()[0], "timelineDropFrameTimecode": "1" if self._df else "0"}.get(settingName, "")

    def GetStartFrame(self):
        return self._start

    def GetEndFrame(self):
        ends = [i._start + i._duration for t in self._video + self._audio for i in t]
        return max(ends, default=self._start)

    def GetStartTimecode(self):
        return self._start_tc

    def GetTrackCount(self, trackType):
        tracks = self._tracks(trackType)
        return 0 if tracks is None else len(tracks)

    def AddTrack(self, trackType, subTrackType=None):
        tracks = self._tracks(trackType)
        if tracks is None:
            return False
        tracks.append([])
        self._names[trackType].append(f"{'Video' if trackType == 'video' else 'Audio'} {len(tracks)}")
        return True

    def GetTrackName(self, trackType, trackIndex):
        return self._names[trackType][trackIndex - 1] if self._check(trackType, trackIndex) is not None else ""

    def SetTrackName(self, trackType, trackIndex, name):
        if self._check(trackType, trackIndex) is None:
            return False
        self._names[trackType][trackIndex - 1] = name
        return True

    def GetItemListInTrack(self, trackType, index):
        items = self._check(trackType, index)
        return None if items is None else sorted(items, key=lambda i: i._start)

    def DeleteClips(self, timelineItems, ripple=False):
        for item in timelineItems:
            for track in self._video + self._audio:
                if item in track:
                    track.remove(item)
        return True

    def GetCurrentTimecode(self):
        return _frame_to_tc(self._playhead, self._rate, self._df)

    def SetCurrentTimecode(self, timecode):
        self._playhead = _tc_to_frame(timecode, self._rate)
        return True

    def GetCurrentVideoItem(self):
        for track in reversed(self._video):
            for item in track:
                if item._start <= self._playhead < item._start + item._duration:
                    return item
        return None

    def AddMarker(self, frameId, color, name, note, duration, customData=""):
        if float(frameId) in self._markers:
            return False
        self._markers[float(frameId)] = {"color": color, "duration": duration, "note": note, "name": name, "customData": customData}
        return True

    def GetMarkers(self):
        return dict(self._markers)

    def GetMarkerByCustomData(self, customData):
        return next((m for m in self._markers.values() if m["customData"] == customData), {})

    def GetMarkInOut(self):
        # README (19.1.0+): "Returns dict of in/out marks set (keys omitted if not set)",
        # e.g. {'video': {'in': 0, 'out': 134}, 'audio': {'in': 0, 'out': 134}}
        return {kind: dict(marks) for kind, marks in self._marks.items()}

    def Export(self, fileName, exportType, exportSubtype):
        if exportType != Resolve.EXPORT_OTIO:
            return False
        otio.adapters.write_to_file(self._as_otio(), fileName, adapter_name="otio_json")
        return True

    def _as_otio(self):
        rate = float(self._rate)
        tl = otio.schema.Timeline(name=self._name, global_start_time=otio.opentime.RationalTime(self._start, rate))
        tl.metadata["Resolve_OTIO"] = {}
        for kind, tracks in (("Video", self._video), ("Audio", self._audio)):
            for n, items in enumerate(tracks):
                track = otio.schema.Track(name=self._names[kind.lower()][n], kind=kind)
                track.metadata["Resolve_OTIO"] = {}
                cursor = self._start
                for item in sorted(items, key=lambda i: i._start):
                    if item._start > cursor:
                        track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(item._start - cursor, rate)))
                    mpi = item._mpi
                    if mpi._frames is None:  # audio: no timecode, seconds from the file's start
                        ref = otio.schema.ExternalReference(target_url=mpi._props["File Path"])
                        src = otio.opentime.TimeRange(otio.opentime.RationalTime(item._left, rate), otio.opentime.RationalTime(item._duration, rate))
                    else:
                        mrate = float(mpi._rate)
                        tc0 = _tc_to_frame(mpi._props["Start TC"], mpi._rate)
                        ref = otio.schema.ExternalReference(
                            target_url=mpi._props["File Path"],
                            available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(tc0, mrate), otio.opentime.RationalTime(mpi._frames, mrate)),
                        )
                        src = otio.opentime.TimeRange(otio.opentime.RationalTime(tc0 + item._left, mrate),
                                                      otio.opentime.RationalTime(item._duration * mpi._rate / self._rate, mrate))
                    clip = otio.schema.Clip(name=item._name, media_reference=ref, source_range=src, metadata={"Resolve_OTIO": {}})
                    if item._speed != 1.0:
                        clip.effects.append(otio.schema.LinearTimeWarp(name="Retime", time_scalar=item._speed))
                    track.append(clip)
                    cursor = item._start + item._duration
                tl.tracks.append(track)
        return tl


class Timeline2103(Timeline):
    """A Resolve build before 21.0.4: no ``GetSelectedClips``."""


class Timeline21(Timeline):
    def GetSelectedClips(self):
        return list(self._selected)


def new_timeline(resolve: Resolve, project_name: str, name: str, rate: str, **kw) -> Timeline:
    pm = resolve.GetProjectManager()
    project = pm.GetCurrentProject() or pm.CreateProject(project_name)
    cls = Timeline21 if tuple(int(p) for p in resolve._version.split(".")[:3]) >= (21, 0, 4) else Timeline2103
    tl = cls(project, name, rate, **kw)
    project._timelines.append(tl)
    project._current = tl
    project._settings["timelineFrameRate"] = rate.split()[0]
    project._settings["timelineDropFrameTimecode"] = "1" if RATES[rate][1] else "0"
    return tl
