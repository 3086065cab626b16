"""What the Resolve scripts do: the dub flows, from reading the shot to placing the dubbed clip.

The menu scripts (``scripts/EdiDub Dub Shot.py``, ``scripts/EdiDub Dub Timeline.py``,
``scripts/EdiDub Adapt to Actor.py``) are thin: they find this module through the bootstrap
``edidub install resolve`` writes into them and call :func:`run_menu_script`.  The dub flows sit
here, Adapt to Actor in :mod:`.adapt`; the parts they use each have a module: :mod:`.reading`
(the shot from Resolve), :mod:`.placement` (the result back on the timeline), :mod:`.jobs` (the
daemon and its jobs), :mod:`.progress`, :mod:`.settings` and :mod:`.errors`.  The names scripts
and tests reach through this module are re-exported from those.

Only documented Resolve scripting calls are used, here and in those modules (the README of Jul
2026, see ``../shared/notes/nle-integration.md``; ``tests/davinci/resolve_api.py`` keeps the list
and a test checks every call against it).  Optional calls are probed with ``"X" in dir(obj)``,
never ``hasattr`` (always true on live Resolve objects).

Imports: the standard library, OpenTimelineIO, ``otio_adapters`` (the one conversion from clip
ranges to ShotRequests) and ``edidub_engine.client`` (pyzmq + msgpack) — never torch, numpy or
PyAV: this runs inside Resolve's Python.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import opentimelineio as otio

from edidub_engine.client import Client
from edidub_engine.errors import EdidubError
from edidub_engine.shot import DubOptions, OutputSpec, RenderedClip
from otio_adapters import REASONS, ShotList, shots_from_timeline

from .adapt import AdaptReport, adapt_to_actor
from .errors import ResolveScriptError
from .jobs import connect, watch
from .placement import Placed, place
from .progress import ConsoleProgress, make_progress
from .reading import TRACK_NAME, _Context, _context, _dub_track, _find_shot_item, _items, face_tracks, shot_timeline
from .settings import QUALITY_PRESETS, save_settings, settings_path

# re-exported: scripts and tests reach these through resolve_bridge
from .jobs import SERVE_HINT  # noqa: F401
from .placement import BIN_NAME, MARKER_COLOR, REVIEW_MARKER_COLOR  # noqa: F401
from .progress import UIProgress  # noqa: F401
from .reading import _speed, parse_timeline_rate, timecode_to_frame  # noqa: F401
from .settings import ProjectSettings, load_settings  # noqa: F401

__all__ = [
    "QUALITY_PRESETS",
    "AdaptReport",
    "DubReport",
    "ProjectSettings",
    "ResolveScriptError",
    "adapt_to_actor",
    "dub_shot",
    "dub_timeline",
    "load_settings",
    "parse_timeline_rate",
    "run_menu_script",
    "save_settings",
    "settings_path",
]

# ----------------------------------------------------------------------------------------------
# the request


def _output_folder(ctx: _Context, source_path: str) -> str:
    folder = ctx.settings.output_folder or os.path.join(os.path.dirname(source_path), "EdiDub")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ResolveScriptError(f"cannot create the output folder {folder} ({exc.strerror or exc})",
                                 f"choose a writable folder as \"output_folder\" in {settings_path()}", "OUTPUT") from None
    return folder


def _request_defaults(ctx: _Context, source_path: str) -> tuple[OutputSpec, DubOptions]:
    """Where the render goes, and the options: the quality preset, the project's model bundle (``model``: the
    one Adapt to Actor made last, or one the editor named; "" leaves it to the daemon's default) and its edit strength."""
    output = OutputSpec(dir=_output_folder(ctx, source_path), codec="prores_hq")
    return output, DubOptions(**QUALITY_PRESETS[ctx.settings.quality], model=ctx.settings.model or None,
                              strength=float(ctx.settings.strength))


def _skipped_error(shots: ShotList, dub_track: int) -> ResolveScriptError:
    skip = shots.skipped[0]
    if skip.reason == "no_dub":
        return ResolveScriptError(f"there is no dub audio under clip {skip.clip!r} on audio track A{dub_track}",
                                  f"place the dub speech on A{dub_track} under the clip, or choose the dub track "
                                  f"(\"dub_audio_track\") in {settings_path()}", "NO_DUB")
    if skip.reason == "time_effect":
        return ResolveScriptError(f"clip {skip.clip!r} has a speed change; EdiDub dubs clips at their own speed",
                                  "dub the clip at 100% speed, then apply the retime to the dubbed clip", "SPEED")
    if skip.reason in ("missing_media", "dub_unusable"):
        return ResolveScriptError(f"clip {skip.clip!r}: {skip.message.split(': ', 1)[-1]}",
                                  "relink the offline media, then run the script again", "OFFLINE")
    return ResolveScriptError(f"clip {skip.clip!r} cannot be dubbed: {REASONS.get(skip.reason, skip.reason)}", None, skip.reason.upper())



