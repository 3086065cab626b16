"""``edidub prepare``: the argparse wiring, kept here so cli.py adds it with one line.

    from .training.commands import add_prepare_parser
    add_prepare_parser(sub)

The handler returns an exit status and raises :class:`EdidubError` subclasses on bad
input; cli.py's ``main`` turns those into a message and a hint.
"""

from __future__ import annotations

import argparse

from edidub_engine.errors import MediaDecodeError

__all__ = ["add_prepare_parser", "cmd_prepare"]

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
