"""``edidub batch``: the argparse wiring, kept here so cli.py adds it with one line.

    from .batch.commands import add_batch_parser
    add_batch_parser(sub)

The same parser backs ``python -m edidub_engine.batch``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import CODEC_HELP, CODECS

__all__ = ["add_batch_parser", "add_shots_parser", "cmd_batch", "cmd_shots", "config_from_args"]


def add_batch_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``batch`` on ``subparsers``."""
    batch = subparsers.add_parser(
        "batch",
        help="dub every shot of a timeline that has a dub line; writes the timeline with a dubbed track",
        description=(
            "Read an editorial timeline (OTIO, FCP7 XML, FCP X XML, EDL, AAF), turn every picture clip with dub speech under "
            "it on the dub audio track into a shot, render the shots (through the local daemon when one answers, else in "
            "this process; or on Ray with --ray) and write the timeline with a new video track 'EdiDub <LANG>' of dubbed "
            "clips at the originals' record frames, plus a summary. Interrupted? Run the same command again: finished shots "
            "are recorded in OUTPUT.edidub-batch.json and not rendered again."
        ),
    )
    _add_cut_arguments(batch, dub_required=True)
    batch.add_argument("-o", "--output", help="dubbed timeline (.otio, .xml FCP7, .edl); default CUT.dubbed.otio beside the cut; never overwritten")
    batch.add_argument("--language", default="FR", help="dub language code, names the new track 'EdiDub <LANG>' (default FR)")
    batch.add_argument("--media-dir", help="folder for the rendered clips; default <output name>_media/ beside the output")
    batch.add_argument("--models", help="model bundle folder for in-process / Ray rendering (implies not using a running daemon unless --daemon)")
    batch.add_argument("--codec", default="prores_hq", choices=CODECS, help="rendered clips: " + CODEC_HELP)
    batch.add_argument("--steps", type=int, help="DDIM sampling steps (default: the bundle's)")
    batch.add_argument("--inversion-steps", type=int, help="DDIM inversion steps (default: the bundle's)")
    batch.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    batch.add_argument("--strength", type=float, metavar="S",
                       help="edit strength of every shot: how far a mouth may move from the original's toward the one the dub "
                            "line asks for, over 0 to 1 (default 1: follows the line); a shot list's strength column overrides it per shot")
    batch.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--daemon", metavar="ENDPOINT", help="render through the daemon at ENDPOINT (an error when none answers); the media dir must be under its media roots")
    where.add_argument("--no-daemon", action="store_true", help="render in this process even when a daemon answers")
    where.add_argument("--ray", metavar="ADDRESS", help="render on Ray actors: 'local' starts a Ray here, else a cluster address (auto, ray://HOST:10001)")
    batch.add_argument("--ray-actors", type=int, metavar="N", help="at most N actors (default: one per GPU, else one per CPU)")
    batch.add_argument("--cache-dir", help="inversion cache folder (default: the user cache)")
    batch.add_argument("--no-cache", action="store_true", help="do not read or write the inversion cache")
    batch.add_argument("--adapt", action="append", default=[], metavar="PATTERN",
                       help="adapt the model to an actor first: the clips whose names match PATTERN (shell pattern, any case: "
                            "ANNA_*) are that actor's takes, and their shots are dubbed with the adapted bundle (repeatable, one per "
                            "actor; cached by its inputs, so every language reuses it)")
    batch.add_argument("--adapt-minutes", type=float, metavar="N", help="each actor's adaptation budget in minutes (default 20)")
    batch.add_argument("--adapt-steps", type=int, metavar="N", help="each actor's adaptation budget in training steps")
    batch.add_argument("--partial", action="store_true", help="write the timeline even when some shots failed (they are left out and listed)")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    batch.set_defaults(func=cmd_batch)