# ----------------------------------------------------------------------------------------------
# the daemon


def submit_batch(client: Client, exported: otio.schema.Timeline, shot_list: ShotList, *, dub_track: str, picture_track: str,
                 output: OutputSpec, options: DubOptions, language: str) -> list[str]:
    """Queue a whole timeline as one batch: the single call "Dub Timeline" makes.

    With a daemon that offers ``submit_timeline`` (issue 8) the exported timeline itself goes,
    and the daemon converts it with the same ``otio_adapters`` call; otherwise the shots
    converted here are submitted.  Either way the job ids come back in timeline order.
    """
    if "submit_timeline" in dir(client):
        batch = client.submit_timeline(
            exported, dub_track=dub_track, picture_tracks=[picture_track], language=language, output_dir=output.dir,
            codec=output.codec, options={k: v for k, v in asdict(options).items() if v is not None}, handles=None,
        )
        return list(batch.job_ids)
    return client.submit(shot_list.shots, priority="batch")


def _refused(err: EdidubError | ResolveScriptError, ctx: _Context) -> Exception:
    """The daemon's refusal (at submit, or the job's failure); a model bundle it does not serve (the project's
    ``model``, e.g. made by another daemon's Adapt to Actor) also says where that name comes from."""
    if err.code != "MODEL_MISSING" or not ctx.settings.model:
        return err
    hint = f"{err.hint}; or set \"model\" to \"\" in {settings_path()} to dub with the daemon's default" if err.hint else None
    return ResolveScriptError(f"{err.message} (the project's \"model\" setting)", hint, "MODEL_MISSING")


def _wait(client: Client, job_ids: list[str], progress: ConsoleProgress, title: str) -> list[RenderedClip] | None:
    """Watch the jobs into ``progress``; the rendered clips, or None when the editor cancelled."""
    if watch(client, job_ids, progress, title) is None:
        return None
    return [client.result(job_id) for job_id in job_ids]


# ----------------------------------------------------------------------------------------------
# the report


@dataclass
class DubReport:
    """What a script did, for the console and for tests."""

    placed: list[Placed]
    skipped: list[str]
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(p.ok for p in self.placed)


def _report(progress: ConsoleProgress, report: DubReport, title: str) -> None:
    lines = []
    for p in report.placed:
        lines.append(f"{'placed' if p.ok else 'NOT placed'}: {os.path.basename(p.path)} on V{p.track} at frame "
                     f"{p.record_start} ({p.duration} frames), job {p.job_id}" + (f", model {p.model}" if p.model else "")
                     + (f" — {p.problem}" if p.problem else ""))
    lines.extend(f"skipped: {s}" for s in report.skipped)
    progress.message(title, "\n".join(lines) or "nothing to do")


# ----------------------------------------------------------------------------------------------
# the two menu entries


def dub_shot(resolve: Any, *, fusion: Any = None, bmd: Any = None, progress: ConsoleProgress | None = None) -> DubReport | None:
    """Workspace ▸ Scripts ▸ EdiDub Dub Shot.  Shows every problem as a message and returns None."""
    progress = progress or make_progress(fusion, bmd)
    title = "Dub Shot"
    try:
        ctx = _context(resolve)
        item, picture = _find_shot_item(ctx)
        if (ctx.timeline.GetTrackName("video", picture) or "") == TRACK_NAME:
            raise ResolveScriptError("the selected clip is an EdiDub dub", "select the original clip underneath", "IS_DUB")
        faces = face_tracks(ctx)  # a two-shot: each face's line on its own track
        dub_track = _dub_track(ctx) if not faces else faces[0][1]
        shot_id = f"{re.sub(r'[^A-Za-z0-9]+', '_', item.GetName() or 'clip').strip('_')[:40]}_{uuid.uuid4().hex[:8]}"
        timeline = shot_timeline(ctx, item, shot_id, [track for _, track in faces] or dub_track)
        source_path = timeline.tracks[0][-1].media_reference.target_url
        output, options = _request_defaults(ctx, source_path)
        shots = shots_from_timeline(timeline, dub_track=None if faces else 0, picture_tracks=0, handles=None, output=output,
                                    options=options, check_media_exists=True,
                                    line_tracks=[(face, k) for k, (face, _) in enumerate(faces)] or None)
        if not shots.shots:
            raise _skipped_error(shots, dub_track)
        save_settings(ctx.project_name, ctx.settings)  # remembered from the first run on: the editor can edit the file
        with connect(ctx) as client:
            try:
                (job_id,) = client.submit(shots.shots[0], priority="interactive")
                clips = _wait(client, [job_id], progress, title)
            except (EdidubError, ResolveScriptError) as err:
                raise _refused(err, ctx) from None
        if clips is None:
            progress.message(title, f"cancelled (job {job_id})")
            return DubReport([], [], cancelled=True)
        report = DubReport([place(ctx, clips[0], job_id, picture, int(item.GetStart()), int(item.GetDuration()))], [])
        _report(progress, report, title)
        return report
    except ResolveScriptError as err:
        progress.message(title, err.text())
    except EdidubError as err:
        progress.message(title, err.message + (f"\n\nWhat to do: {err.hint}" if err.hint else ""))
    return None


