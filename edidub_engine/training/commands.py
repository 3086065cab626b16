"""``edidub prepare`` and ``edidub train``: the argparse wiring, kept here so cli.py adds each with one line.

    from .training.commands import add_prepare_parser, add_train_parser
    add_prepare_parser(sub)
    add_train_parser(sub)

The handler returns an exit status and raises :class:`EdidubError` subclasses on bad
input; cli.py's ``main`` turns those into a message and a hint.
"""

from __future__ import annotations

import argparse
import json

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError

__all__ = ["add_adapt_parser", "add_prepare_parser", "add_train_parser", "cmd_adapt", "cmd_prepare", "cmd_train", "cmd_train_bundle"]

_DESCRIPTION = (
    "Prepare training data: for every clip under VIDEOS_DIR (recursively), track the face, store aligned "
    "64 px and 224 px crops, lower-face masks, landmarks, speech units of the clip's own audio (through "
    "--codebook) and each frame's training reference frame (paper §3.1: the frame of the same shot whose "
    "landmarks, lips and jaw excluded, are nearest, more than --exclusion-frames away). One safetensors "
    "shard per clip under DATASET_DIR/shards plus DATASET_DIR/manifest.json. Resumable: clips whose shard "
    "matches the settings are skipped. Clips that cannot be used (unreadable, no audio, no face, too short) "
    "are listed in the manifest and at the end, and do not stop the run. Use only footage you may train on."
)