def _add_cut_arguments(parser: argparse.ArgumentParser, *, dub_required: bool) -> None:
    """How ``batch`` and ``shots`` read a cut: the same arguments, so the dry run lists what the batch dubs."""
    parser.add_argument("timeline", help="the cut: .otio, .xml (FCP7), .fcpxml, .edl, .aaf")
    parser.add_argument("--dub-track", metavar="NAME",
                        help="the audio track holding the dub lines: its name, or A1, A2…" + (" (or a --line-track per face)" if dub_required else " (without it every picture clip is listed)"))
    parser.add_argument("--line-track", action="append", metavar="FACE=TRACK",
                        help="two-shots: a face and the audio track that holds its dub lines, repeatable (--line-track 0='FR anna' "
                             "--line-track 1='FR bob'); a rule written once for the whole cut. FACE as --face takes it")
    parser.add_argument("--speakers", choices=("auto",),
                        help="share each shot's dub line (--dub-track) out to the faces that spoke each stretch in the original")
    parser.add_argument("--picture-track", action="append", metavar="NAME", help="video track(s) to dub: name or V1, V2… (repeatable; default: every video track)")
    parser.add_argument("--handles", type=int, default=12, metavar="N", help="frames of picture kept before and after a dub line (default 12; -1: the whole clip)")
    parser.add_argument("--rate", help="EDLs only: the timecode rate, e.g. 24000/1001 or 23.976 (an NTSC rate; default: inferred)")
    parser.add_argument("--timeline-name", metavar="NAME", help="the timeline to take, in a file that holds several (AAF, FCP X)")


