"""The ``edidub`` command line.

Every sub-command turns an :class:`~edidub_engine.errors.EdidubError` into a
clear message, a hint and a non-zero exit status; anything unexpected is
logged with its traceback to a file whose path is printed, never dumped on the
user.  Heavy modules (torch, MediaPipe, PyAV) are imported inside the command
that needs them so ``edidub --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from . import __version__
from .commandline import StageProgress, quiet_native_logging, run_command
from .errors import InvalidArgumentError, NoFaceError
from .files import write_json_atomically
from .shot import CODEC_HELP, CODECS

_TIMECODE = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3}$")
_SECONDS = re.compile(r"^\d+(\.\d+)?s$")


def parse_position(value: str | None, *, rate: Fraction, start_timecode: str, what: str) -> int | None:
    """A position given as a frame number (``120``), a source timecode
    (``01:00:04:12``, ``;`` for drop-frame) or seconds from the clip start (``4.5s``)."""
    if value is None:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if _SECONDS.match(text):
        return int(round(Fraction(text[:-1]) * rate))
    if _TIMECODE.match(text):
        from .media import timecode_to_frame

        return timecode_to_frame(text, rate) - timecode_to_frame(start_timecode, rate)
    raise InvalidArgumentError(
        f"cannot read {what} {value!r}",
        hint="give a frame number (120), a source timecode (01:00:04:12) or seconds (4.5s)",
    )


def _cmd_analyze(args: argparse.Namespace) -> int:
    quiet_native_logging()
    from .analysis import analyze_clip
    from .face import FaceSelector
    from .media import probe_video

    info = probe_video(args.clip)
    start = parse_position(args.start, rate=info.rate, start_timecode=info.start_timecode, what="--start") or 0
    end = parse_position(args.end, rate=info.rate, start_timecode=info.start_timecode, what="--end")
    selector = FaceSelector.parse(args.face)
    stage = f"analyze {info.path.name}"
    with StageProgress(enabled=not args.quiet) as bar:
        on_progress = None if bar is None else (lambda done, count: bar(stage, done, count))
        result = analyze_clip(
            info.path,
            start_frame=start,
            end_frame=end,
            selector=selector,
            occlusion_every=args.occlusion_every,
            speakers=args.speakers,
            on_progress=on_progress,
        )
    output = Path(args.output) if args.output else Path.cwd() / f"{info.path.stem}.analysis.json"
    output = output.expanduser()
    if not output.parent.is_dir():
        raise InvalidArgumentError(f"cannot write {output}: folder {output.parent} does not exist", hint="create it or choose another -o path")
    write_json_atomically(output, result.to_dict(per_frame=args.per_frame))
    _print_analysis(result)
    for face in result.faces or []:  # inclusive frame ranges on the terminal, as above
        speech = f"speaks in {_fmt_ranges(face.speaking)}" if face.speaking else "does not speak"
        print(f"  shot {face.shot + 1}, face {face.index} ({face.side}): found in {face.frames_found} of {face.frames} frames, "
              f"{speech} (confidence {face.confidence:.2f})" + (f"; identity unsure in {_fmt_ranges(face.lost)}" if face.lost else ""))
    print(f"wrote {output}")
    if result.frames_with_face == 0:
        raise NoFaceError(
            f"no face found in {info.path.name}, frames {result.start_frame}-{result.end_frame - 1}",
            hint="check the clip and range; faces smaller than about 20 px or seen from behind cannot be tracked",
        )
    return 0


def _print_analysis(result) -> None:
    """One header and two lines per shot; frame ranges are inclusive here (the JSON's are half-open)."""
    print(f"{result.file}: frames {result.start_frame}-{result.end_frame - 1} from {result.start_timecode} "
          f"at {result.rate} fps, {len(result.shots)} shot(s)")
    pic = result.picture
    if pic:
        depth = f", {pic['bit_depth']}-bit" if pic.get("bit_depth") else ""
        print(f"  picture: {pic['codec']}{' ' + pic['profile'] if pic.get('profile') else ''} {pic['pix_fmt']}{depth}, "
              f"colour {pic['color']['description']}")
        print(f"    what a dub keeps: {pic['dub_keeps']}")
    for i, shot in enumerate(result.shots, 1):
        facts = [f"face in {shot.frames_with_face} of {shot.frames} frames"]
        if shot.no_face:
            facts.append(f"no face in {_fmt_ranges(shot.no_face)}")
        if shot.low_confidence:
            facts.append(f"unsure face in {_fmt_ranges(shot.low_confidence)}")
        if shot.pose_score_deg is not None:
            facts.append(f"head turned up to {shot.pose_score_deg:.1f}°")
        if shot.occlusion_sampled_frames:
            facts.append(f"hands over the face in {len(shot.occluded_frames)} of {shot.occlusion_sampled_frames} sampled frames"
                         + (f" (at most {shot.occlusion_max_per_frame} landmarks covered)" if shot.occluded_frames else ""))
        print(f"  shot {i}: frames {shot.start_frame}-{shot.end_frame - 1} ({shot.start_timecode}): " + ", ".join(facts))
        print(f"    for dubbing: {shot.dubbing()}")


def _fmt_ranges(ranges: list[list[int]]) -> str:
    if not ranges:
        return "none"
    shown = ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in ranges[:4])
    return shown + (f" … (+{len(ranges) - 4})" if len(ranges) > 4 else "")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _cmd_dub(args: argparse.Namespace) -> int:
    quiet_native_logging()
    from .shot import ShotRequest

    if args.shot:
        request = ShotRequest.from_dict(_read_json(args.shot, what="shot file"))
    else:
        request = _request_from_args(args)
    if not args.quiet:  # torch, MediaPipe and the models take seconds to load: say what is coming first
        source = request.source
        shot = f"shot {request.shot_id}: " if args.shot else ""
        print(f"edidub dub: {shot}{Path(source.path).name} frames {source.start_frame}-{source.end_frame - 1} with "
              f"{', '.join(Path(a.path).name for a in request.dub_audio)}; loading the models…", file=sys.stderr, flush=True)
    from .acceleration import Acceleration
    from .cache import InversionCache
    from .render import LoadedModels, ShotRenderer

    device = args.device or ("cuda" if _cuda_available() else "cpu")
    models = LoadedModels.load(args.models, hubert_dir=args.hubert).to(device)
    from .config import DubSettings

    settings = DubSettings().with_overrides(**models.info.dub_defaults(), restore=args.restore, lsd=args.lsd)
    renderer = ShotRenderer(models, settings=settings, cache=None if args.no_cache else InversionCache(),
                            acceleration=Acceleration.parse(args.precision, args.compile, device))
    with StageProgress(enabled=not args.quiet, units={"lip-sync": "step"}) as on_progress:
        # Run again, an editor gets the next version beside the last (_v002…), never an overwrite or a refusal.
        clip = renderer.dub_shot(request, progress=on_progress, output_path=args.output, version_up=not args.shot)
    passed = sum(r.end_frame - r.start_frame for r in clip.frames_passed_through)
    for r in clip.frames_passed_through:
        print(f"  passed through frames {r.start_frame}-{r.end_frame - 1} of the shot: {r.reason.replace('_', ' ')}")
    if clip.qc.get("dub_padded_frames"):
        print(f"  the dub line ends before the shot: its last {clip.qc['dub_padded_frames']} frame(s) got no speech")
    if clip.qc.get("dub_cut_s"):
        print(f"  the dub line runs {clip.qc['dub_cut_s']:.2f} s past the shot; that part is not in the clip")
    if clip.patch_path:
        print(f"wrote {clip.patch_path}: the edited region with its matte as alpha (ProRes 4444)")
    for face in clip.qc.get("faces") or [None]:
        _print_quality(clip.qc.get("quality") or {} if face is None else face["quality"],
                       "" if face is None else f"face {face['face']}" + (f" ({_fmt_ranges(face['speaking'])} of the line)"
                                                                       if face.get("speaking") is not None else ""))
        mouths = clip.qc.get("mouths") if face is None else face.get("mouths")
        if mouths and not mouths.get("own_speech"):
            print(f"  mouths: {mouths['frames_moved']} of {mouths['frames_planned']} frames show another frame's mouth"
                  + (f"; {mouths['frames_kept_covered']} kept their own under a hand" if mouths.get("frames_kept_covered") else "")
                  + (f"; {mouths['frames_kept_unlike']} kept their own (something covers the lower face, or it moves fast)"
                     if mouths.get("frames_kept_unlike") else ""))
        for a, b in (face or {}).get("lost", []):
            print(f"    face {face['face']}: lost its identity over frames {a}-{b - 1} (passed through there)")
    if clip.model.get("name") == "edidub-starter":
        print("  note: the starter models ship for trying the path end to end; they are not production quality "
              "(see README: training a real model)")
    print(f"wrote {clip.path}: {clip.end_frame - clip.start_frame} frames at {clip.rate.numerator}/{clip.rate.denominator} fps "
          f"from {clip.timecode}, {clip.frames_edited} edited, {passed} passed through "
          f"({clip.model.get('name')} {clip.model.get('version')}, {clip.qc['timings']['total_s']:.1f} s)")
    return 0