def add_prepare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``prepare`` on ``subparsers``; returns its parser."""
    from .reference import DEFAULT_EXCLUSION_FRAMES

    p = subparsers.add_parser(
        "prepare",
        help="turn a folder of talking-head clips into a training dataset (crops, masks, units, references)",
        description=_DESCRIPTION,
    )
    p.add_argument("videos_dir", metavar="VIDEOS_DIR", help="folder of clips, searched recursively (mp4, mov, mkv, mpg…)")
    p.add_argument("-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder to write (created; existing shards are reused when they match)")
    p.add_argument("--codebook", required=True, metavar="CODEBOOK", help="speech-unit codebook (.safetensors from `edidub codebook fit`)")
    p.add_argument("--units", choices=("mel", "hubert"), default=None, help="speech frontend; default: the codebook's own (another one is an error)")
    p.add_argument("--hubert", metavar="DIR", help="HuBERT model folder for --units hubert; default $EDIDUB_MODELS/hubert-large-ll60k, then the user data folder")
    p.add_argument(
        "--exclusion-frames",
        type=int,
        default=DEFAULT_EXCLUSION_FRAMES,
        metavar="K",
        help=f"a frame's reference is more than K frames away (default {DEFAULT_EXCLUSION_FRAMES}: one 25-frame training window minus one)",
    )
    p.add_argument("--min-frames", type=int, default=25, metavar="N", help="clips with fewer frames are skipped as too short (default 25)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="clips prepared in parallel, one process and face tracker each (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_prepare)
    return p


def cmd_prepare(args: argparse.Namespace) -> int:
    """Handler of ``edidub prepare``."""
    from .prepare import prepare_dataset

    if not args.quiet:
        from edidub_engine.face.native_stderr import install_stderr_filter

        install_stderr_filter()
    report = prepare_dataset(
        args.videos_dir,
        args.output,
        codebook_path=args.codebook,
        units=args.units,
        hubert_dir=args.hubert,
        exclusion_frames=args.exclusion_frames,
        min_frames=args.min_frames,
        workers=args.workers,
        progress=not args.quiet,
    )
    if not report.manifest["clips"]:
        raise MediaDecodeError(
            f"no clip under {args.videos_dir} could be prepared ({len(report.failed)} failed)",
            hint=f"see the reasons above and in {report.manifest_path}",
        )
    return 0


_TRAIN_DESCRIPTION = (
    "Train the lip-sync (lsd) or super-resolution (srd) network on a prepared dataset (`edidub prepare`), "
    "as in the paper's appendix B.2: AdamW, linear warm-up then cosine decay of the learning rate, weight "
    "decay, EMA of the weights, horizontal flip; SRD with a random low-resolution side and predecessor "
    "replacement. RUN_DIR gets config.json, train.log, metrics.jsonl, checkpoints/ (atomic; --resume "
    "continues exactly) and, when the last step is reached, model/: the EMA weights in diffusers layout "
    "with model_card.json. Several GPUs: `torchrun --nproc_per_node N -m edidub_engine train ...`."
)


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` (``lsd``, ``srd``, ``bundle``) on ``subparsers``; returns the ``train`` parser."""
    train = subparsers.add_parser(
        "train",
        help="train the LSD or SRD network on a prepared dataset, or assemble a model bundle",
        description=_TRAIN_DESCRIPTION,
    )
    sub = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    for task in ("lsd", "srd"):
        p = sub.add_parser(task, help=f"train the {task.upper()} network", description=_TRAIN_DESCRIPTION)
        p.add_argument("--data", metavar="DATASET_DIR", help="prepared dataset folder (required for a new run; a resumed run uses its own)")
        p.add_argument("-o", "--output", required=True, metavar="RUN_DIR", help="run folder: config, log, checkpoints, exported model")
        p.add_argument("--config", default=None, metavar="PRESET|JSON",
                       help=f"training preset ({task}-paper, {task}-tiny, {task}-starter) or a config.json; default {task}-paper")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="change one setting, VALUE in JSON (steps=1000, lr=2e-4, model.base_channels=16); repeatable")
        p.add_argument("--steps", type=int, default=None, metavar="N", help="total optimiser steps (on --resume: a new total)")
        p.add_argument("--until", type=int, default=None, metavar="STEP", help="stop at this step with a checkpoint (resume later)")
        p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its newest checkpoint with its own config")
        p.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA (the paper trains in float32)")
        p.add_argument("--export-dtype", choices=("fp32", "fp16", "bf16"), default=None, help="dtype of the exported weights (fp16 for shipping)")
        p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
        p.add_argument("--data-licence", default=None, metavar="TEXT", help="licence of the training footage, recorded in the model card")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=cmd_train, task=task)
    b = sub.add_parser("bundle", help="put an LSD, an SRD and their codebook into one bundle folder",
                       description="Assemble a model bundle (bundle.json, model_card.json, lsd/, srd/, codebook.safetensors) "
                                   "from two finished runs and the codebook the LSD's dataset was prepared with.")
    b.add_argument("--lsd", required=True, metavar="RUN_DIR", help="LSD run folder (or its model/ folder)")
    b.add_argument("--srd", required=True, metavar="RUN_DIR", help="SRD run folder (or its model/ folder)")
    b.add_argument("--codebook", required=True, metavar="CB", help="the codebook (.safetensors)")
    b.add_argument("-o", "--output", required=True, metavar="BUNDLE_DIR", help="bundle folder to write (must not exist unless --overwrite)")
    b.add_argument("--name", required=True, help="bundle name (the folder name models are looked up by)")
    b.add_argument("--version", default="1", help="bundle version (default 1)")
    b.add_argument("--description", default=None, help="one line for the card")
    b.add_argument("--notes", default=None, help="what the bundle is and is not good for, for the card")
    b.add_argument("--credits", default=None, help="credits and licences of the training data, for the card")
    b.add_argument("--defaults", default=None, metavar="JSON",
                   help='dub settings this bundle runs with unless a request says otherwise, e.g. \'{"steps": 10, "inversion_steps": 10}\'')
    b.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    b.set_defaults(func=cmd_train_bundle)
    return train


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``edidub train lsd|srd``."""
    import sys


    from .config import apply_overrides, parse_override, train_config
    from .trainer import train

    overrides = [parse_override(text) for text in args.overrides]
    if args.bf16:
        overrides.append(("bf16", True))
    if args.export_dtype:
        overrides.append(("export_dtype", args.export_dtype))
    config = None
    if args.resume:
        if args.config is not None or overrides:
            raise InvalidArgumentError("--resume uses the run's own config.json", hint="drop --config, --set, --bf16 and --export-dtype (only --steps may change)")
    else:
        if args.data is None:
            raise InvalidArgumentError("a new run needs --data DATASET_DIR", hint="prepare one with `edidub prepare`")
        config = train_config(args.config or f"{args.task}-paper")
        if config.task.value != args.task:
            raise InvalidArgumentError(f"config {args.config!r} trains {config.task.value}, not {args.task}")
        config = apply_overrides(config, overrides) if overrides else config
    result = train(args.data, args.output, config, resume=args.resume, steps=args.steps, until_step=args.until, device=args.device,
                   progress=not args.quiet, command=["edidub", *sys.argv[1:]] if sys.argv[1:2] == ["train"] else None,
                   data_licence=args.data_licence)
    if result.export_dir is not None:
        print(f"trained {result.step} steps in {result.wall_time_s:.0f} s, final loss {result.final_loss:.4f}; model in {result.export_dir}")
    elif result.step < result.steps_total:
        print(f"stopped at step {result.step} of {result.steps_total}; continue with --resume (checkpoint {result.checkpoint})")
    return 0


def cmd_train_bundle(args: argparse.Namespace) -> int:
    """Handler of ``edidub train bundle``."""
    from .export import export_bundle

    path = export_bundle(args.lsd, args.srd, args.codebook, args.output, name=args.name, version=args.version,
                         description=args.description, notes=args.notes, credits=args.credits, overwrite=args.overwrite,
                         defaults=_dub_defaults(args.defaults))
    print(f"wrote bundle {args.name} to {path}")
    return 0


def _dub_defaults(text: str | None) -> dict | None:
    """Check ``--defaults`` against DubSettings so a bundle never ships settings the renderer refuses."""
    if text is None:
        return None
    from edidub_engine.config import DubSettings

    try:
        defaults = json.loads(text)
        DubSettings(**defaults)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"--defaults {text!r} is not a JSON map of dub settings ({exc})",
                                   hint='e.g. \'{"steps": 10, "inversion_steps": 10}\'') from None
    return defaults


_ADAPT_DESCRIPTION = (
    "Fine-tune a bundle's lip-sync network on one actor's own takes (picture and production sound: the paper's "
    "self-supervised pairs). The last fifth of each clip's range is held back: every --validate-every steps the "
    "network dubs it with its own speech and the PSNR inside the mouth mask is the validation figure; the best "
    "weights are kept, and training stops at --steps, --minutes, or when the figure has not improved for --patience "
    "checks. Writes a new bundle (the base is never written to) whose card gives the base and its hash, the clips and "
    "frames, steps, time, device and the figures before and after. Ctrl-C leaves a resumable state: run the same "
    "command with --resume. From a cut: --timeline CUT --clip-name PATTERN takes every picture clip whose name "
    "matches (the supervisor names one actor's clips alike, e.g. ANNA_*), with the source frames the cut uses. "
    "Use it on footage the production may use for this."
)


def add_adapt_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``adapt`` on ``subparsers``; returns its parser."""
    p = subparsers.add_parser("adapt", help="fine-tune the lip-sync model on one actor's own takes (a new bundle)",
                              description=_ADAPT_DESCRIPTION)
    p.add_argument("clips", nargs="*", metavar="CLIP", help="the actor's takes, each PATH or PATH@START-END (frames, end exclusive)")
    p.add_argument("--timeline", metavar="CUT", help="take the actor's clips from a cut (.otio, FCP7 .xml, .edl, .aaf, .fcpxml) instead")
    p.add_argument("--clip-name", metavar="PATTERN",
                   help="with --timeline: the actor's clips are those whose clip name matches PATTERN (shell pattern, any case: ANNA_*)")
    p.add_argument("--picture-track", action="append", metavar="NAME", help="with --timeline: video track(s), by name or V1… (default: all)")
    p.add_argument("--rate", help="with an EDL: its timecode rate (default: inferred)")
    p.add_argument("--timeline-name", metavar="NAME", help="with --timeline: which timeline of a file that holds several")
    p.add_argument("-o", "--output", required=True, help="the adapted bundle's folder (must not exist)")
    p.add_argument("--base", default=None, help="bundle to start from (default: as `edidub dub`)")
    p.add_argument("--name", default=None, help="the adapted bundle's name (default: BASE-FIRSTCLIP)")
    p.add_argument("--steps", type=int, default=None, help="training steps at most")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes (checked between validations)")
    p.add_argument("--validate-every", type=int, default=100, help="steps between validations (default 100)")
    p.add_argument("--patience", type=int, default=3, help="stop after this many validations without improvement (default 3)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the base's, at most 2e-4)")
    p.add_argument("--resume", action="store_true", help="continue an adaptation that was stopped")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=cmd_adapt)
    return p