def add_shots_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``shots`` (the dry run of ``batch``) on ``subparsers``."""
    shots = subparsers.add_parser(
        "shots",
        help="dry run: list the shots a batch would dub, and the clips it would leave out with the reason",
        description=(
            "Read a cut the way edidub batch does and list every shot it would dub (record in/out as the timeline's "
            "timecodes, source file, frames and rate, dub line) and every clip it would not, with the reason. Nothing is "
            "rendered or written unless -o is given. --format json or csv writes an EdiDub shot list that edidub batch, "
            "the daemon and OTIO (the edidub adapters) read back."
        ),
    )
    _add_cut_arguments(shots, dub_required=False)
    shots.add_argument("--format", choices=("table", "json", "csv"), default="table", help="table for people (default); json or csv shot lists")
    shots.add_argument("-o", "--output", metavar="FILE", help="write to FILE (never overwritten) instead of printing")
    shots.set_defaults(func=cmd_shots)


def cmd_shots(args: argparse.Namespace) -> int:
    """Handler of ``edidub shots``: exit 0 when there is a shot to dub, 1 when none."""
    import os

    from otio_adapters import read_timeline, shots_from_timeline
    from otio_adapters.batch import format_shot_list
    from otio_adapters.shotlist_io import to_csv, to_json

    from edidub_engine.errors import OutputExistsError
    from edidub_engine.files import write_text_atomically

    if args.handles < -1:
        raise InvalidArgumentError("--handles must be -1 (the whole clip) or a number of frames >= 0")
    read = read_timeline(Path(args.timeline).expanduser(), rate=args.rate, timeline_name=args.timeline_name)
    shot_list = shots_from_timeline(read.timeline, dub_track=args.dub_track, picture_tracks=args.picture_track or None,
                                    handles=None if args.handles == -1 else args.handles, check_media_exists=True,
                                    line_tracks=line_tracks(args))
    if args.speakers:
        from dataclasses import replace

        shot_list.shots = [replace(shot, speakers=args.speakers) if shot.dub_audio and not shot.lines else shot for shot in shot_list.shots]
    shot_list.warnings[:0] = read.warnings
    text = {"table": format_shot_list, "json": to_json, "csv": to_csv}[args.format](shot_list)
    if args.output:
        out = Path(args.output).expanduser()
        if os.path.lexists(out):
            raise OutputExistsError(f"{out} already exists; EdiDub never overwrites a file", hint="choose another -o")
        write_text_atomically(out, text if text.endswith("\n") else text + "\n")
        print(f"wrote {out}: {len(shot_list.shots)} shot(s), {len(shot_list.skipped)} clip(s) left out", file=sys.stderr)
    else:
        print(text.rstrip("\n"))
    if args.format != "table" and shot_list.skipped:
        for s in shot_list.skipped:
            print(f"left out {s.track}/{s.clip or '(unnamed)'}: {s.reason}: {s.message}", file=sys.stderr)
    return 0 if shot_list.shots else 1


def line_tracks(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """``--line-track FACE=TRACK`` as ``[(face, track), …]`` (checked: a face selector and a track each)."""
    from edidub_engine.shot import face_selector_parts

    if not args.line_track:
        return None
    if args.dub_track:
        raise InvalidArgumentError("--dub-track and --line-track both name dub tracks",
                                   hint="one dub track (with --speakers auto for a two-shot's mixed line), or a --line-track per face")
    out = []
    for text in args.line_track:
        face, sep, track = text.partition("=")
        if not sep or not face.strip() or not track.strip():
            raise InvalidArgumentError(f"--line-track {text!r} is not FACE=TRACK", hint="e.g. --line-track 0='FR anna' --line-track 1=A3")
        face_selector_parts(face.strip(), f"--line-track {text!r}")
        out.append((face.strip(), track.strip()))
    return out


def config_from_args(args: argparse.Namespace):
    from edidub_engine.shot import DubOptions

    from .core import BatchConfig

    if args.handles is not None and args.handles < -1:
        raise InvalidArgumentError("--handles must be -1 (the whole clip) or a number of frames >= 0")
    given = {"steps": args.steps, "inversion_steps": args.inversion_steps, "guidance_scale": args.guidance, "seed": args.seed,
             "strength": args.strength}
    options = DubOptions.from_dict({k: v for k, v in given.items() if v is not None}, "the batch's options")  # ranges checked now
    mode = "ray" if args.ray else "daemon" if args.daemon else "local" if args.no_daemon else "auto"
    faces = line_tracks(args)
    if not args.dub_track and not faces:
        raise InvalidArgumentError("a batch needs the dub audio track (--dub-track), or a --line-track FACE=TRACK per face of a two-shot",
                                   hint="name the audio track that holds the dub lines")
    if args.speakers and not args.dub_track:
        raise InvalidArgumentError("--speakers shares the --dub-track's lines out to the faces", hint="name the dub track")
    return BatchConfig(
        timeline=Path(args.timeline).expanduser(),
        dub_track=args.dub_track,
        line_tracks=faces,
        speakers=args.speakers,
        output=Path(args.output).expanduser() if args.output else None,
        picture_tracks=args.picture_track,
        language=args.language,
        media_dir=Path(args.media_dir).expanduser() if args.media_dir else None,
        models=args.models,
        codec=args.codec,
        options=options,
        handles=None if args.handles == -1 else args.handles,
        mode=mode,
        daemon=args.daemon,
        ray=args.ray,
        ray_actors=args.ray_actors,
        cache_dir=Path(args.cache_dir).expanduser() if args.cache_dir else None,
        no_cache=args.no_cache,
        allow_partial=args.partial,
        quiet=args.quiet,
        timeline_rate=args.rate,
        timeline_name=args.timeline_name,
        adapt=list(args.adapt),
        adapt_minutes=args.adapt_minutes if (args.adapt_minutes or args.adapt_steps) else (20.0 if args.adapt else None),
        adapt_steps=args.adapt_steps,
    )


def cmd_batch(args: argparse.Namespace) -> int:
    from .core import run_batch

    result = run_batch(config_from_args(args))
    print(result.summary.format())
    if result.summary.failed:
        print(f"edidub batch: {len(result.summary.failed)} shot(s) failed; the finished ones are kept in {result.state_path}",
              file=sys.stderr)
        return 1
    if not result.summary.dubbed:
        print("edidub batch: nothing was dubbed (no clip of the cut had a usable dub line; see the skipped clips above)",
              file=sys.stderr)
        return 1
    return 0