def dub_timeline(resolve: Any, *, fusion: Any = None, bmd: Any = None, progress: ConsoleProgress | None = None) -> DubReport | None:
    """Workspace ▸ Scripts ▸ EdiDub Dub Timeline: export as OTIO, dub every shot as a batch, place each."""
    progress = progress or make_progress(fusion, bmd)
    title = "Dub Timeline"
    try:
        ctx = _context(resolve)
        faces = face_tracks(ctx)
        dub_track = _dub_track(ctx) if not faces else faces[0][1]
        picture = ctx.settings.picture_track or 1
        with tempfile.TemporaryDirectory(prefix="edidub-resolve-") as tmp:
            path = os.path.join(tmp, "timeline.otio")
            if not ctx.timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE) or not os.path.isfile(path):
                raise ResolveScriptError("Resolve could not export the timeline as OpenTimelineIO",
                                         "Dub Timeline needs Resolve 18.5 or later", "EXPORT")
            exported = otio.adapters.read_from_file(path)
        if not isinstance(exported, otio.schema.Timeline):
            raise ResolveScriptError("Resolve's OTIO export holds no timeline")
        first = _items(ctx.timeline, "video", picture)
        source = (first[0].GetMediaPoolItem().GetClipProperty("File Path") if first and first[0].GetMediaPoolItem() else "") or ""
        output, options = _request_defaults(ctx, source or tempfile.gettempdir())
        shots = shots_from_timeline(exported, dub_track=None if faces else f"A{dub_track}", picture_tracks=f"V{picture}", handles=None,
                                    output=output, options=options, check_media_exists=True,
                                    line_tracks=[(face, f"A{track}") for face, track in faces] or None)
        skipped = [f"{s.clip!r}: {s.message.split(': ', 1)[-1]}" for s in shots.skipped]
        if not shots.shots:
            raise ResolveScriptError(f"no clip on V{picture} has dub audio under it on A{dub_track}"
                                     + (f" ({len(skipped)} skipped: {'; '.join(skipped[:3])})" if skipped else ""),
                                     f"put the dub speech on A{dub_track}, or choose the tracks in {settings_path()}", "NO_DUB")
        save_settings(ctx.project_name, ctx.settings)
        with connect(ctx) as client:
            try:
                job_ids = (client.submit(shots.shots, priority="batch") if faces else  # the shots as converted here: faces and lines
                           submit_batch(client, exported, shots, dub_track=f"A{dub_track}", picture_track=f"V{picture}",
                                        output=output, options=options, language=ctx.settings.language))
                clips = _wait(client, job_ids, progress, title)
            except (EdidubError, ResolveScriptError) as err:
                raise _refused(err, ctx) from None
        if clips is None:
            progress.message(title, "cancelled")
            return DubReport([], skipped, cancelled=True)
        placed = []
        for clip, job_id in zip(clips, job_ids):
            rec = clip.record
            start, end = int(rec["start_frame"]), int(rec["end_frame"])
            placed.append(place(ctx, clip, job_id, int(rec["track_index"]) + 1, start, end - start))
        report = DubReport(placed, skipped)
        _report(progress, report, title)
        return report
    except ResolveScriptError as err:
        progress.message(title, err.text())
    except EdidubError as err:
        progress.message(title, err.message + (f"\n\nWhat to do: {err.hint}" if err.hint else ""))
    return None


def run_menu_script(action: str, script_globals: dict[str, Any]) -> DubReport | AdaptReport | None:
    """What a menu script runs after its bootstrap: ``action`` (``"dub_shot"`` / ``"dub_timeline"`` /
    ``"adapt_to_actor"``) with the ``resolve`` / ``fusion`` / ``bmd`` handles Resolve put in the script's globals."""
    flow = {"dub_shot": dub_shot, "dub_timeline": dub_timeline, "adapt_to_actor": adapt_to_actor}[action]
    return flow(_resolve_app(script_globals), fusion=script_globals.get("fusion"), bmd=script_globals.get("bmd"))


def _resolve_app(script_globals: dict[str, Any]) -> Any:
    """``resolve`` from the Scripts menu, else through ``bmd``, else DaVinciResolveScript (a run from outside Resolve)."""
    app = script_globals.get("resolve")
    if app is None and script_globals.get("bmd") is not None:
        app = script_globals["bmd"].scriptapp("Resolve")
    if app is None:
        try:
            import DaVinciResolveScript

            app = DaVinciResolveScript.scriptapp("Resolve")
        except ImportError:
            app = None
    return app