def _request_from_args(args: argparse.Namespace):
    from .media import probe_video
    from .shot import ShotRequest

    lines = [_face_line(text, speakers=args.speakers is not None) for text in args.line or []]
    if not args.video or (not args.audio and not lines) or (args.speakers and not args.audio):
        raise InvalidArgumentError("give a VIDEO and --audio DUB.wav (or a --line FACE=AUDIO per face), or --shot shot.json",
                                   hint="see `edidub dub --help`")
    if args.audio and lines and not args.speakers:
        raise InvalidArgumentError("--audio and --line both name dub lines",
                                   hint="a --line FACE=AUDIO per face, or one mixed --audio with --speakers auto")
    info = probe_video(args.video)
    if args.rate is not None:
        from .media.sequence import with_rate
        from .shot import parse_rate

        if info.sequence is None:
            raise InvalidArgumentError(f"--rate is for image sequences; {info.path.name} runs at its own {info.rate} fps",
                                       hint="leave --rate out for video files")
        info = with_rate(info, parse_rate(args.rate, where="--rate"))
    start = parse_position(args.start, rate=info.rate, start_timecode=info.start_timecode, what="--start") or 0
    end = parse_position(args.end, rate=info.rate, start_timecode=info.start_timecode, what="--end")
    end = info.frame_count if end is None else end
    if end <= start:
        raise InvalidArgumentError(
            f"--start ({args.start}, frame {start}) is not before --end ({args.end if args.end is not None else 'the clip end'}, frame {end})",
            hint="--start is the first frame to dub, --end the frame after the last one (exclusive); swap them or move one",
        )
    if not 0 <= start < end <= info.frame_count:
        from .errors import RangeOutsideMediaError

        raise RangeOutsideMediaError(
            f"frames [{start}, {end}) are not inside {info.path.name}, which has {info.frame_count} frames (0-{info.frame_count - 1})",
            hint="--end is exclusive; give positions inside the clip",
        )
    return ShotRequest.from_dict({
        "shot_id": args.shot_id,
        "source": {"path": str(info.path), "start_frame": start, "end_frame": end,
                   **({"rate": str(info.rate)} if info.sequence is not None else {})},
        "dub_audio": [{"path": str(Path(args.audio).expanduser()), "start_s": args.audio_start, "duration_s": args.audio_duration}]
                     if args.audio else [],
        **({"lines": lines} if lines else {}), **({"speakers": args.speakers} if args.speakers else {}),
        "output": {"dir": str(Path.cwd()), "codec": args.codec, "patch": args.patch},
        "options": {k: v for k, v in {"steps": args.steps, "inversion_steps": args.inversion_steps,
                                     "guidance_scale": args.guidance, "seed": args.seed, "face": args.face,
                                     "strength": args.strength}.items() if v is not None},
    })


