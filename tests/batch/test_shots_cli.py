"""``edidub shots``: the dry run a supervisor reads before a night of GPU time (the real CLI, real files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest

from batch_helpers import build_cut

from otio_adapters.shotlist_io import from_csv, from_json

REPO = Path(__file__).resolve().parents[2]
TIMELINES = REPO.parent / "shared" / "timelines"


def _shots(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edidub_engine", "shots", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cut(tmp_path):
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(build_cut(), str(path))  # build_cut skips the test when the footage is absent
    return path


def test_the_table_lists_shots_with_timecodes_and_the_clips_left_out(cut, tmp_path):
    proc = _shots(str(cut), "--dub-track", "FR dialogue", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "three shots: 3 shot(s) to dub, 1 clip(s) left out (25 fps, dub lines from 'FR dialogue')"
    row = next(line.split() for line in lines if line.strip().startswith("V1_000_grid_bbaf2n"))
    # record in/out as the timeline's timecodes (out exclusive), source frames inclusive, the dub line's span in its file
    assert row == ["V1_000_grid_bbaf2n", "01:00:00:00", "01:00:00:16", "16", "grid_bbaf2n.mpg", "10-25", "25", "dub_fr_french1.wav", "0.00-0.48s"]
    assert any(line.split()[:4] == ["V1/grid_lbbc2a.mpg", "01:00:01:23", "01:00:02:06", "no_dub"] for line in lines)
    assert list(tmp_path.iterdir()) == [cut]  # a dry run writes nothing


def test_json_and_csv_are_shot_lists_the_batch_reads_back(cut, tmp_path):
    table = _shots(str(cut), "--dub-track", "FR dialogue", "--format", "json", "-o", str(tmp_path / "shots.json"), cwd=tmp_path)
    assert table.returncode == 0 and "wrote" in table.stderr and "left out V1/grid_lbbc2a.mpg: no_dub" in table.stderr
    listed = from_json((tmp_path / "shots.json").read_text())
    assert [s.shot_id for s in listed.shots] == ["V1_000_grid_bbaf2n", "V1_001_grid_brbk7n", "V1_002_grid_lbax4n"]
    assert [s.reason for s in listed.skipped] == ["no_dub"]
    csv = _shots(str(cut), "--dub-track", "FR dialogue", "--format", "csv", cwd=tmp_path)
    assert [s.source.start_frame for s in from_csv(csv.stdout).shots] == [10, 20, 30]
    again = _shots(str(cut), "--dub-track", "FR dialogue", "--format", "json", "-o", str(tmp_path / "shots.json"), cwd=tmp_path)
    assert again.returncode == 5 and "never overwrites" in again.stderr  # OUTPUT_EXISTS


def test_nothing_to_dub_exits_1_and_a_two_timeline_file_names_the_flag(cut, tmp_path):
    none = _shots(str(cut), "--dub-track", "FR dialogue", "--picture-track", "V9", cwd=tmp_path)
    assert none.returncode != 0 and "Traceback" not in none.stderr
    fcpx = TIMELINES / "fcpx_example.fcpxml"
    if not fcpx.is_file():
        pytest.skip(f"shared timeline {fcpx} is absent")
    two = _shots(str(fcpx), cwd=tmp_path)
    assert two.returncode != 0 and "holds 2 timelines" in two.stderr and "--timeline-name" in two.stderr
    chosen = _shots(str(fcpx), "--timeline-name", "OpenTimeline_Project 1", cwd=tmp_path)
    assert chosen.stdout.startswith("OpenTimeline_Project 1: ") and "Traceback" not in chosen.stderr


def test_an_edl_read_at_29_97_is_read_at_the_ntsc_rate_and_says_so_once(tmp_path):
    """`--rate 29.97` was refused ("decimals like 29.97 are ambiguous"); it is the rate every editor writes for 30000/1001."""
    edl = TIMELINES / "premiere_sequence01_25.edl"
    if not edl.is_file():
        pytest.skip(f"shared timeline {edl} is absent")
    typed = _shots(str(edl), "--rate", "29.97", cwd=tmp_path)
    exact = _shots(str(edl), "--rate", "30000/1001", cwd=tmp_path)
    assert "Traceback" not in typed.stderr and typed.stdout == exact.stdout and typed.returncode == exact.returncode
    assert typed.stdout.startswith("Sequence 01: ") and "(29.97 fps" in typed.stdout.splitlines()[0]
    notice = f"{edl}: frame rate 29.97 read as the NTSC rate 30000/1001 (29.97003 fps)"
    assert typed.stderr.count(notice) == 1 and "read as the NTSC rate" not in exact.stderr
