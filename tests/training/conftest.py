"""A small prepared dataset shared by the training tests: two GRID clips and one bad file,
prepared once per session through the real ``edidub prepare`` parser (two worker processes)."""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
GRID_CLIPS = ("grid_bbaf2n.mpg", "grid_brbk7n.mpg")


def prepare_parser() -> argparse.ArgumentParser:
    from edidub_engine.training.commands import add_prepare_parser

    parser = argparse.ArgumentParser(prog="edidub")
    add_prepare_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _run_prepare(*argv: str) -> int:
    args = prepare_parser().parse_args(["prepare", *argv])
    return args.func(args)


@pytest.fixture(scope="session")
def run_prepare():
    """``run_prepare(*argv)``: ``edidub prepare ARGV`` in this process, through the real parser; its exit status."""
    return _run_prepare


@dataclass
class Prepared:
    videos: Path
    dataset: Path
    codebook: Path
    clips: tuple[str, ...] = GRID_CLIPS

    def argv(self, *extra: str) -> list[str]:
        return [str(self.videos), "-o", str(self.dataset), "--codebook", str(self.codebook), "-q", *extra]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Prepared:
    from edidub_engine.audio import MelFrontend, fit_codebook

    for name in GRID_CLIPS:
        if not (FOOTAGE / name).is_file():
            pytest.skip(f"shared footage {name} not found under {FOOTAGE}")
    root = tmp_path_factory.mktemp("training")
    videos = root / "videos"
    videos.mkdir()
    for name in GRID_CLIPS:
        shutil.copy2(FOOTAGE / name, videos / name)
    (videos / "notes.mp4").write_text("this is a text file, not a video\n")
    codebook = root / "mel8.safetensors"
    # A tiny mel codebook fitted on the clips' own speech: enough to exercise the unit path.
    fit_codebook(MelFrontend(), [videos / n for n in GRID_CLIPS], clusters=8, seed=0).save(codebook)
    dataset = root / "dataset"
    p = Prepared(videos, dataset, codebook)
    assert _run_prepare(*p.argv("--workers", "2")) == 0
    return p