def _face_line(text: str, *, speakers: bool) -> dict:
    """``FACE=AUDIO`` (a face and its line), or with ``--speakers`` a face alone (its stretches come from the rule)."""
    face, sep, audio = text.partition("=")
    if not face.strip() or (not sep and not speakers) or (sep and not audio.strip()):
        raise InvalidArgumentError(f"--line {text!r} is not FACE=AUDIO", hint="e.g. --line 0=anna_fr.wav --line 1=bob_fr.wav "
                                   "(faces counted left to right from 0, 'largest' or 'X,Y')")
    if sep and speakers:
        raise InvalidArgumentError(f"--line {text!r}: with --speakers auto the faces share the mixed --audio",
                                   hint="name the faces alone (--line 0 --line 1), or drop --speakers and give each its line")
    return {"face": face.strip(), **({"dub_audio": [{"path": str(Path(audio.strip()).expanduser())}]} if sep else {})}


def _print_quality(quality: dict, face: str) -> None:
    """The QC verdict of one face (``face``: its name in a shot of several, "" for a one-face shot), its figures,
    its lips and the reasons to look."""
    from .mouth.sync import describe_lip_sync

    figures = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in quality.items() if k not in ("verdict", "reasons", "frames", "lip_sync"))
    print(f"  {face + ': ' if face else ''}QC: {quality.get('verdict', 'n/a').upper()}" + (f" ({figures})" if figures else ""))
    if (sync := quality.get("lip_sync")) is not None:
        print("  " + describe_lip_sync(sync))
    for reason in quality.get("reasons", []):
        print(f"    review: {reason}")