def cmd_adapt(args: argparse.Namespace) -> int:
    import time

    from edidub_engine.commandline import StageProgress, log_line

    from .adapt import adapt_bundle, clips_from_timeline, eta_s, parse_clip

    started = time.perf_counter()
    say = (lambda line: None) if args.quiet else (lambda line: log_line(f"adapt: {line}"))

    with StageProgress(enabled=not args.quiet, units={"adapt": "step"}) as progress:
        def on_step(done: int, total: int) -> None:
            left = eta_s(done, total, time.perf_counter() - started)
            if left is not None:
                say(f"about {left / 60:.0f} min left for the step budget")
            if progress is not None and total:
                progress("adapt", done, total)

        if args.timeline:
            if args.clips or not args.clip_name:
                raise InvalidArgumentError("with --timeline, name the actor's clips with --clip-name PATTERN and give no CLIP",
                                           hint="e.g. edidub adapt --timeline cut.otio --clip-name 'ANNA_*' -o anna")
            clips = clips_from_timeline(args.timeline, clip_name=args.clip_name, picture_tracks=args.picture_track, rate=args.rate,
                                        timeline_name=args.timeline_name, log=say)
        elif args.clips:
            clips = [parse_clip(c) for c in args.clips]
        else:
            raise InvalidArgumentError("no clips to adapt on", hint="give the actor's takes (CLIP…) or --timeline CUT --clip-name PATTERN")
        result = adapt_bundle(clips, args.output, base=args.base, name=args.name, steps=args.steps,
                              minutes=args.minutes, validate_every=args.validate_every, patience=args.patience,
                              resume=args.resume, device=args.device, log=say, on_step=on_step, lr=args.lr)
    print(f"wrote {result.bundle}: validation {result.before_db:.2f} dB (base) -> {result.best_db:.2f} dB "
          f"(step {result.best_step} of {result.steps}, {result.seconds / 60:.1f} min; {result.stopped}). "
          f"Dub with it: edidub dub … --models {result.bundle}")
    if result.best_step == 0:
        print("  LSD: the base's — no fine-tuned weights beat it on the held-back frames, so this bundle lip-syncs as the base "
              "does; more takes of the actor (or a larger base model) give fine-tuning more to learn from")
    validation = (result.srd or {}).get("validation")
    if validation:
        print(f"  SRD fine-tuned: {validation['before_db']:.2f} -> {validation['after_db']:.2f} dB on the held-back crops "
              f"(bicubic {validation['bicubic_db']:.2f} dB)")
    elif result.srd:
        print(f"  SRD: {result.srd.get('kept')}")
    whole = (result.check or {}).get("end_to_end") or {}
    if whole.get("lower_face_db") is not None:  # measured on held-back frames (a bundle that kept the base's SRD keeps its verdict)
        from edidub_engine.render import srd_verdict

        print(f"  check on held-back frames: lower face {whole.get('lower_face_db')} dB end to end; "
              f"{srd_verdict({'check': result.check})['reason']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m edidub_engine.training.commands prepare|train ...``: the same commands without cli.py
    (torchrun can start it with ``-m``); errors print as ``edidub``'s do."""
    from edidub_engine.commandline import run_command

    parser = argparse.ArgumentParser(prog="edidub")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_prepare_parser(sub)
    add_train_parser(sub)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
