"""Timeline ⇄ shot list for EdiDub, on OpenTimelineIO.

* :func:`read_timeline` — any editorial file (.otio, FCP7 .xml, .fcpxml, .edl, .aaf) → Timeline, clear errors.
* :func:`shots_from_timeline` — the one conversion from clip ranges to :class:`ShotRequest` s.
* :func:`add_dub_track` / :func:`write_dubbed` — rendered clips back onto the timeline.
* ``edidub_json`` / ``edidub_csv`` — an OTIO adapter plugin for shot lists (``plugin_manifest.json``).

Imports OTIO and the engine's light contracts (``edidub_engine.shot``/``errors``) only: never
torch, numpy-heavy engine modules, PyAV or MediaPipe.
"""

from .reading import TimelineFile, read_timeline
from .shotlist_io import from_csv, from_json, to_csv, to_json, to_timeline
from .shots import DEFAULT_HANDLE_FRAMES, REASONS, ShotList, SkippedClip, shots_from_timeline, url_to_path
from .writeback import add_dub_track, dub_track_name, dubbed_to_string, write_dubbed

__all__ = [
    "DEFAULT_HANDLE_FRAMES",
    "REASONS",
    "ShotList",
    "SkippedClip",
    "TimelineFile",
    "add_dub_track",
    "dub_track_name",
    "dubbed_to_string",
    "from_csv",
    "from_json",
    "read_timeline",
    "shots_from_timeline",
    "to_csv",
    "to_json",
    "to_timeline",
    "url_to_path",
    "write_dubbed",
]