def _read_json(path: str, *, what: str) -> dict:
    file = Path(path).expanduser()
    if not file.is_file():
        from .errors import MediaNotFoundError

        raise MediaNotFoundError(f"{what} {file} does not exist", hint="check the path")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidArgumentError(f"{what} {file} is not valid JSON ({exc})", hint="write it as a ShotRequest map (see README)") from None


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import MISSING, report

    print("edidub doctor: checking this machine (loading torch, the GPU driver and the models takes a few seconds)…", flush=True)
    missing = 0
    for line, status in report(models=args.models, hubert_dir=args.hubert, clips=tuple(args.clip or ())):
        missing += status == MISSING
        print(f"  {status:<9} {line}")
    return 1 if missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edidub",
        description="EdiDub Engine: visual dubbing by content-aware video editing.",
    )
    parser.add_argument("--version", action="version", version=f"edidub {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="let third-party log lines (MediaPipe, TFLite) through; also EDIDUB_VERBOSE=1")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    analyze = sub.add_parser(
        "analyze",
        help="report faces, head pose, hands over the face and cuts of a clip range",
        description=(
            "Track the face through a clip range and report, per shot, the frames with a face, "
            "the paper's pose score (max |pitch|, |yaw|, |roll|) and hand-over-face occlusion "
            "(face landmarks inside a hand's convex hull); with --speakers, every face's speaking stretches. "
            "Prints a summary and writes JSON."
        ),
    )
    analyze.add_argument("clip", help="video file")
    analyze.add_argument("--start", help="first frame: frame number, source timecode or seconds (4.5s); default 0")
    analyze.add_argument("--end", help="end frame (exclusive), same forms as --start; default: end of clip")
    analyze.add_argument("--face", default="largest", help="which face: 'largest', an index counted left to right (0, 1…) or a point 'X,Y' in pixels")
    analyze.add_argument("--occlusion-every", type=int, default=1, metavar="N", help="check hands every Nth frame (the paper samples every 10th); default 1")
    analyze.add_argument("-o", "--output", help="JSON report path; default ./<clip name>.analysis.json")
    analyze.add_argument("--per-frame", action="store_true", help="include every frame's status, pose and occlusion count in the JSON")
    analyze.add_argument("--speakers", action="store_true",
                         help="also track every face and find who speaks when from each mouth and the clip's sound; "
                              "the JSON's faces list gives each face's speaking stretches as half-open frame ranges")
    analyze.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    analyze.set_defaults(func=_cmd_analyze)

    dub = sub.add_parser(
        "dub",
        help="re-render the mouth of a shot to match new speech; writes a new clip, never touches the source",
        description=(
            "Dub one shot: track the face, lip-sync the lower face to the dub speech (LSD with DDIM inversion, "
            "guidance, MultiDiffusion), restore detail (SRD), paste back into the native frames and encode with the "
            "dub audio and the source timecode. Frames without a usable face pass through unchanged and are listed."
        ),
    )
    dub.add_argument("video", nargs="?", help="source clip (opened read-only), or an EXR/DPX plate: sh010.%%04d.exr, sh010.####.dpx or its folder")
    dub.add_argument("--rate", metavar="FPS", help="frame rate of an image sequence whose files declare none (default 24; 24000/1001 forms work)")
    dub.add_argument("--audio", help="the dub speech (wav, flac, or any file with sound)")
    dub.add_argument("--audio-start", type=float, default=0.0, metavar="S", help="where the line starts in the audio file, seconds (default 0)")
    dub.add_argument("--audio-duration", type=float, default=None, metavar="S", help="how much of it to use (default: to the end)")
    dub.add_argument("--start", "--start-frame", "--start-tc", dest="start", metavar="POS",
                     help="first frame: frame number, source timecode (01:00:04:12) or seconds (4.5s); default 0")
    dub.add_argument("--end", "--end-frame", "--end-tc", dest="end", metavar="POS",
                     help="end frame (exclusive), same forms; default: end of clip")
    dub.add_argument("--shot", help="a ShotRequest JSON file instead of the arguments above (for render farms)")
    dub.add_argument("--shot-id", default="shot", help="name used in messages and the default output name")
    dub.add_argument("-o", "--output", help="output file (a new folder for exr/dpx); default ./<clip>_<shot id>_dub.<ext>; never overwritten")
    dub.add_argument("--codec", default="prores_hq", choices=CODECS, help=CODEC_HELP)
    dub.add_argument("--models", help="model bundle folder (default: $EDIDUB_MODELS/edidub-starter, the user data folder, then the starter bundle that ships)")
    dub.add_argument("--hubert", help="local HuBERT folder, for bundles trained on HuBERT units")
    dub.add_argument("--steps", type=int, help="DDIM sampling steps (paper: 50; default: the bundle's)")
    dub.add_argument("--inversion-steps", type=int, help="DDIM inversion steps (paper: 50; default: the bundle's)")
    dub.add_argument("--guidance", type=float, help="classifier-free guidance scale (paper: 5)")
    dub.add_argument("--seed", type=int, help="random seed (same request, model and seed give the same frames)")
    dub.add_argument("--face", help="which face: 'largest', an index counted left to right (0, 1…) or 'X,Y' in pixels")
    dub.add_argument("--restore", choices=("auto", "srd", "bicubic"), default="auto",
                     help="how the lip-synced mouth gets its detail: 'auto' runs the bundle's SRD only if `edidub check` found it "
                          "better than bicubic, 'srd' always, 'bicubic' upsamples the change onto the source's own detail")
    dub.add_argument("--line", action="append", metavar="FACE=AUDIO",
                     help="a face and its own dub line, repeatable (a two-shot: --line 0=anna_fr.wav --line 1=bob_fr.wav); FACE as "
                          "--face takes it. Every face listed is dubbed in one pass, every other face keeps its pixels")
    dub.add_argument("--speakers", choices=("auto",),
                     help="share one mixed --audio out: each stretch goes to the face that spoke it in the original (found from "
                          "each mouth's movement against the original sound); with --line FACE (no audio), only those faces")
    dub.add_argument("--strength", type=float, metavar="S",
                     help="how far the mouth may move from the source's toward the one the dub line asks for: 0 keeps the "
                          "source's mouth, 1 follows the line fully (default: 1, chosen from the curve of sync against "
                          "fidelity in the README)")
    dub.add_argument("--lsd", choices=("auto", "on", "off"), default="auto",
                     help="whether the lip-sync network edits the clip once the actor's own mouths are moved in: 'auto' where "
                          "`edidub check` found that its edit brings them closer to the truth, 'on' always, 'off' never")
    dub.add_argument("--patch", action="store_true", help="also write <output>_patch.mov: the edited region alone as ProRes 4444 with the feathered matte as alpha, to lay over the untouched original")
    dub.add_argument("--no-cache", action="store_true", help="do not read or write the inversion cache")
    dub.add_argument("--device", metavar="DEV", help="cpu, cuda, cuda:1, … (default: the first GPU, else cpu)")
    dub.add_argument("--precision", choices=("fp32", "bf16"), help="network precision (default: bf16 on a GPU, fp32 on CPU)")
    dub.add_argument("--compile", choices=("off", "default", "reduce-overhead", "max-autotune"),
                     help="torch.compile the networks (default: 'default' on a GPU, off on CPU; 'reduce-overhead' adds CUDA graphs)")
    dub.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    dub.set_defaults(func=_cmd_dub)

    doctor = sub.add_parser("doctor", help="what hardware, models, speech frontends and codecs this machine has")
    doctor.add_argument("--models", help="model bundle folder to check")
    doctor.add_argument("--hubert", help="local HuBERT folder to check")
    doctor.add_argument("--clip", action="append", metavar="FILE",
                        help="a clip to check: its pixel format, bit depth, colour tags and what a dub keeps of them (repeatable)")
    doctor.set_defaults(func=_cmd_doctor)

    from .audio.commands import add_codebook_parser
    from .daemon.commands import add_daemon_parsers
    from .training.commands import add_adapt_parser, add_prepare_parser, add_train_parser

    add_codebook_parser(sub)
    add_prepare_parser(sub)
    add_train_parser(sub)
    add_adapt_parser(sub)
    add_daemon_parsers(sub)

    from .batch.commands import add_batch_parser, add_shots_parser

    add_batch_parser(sub)
    add_shots_parser(sub)

    from .evaluation.commands import add_eval_parsers

    add_eval_parsers(sub)

    add_plugin_parsers(sub)
    return parser


PLUGIN_COMMANDS = "edidub.commands"


def add_plugin_parsers(sub) -> None:
    """Sub-commands that plugins register (``edidub install resolve``, ``edidub bridge premiere``).

    Each is an entry point in the ``edidub.commands`` group naming a function that
    adds its parsers, so the engine never imports a plugin. A plugin that fails to
    load is left out with a warning rather than breaking every other command.
    """
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=PLUGIN_COMMANDS), key=lambda e: e.name):
        try:
            add = entry.load()
        except Exception as exc:  # a broken plugin must not take the engine's commands with it
            print(f"edidub: plugin command {entry.name!r} ({entry.value}) not loaded: {exc}", file=sys.stderr)
            continue
        add(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["EDIDUB_VERBOSE"] = "1"
    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
