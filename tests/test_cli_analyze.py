"""``edidub analyze`` end to end, on real footage and on bad input, through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from edidub_engine.cli import parse_position
from edidub_engine.errors import InvalidArgumentError

EDIDUB = [sys.executable, "-m", "edidub_engine"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*EDIDUB, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def assert_clean_failure(proc: subprocess.CompletedProcess, status: int, *needles: str) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "what to do:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr


@pytest.fixture(scope="module")
def hamilton_report(tmp_path_factory, footage_path) -> dict:
    clip = footage_path("hamilton_mic_occlusion.mp4")
    out = tmp_path_factory.mktemp("analyze") / "hamilton.json"
    proc = run_cli("analyze", str(clip), "-o", str(out), "--per-frame", "-q", cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    assert not any(chatter in proc.stderr for chatter in ("W0000", "XNNPACK", "absl", "GetPrototype"))  # no third-party log lines
    return {**json.loads(out.read_text()), "_stdout": proc.stdout}


def test_the_summary_says_what_each_shot_means_for_dubbing(hamilton_report):
    lines = hamilton_report["_stdout"].splitlines()
    verdicts = [line.split("for dubbing: ", 1)[1] for line in lines if "for dubbing: " in line]
    assert len(verdicts) == len(hamilton_report["shots"]) == 4
    assert verdicts[1].startswith("passed through unchanged")  # the audience shot has no face to dub
    assert "hand covers the mouth" in verdicts[2]  # the microphone shot
    assert not any(" none" in line for line in lines)  # nothing reported as "none"
    assert hamilton_report["face_selector"] == "largest"  # as written on the command line, not a Python repr


def _seconds(report: dict, frame: int) -> float:
    """Frame number → seconds on the file's clock (hamilton's picture starts 0.85 s in)."""
    return 0.85 + frame / float(Fraction(report["rate"]))


def test_hamilton_cuts_match_the_edit(hamilton_report):
    cut_seconds = [_seconds(hamilton_report, f) for f in hamilton_report["cuts"]]
    # The manifest: wide shot 0.85–1.5 s, audience/profile 1.5–3.6 s, speaker 3.6–7.9 s, audience after.
    assert len(cut_seconds) == 3
    for got, expected in zip(cut_seconds, [1.5, 3.6, 7.9]):
        assert abs(got - expected) < 0.1
    assert len(hamilton_report["shots"]) == 4
    assert hamilton_report["rate"] == "30000/1001"


def test_hamilton_occlusion_is_marked_while_the_mic_covers_the_mouth(hamilton_report):
    occluded = [f for shot in hamilton_report["shots"] for f in shot["occluded_frames"]]
    inside = [f for f in occluded if 3.6 <= _seconds(hamilton_report, f) <= 7.9]
    assert len(inside) >= 3, occluded
    speaker_shot = hamilton_report["shots"][2]
    assert speaker_shot["occlusion_total_landmarks"] > 30 and speaker_shot["occluded"]


def test_hamilton_audience_shots_have_no_face_frames(hamilton_report):
    audience = [s for s in hamilton_report["shots"] if _seconds(hamilton_report, s["start_frame"]) < 3.5 and s["start_frame"] > 0]
    audience += [s for s in hamilton_report["shots"] if _seconds(hamilton_report, s["start_frame"]) > 7.8]
    no_face = sum(b - a for s in audience for a, b in s["no_face"])
    assert no_face > 0
    speaker = hamilton_report["shots"][2]
    assert speaker["frames_with_face"] >= 0.8 * speaker["frames"]


def test_hamilton_per_frame_records_pose(hamilton_report):
    frames = hamilton_report["frames"]
    assert len(frames) == hamilton_report["end_frame"] - hamilton_report["start_frame"]
    with_pose = [f for f in frames if f["yaw_deg"] is not None]
    assert with_pose and all(f["status"] == "ok" for f in with_pose)


def test_grid_clip_is_frontal_unoccluded_single_shot(tmp_path, footage_path):
    clip = footage_path("grid_bbaf2n.mpg")
    out = tmp_path / "grid.json"
    proc = run_cli("analyze", str(clip), "-o", str(out), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["cuts"] == []
    (shot,) = report["shots"]
    assert shot["frames_with_face"] == shot["frames"] == 75
    assert shot["occluded_frames"] == [] and not shot["occluded"]
    assert shot["pose_score_deg"] < 20
    # the picture as a colourist reads it (issue 20): format, depth, tags, and what a dub keeps of them
    picture = report["picture"]
    assert (picture["pix_fmt"], picture["bit_depth"], picture["color"]["description"]) == ("yuv420p", 8, "untagged, limited range")
    assert "sample for sample in its own yuv420p" in picture["dub_keeps"] and "colour tags" in picture["dub_keeps"]


def test_range_by_timecode_and_seconds(tmp_path, footage_path):
    clip = footage_path("grid_bbaf2n.mpg")
    out = tmp_path / "r.json"
    proc = run_cli("analyze", str(clip), "--start", "00:00:01:00", "--end", "1.5s", "-o", str(out), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert (report["start_frame"], report["end_frame"]) == (25, 38)


def test_missing_file(tmp_path):
    proc = run_cli("analyze", str(tmp_path / "nope.mov"), cwd=tmp_path)
    assert_clean_failure(proc, 3, "nope.mov")


def test_not_a_video(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video\n")
    proc = run_cli("analyze", str(bogus), cwd=tmp_path)
    assert_clean_failure(proc, 3, "notes.mp4")


def test_range_outside_the_clip(tmp_path, footage_path):
    clip = footage_path("grid_bbaf2n.mpg")
    proc = run_cli("analyze", str(clip), "--start", "70", "--end", "90", cwd=tmp_path)
    assert_clean_failure(proc, 2, "grid_bbaf2n.mpg")


def test_clip_with_no_face_at_all(tmp_path):
    from edidub_engine.media import ClipWriter, Codec

    clip = tmp_path / "sky.mp4"
    rng = np.random.default_rng(0)
    with ClipWriter(clip, width=320, height=240, rate=Fraction(25), codec=Codec.H264) as writer:
        for i in range(20):
            frame = np.full((240, 320, 3), (40 + 4 * i, 90, 160), dtype=np.uint8)
            writer.write(np.clip(frame + rng.integers(0, 8, frame.shape), 0, 255).astype(np.uint8))
    out = tmp_path / "sky.json"
    proc = run_cli("analyze", str(clip), "-o", str(out), "-q", cwd=tmp_path)
    assert_clean_failure(proc, 6, "no face", "sky.mp4")
    report = json.loads(out.read_text())
    assert sum(b - a for shot in report["shots"] for a, b in shot["no_face"]) == 20


def test_parse_position_forms():
    rate = Fraction(30000, 1001)
    assert parse_position("120", rate=rate, start_timecode="01:00:00;00", what="x") == 120
    assert parse_position("01:00:01;00", rate=rate, start_timecode="01:00:00;00", what="x") == 30
    assert parse_position("2s", rate=Fraction(25), start_timecode="00:00:00:00", what="x") == 50
    with pytest.raises(InvalidArgumentError):
        parse_position("soon", rate=rate, start_timecode="00:00:00:00", what="--start")
