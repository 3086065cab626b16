"""``edidub codebook fit``: the argparse wiring, kept here so cli.py adds it with one line.

    from .audio.commands import add_codebook_parser
    add_codebook_parser(sub)

The handler returns an exit status and raises :class:`EdidubError` subclasses
on bad input; cli.py's ``main`` turns those into a message and a hint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError, OutputExistsError

__all__ = ["add_codebook_parser", "cmd_codebook_fit"]

_FIT_DESCRIPTION = (
    "Fit the k-means codebook that turns speech features into the units the lip-sync model is conditioned on. "
    "The paper fits 200 clusters on one million HuBERT-Large output vectors from LJSpeech, a single speaker: "
    "with one voice the clusters cannot encode speaker identity and keep what moves the mouth. Fit on one "
    "speaker's speech for the same effect. "
    "--units hubert (default) is the paper's method and needs a local HuBERT folder (--hubert DIR, "
    "$EDIDUB_MODELS/hubert-large-ll60k or the user data folder); --units mel is the embedded log-mel "
    "frontend, which needs no weights but keeps speaker and channel in the features (the paper's "
    "'w/o HuBERT' direction, not its method). The codebook records its frontend; using it with the "
    "other frontend is an error."
)


def add_codebook_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``codebook`` with its ``fit`` sub-command on ``subparsers``; returns the ``codebook`` parser."""
    codebook = subparsers.add_parser(
        "codebook",
        help="fit the speech-unit codebook (k-means over HuBERT or log-mel features)",
        description="Speech-unit codebooks: k-means centres over 50 Hz speech features.",
    )
    sub = codebook.add_subparsers(dest="codebook_command", metavar="ACTION", required=True)
    fit = sub.add_parser(
        "fit",
        help="fit a codebook on a folder of speech (the paper: LJSpeech, one speaker, 200 clusters)",
        description=_FIT_DESCRIPTION,
    )
    fit.add_argument("speech_dir", metavar="SPEECH_DIR", help="folder of speech recordings, searched recursively (wav, flac, mp3, ogg, m4a…)")
    fit.add_argument("--clusters", type=int, default=200, help="number of k-means clusters; the null unit is this index (default 200, as in the paper)")
    fit.add_argument("--max-vectors", type=int, default=1_000_000, metavar="N", help="fit on at most N feature vectors, a seeded uniform sample (default 1000000, as in the paper)")
    fit.add_argument("-o", "--output", required=True, help="codebook file to write (.safetensors); never overwritten")
    fit.add_argument("--units", choices=("hubert", "mel"), default="hubert", help="speech frontend: hubert (paper; needs a local model) or mel (embedded, no weights); default hubert")
    fit.add_argument("--hubert", metavar="DIR", help="HuBERT model folder (transformers layout); default $EDIDUB_MODELS/hubert-large-ll60k, then the user data folder")
    fit.add_argument("--layer", type=int, default=None, help="HuBERT hidden layer to take (0 = transformer input); default: the output features, as in the paper")
    fit.add_argument("--seed", type=int, default=0, help="seed for the vector sample and k-means (default 0)")
    fit.add_argument("-q", "--quiet", action="store_true", help="no per-file progress")
    fit.set_defaults(func=cmd_codebook_fit)
    return codebook


def cmd_codebook_fit(args: argparse.Namespace) -> int:
    """Handler of ``edidub codebook fit``."""
    from .codebook import fit_codebook, list_speech_files
    from .frontends import HubertFrontendConfig, load_frontend

    output = Path(args.output).expanduser()
    if output.exists():  # fail before minutes of feature extraction, and again at write time
        raise OutputExistsError(f"{output} already exists; codebooks are never overwritten", hint="choose another -o path or delete the old file")
    if not output.parent.is_dir():
        raise InvalidArgumentError(f"cannot write {output}: folder {output.parent} does not exist", hint="create it or choose another -o path")
    if args.units != "hubert" and (args.hubert is not None or args.layer is not None):
        raise InvalidArgumentError("--hubert and --layer apply only to --units hubert", hint="drop them or use --units hubert")
    files = list_speech_files(args.speech_dir)
    frontend = load_frontend(args.units, hubert_dir=args.hubert, hubert_config=HubertFrontendConfig(layer=args.layer))

    def progress(index: int, total: int, path: Path, kept: int) -> None:
        if not args.quiet:
            print(f"  [{index}/{total}] {path.name}: {kept} vectors kept", file=sys.stderr)

    codebook = fit_codebook(
        frontend,
        files,
        clusters=args.clusters,
        max_vectors=args.max_vectors,
        seed=args.seed,
        source=str(Path(args.speech_dir).expanduser().resolve()),
        on_file=progress,
    )
    codebook.save(output)
    fitted = codebook.fitted_on
    print(
        f"wrote {output}: {codebook.clusters} clusters (+ null unit {codebook.null_unit}) over {codebook.frontend} features "
        f"(dim {codebook.feature_dim}), fitted on {fitted['vectors_used']} vectors from {fitted['files']} file(s) "
        f"({fitted['seconds']:.1f} s), seed {codebook.seed}"
    )
    return 0
