"""``edidub prepare`` end to end on two GRID clips and a bad file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError
from edidub_engine.training.prepare import SHARD_FORMAT, read_manifest

GRID_CLIPS = ("grid_bbaf2n.mpg", "grid_brbk7n.mpg")

EXPECTED = {
    "crops_64": ((75, 64, 64, 3), np.uint8),
    "crops_224": ((75, 224, 224, 3), np.uint8),
    "masks_64": ((75, 64, 64), np.uint8),
    "masks_224": ((75, 224, 224), np.uint8),
    "landmarks": ((75, 478, 2), np.float32),
    "matrices": ((75, 2, 3), np.float64),
    "valid": ((75,), np.uint8),
    "status": ((75,), np.uint8),
    "shot": ((75,), np.int32),
    "reference": ((75,), np.int64),
    "units": ((75, 2), np.int64),
}


def test_manifest_lists_clips_failures_settings_and_codebook(prepared):
    manifest = read_manifest(prepared.dataset)
    assert [c["name"] for c in manifest["clips"]] == list(GRID_CLIPS)
    for clip in manifest["clips"]:
        assert clip["frames"] == 75 and clip["rate"] == "25/1"
        assert clip["valid_frames"] == 75 and clip["frames_with_reference"] == 75
        assert clip["shots"] == [[0, 75]] and clip["reference_runs"] == [[0, 75]]
        assert (prepared.dataset / clip["shard"]).is_file()
    assert [(f["name"], f["code"]) for f in manifest["failed"]] == [("notes.mp4", "BAD_MEDIA")]
    codebook = manifest["codebook"]
    assert codebook["frontend"] == "mel" and codebook["clusters"] == 8 and codebook["null_unit"] == 8
    import hashlib

    assert codebook["sha256"] == hashlib.sha256(prepared.codebook.read_bytes()).hexdigest()
    assert manifest["settings"]["exclusion_frames"] == 24
    assert manifest["settings"]["codebook_sha256"] == codebook["sha256"]


def test_shards_hold_the_right_shapes_and_values(prepared):
    for name in GRID_CLIPS:
        path = prepared.dataset / "shards" / f"{name}.safetensors"
        shard = load_file(str(path))
        assert {k: (v.shape, v.dtype) for k, v in shard.items()} == EXPECTED
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata()
        assert meta["format"] == SHARD_FORMAT and json.loads(meta["summary"])["name"] == name
        assert shard["valid"].all() and (shard["status"] == 0).all() and (shard["shot"] == 0).all()
        for size in (64, 224):
            m = shard[f"masks_{size}"]
            assert set(np.unique(m)) == {0, 1}
            # The lower-face mask covers a sizeable part of the crop and leaves the top (eyes) out.
            assert 0.15 < m.mean() < 0.6 and m[:, : size // 3].sum() == 0
        assert shard["crops_224"].std() > 20  # real pictures, not zeros
        # Landmarks in crop pixels: the face sits inside the 224 crop.
        lm = shard["landmarks"]
        assert np.isfinite(lm).all() and lm.min() > -5 and lm.max() < 229
        units = shard["units"]
        assert units.min() >= 0 and units.max() <= 8 and len(np.unique(units)) > 2
        ref = shard["reference"]
        assert (np.abs(ref - np.arange(75)) > 24).all()


def test_second_run_skips_done_clips_and_still_lists_the_bad_one(prepared, capsys, run_prepare):
    shard = prepared.dataset / "shards" / f"{GRID_CLIPS[0]}.safetensors"
    mtime = shard.stat().st_mtime_ns
    assert run_prepare(*prepared.argv()) == 0
    err = capsys.readouterr().err
    assert "prepared 0 clip(s), skipped 2 already done, 1 failed" in err
    assert "notes.mp4" in err
    assert shard.stat().st_mtime_ns == mtime
    assert [f["name"] for f in read_manifest(prepared.dataset)["failed"]] == ["notes.mp4"]


def test_partial_shard_left_by_a_killed_run_does_not_count_as_done(prepared, tmp_path, capsys, run_prepare):
    # A copy of the dataset whose first clip was "killed" mid-write: only a temp file is left,
    # and the second clip's final shard is truncated (e.g. a disk-full copy).
    dataset = tmp_path / "dataset"
    shutil.copytree(prepared.dataset, dataset)
    first = dataset / "shards" / f"{GRID_CLIPS[0]}.safetensors"
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid, once it has ended, is the "killed run"
    gone.wait()
    leftover = first.with_name(f".{first.name}.{gone.pid}.partial")
    leftover.write_bytes(first.read_bytes()[:100_000])
    first.unlink()
    second = dataset / "shards" / f"{GRID_CLIPS[1]}.safetensors"
    second.write_bytes(second.read_bytes()[:50_000])
    argv = [str(prepared.videos), "-o", str(dataset), "--codebook", str(prepared.codebook), "-q"]
    assert run_prepare(*argv) == 0
    assert "prepared 2 clip(s), skipped 0 already done, 1 failed" in capsys.readouterr().err
    assert not leftover.exists()
    assert not list(dataset.rglob("*.partial"))
    for path in (first, second):
        assert load_file(str(path))["crops_64"].shape == (75, 64, 64, 3)


def test_changed_settings_redo_the_clips(prepared, tmp_path, capsys, run_prepare):
    dataset = tmp_path / "dataset"
    shutil.copytree(prepared.dataset, dataset)
    argv = [str(prepared.videos), "-o", str(dataset), "--codebook", str(prepared.codebook), "-q", "--exclusion-frames", "12"]
    assert run_prepare(*argv) == 0
    assert "prepared 2 clip(s), skipped 0" in capsys.readouterr().err
    manifest = read_manifest(dataset)
    assert manifest["settings"]["exclusion_frames"] == 12
    ref = load_file(str(dataset / manifest["clips"][0]["shard"]))["reference"]
    assert (np.abs(ref - np.arange(75)) > 12).all()


def test_codebook_frontend_mismatch_is_an_error_before_any_clip(prepared, tmp_path, run_prepare):
    out = tmp_path / "never"
    args = [str(prepared.videos), "-o", str(out), "--codebook", str(prepared.codebook), "--units", "hubert"]
    with pytest.raises(InvalidArgumentError) as info:
        run_prepare(*args)
    assert "mel" in info.value.message and info.value.hint and "--units mel" in info.value.hint
    assert not out.exists()


def test_folder_without_videos_is_an_error(tmp_path, prepared, run_prepare):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError):
        run_prepare(str(tmp_path / "empty"), "-o", str(tmp_path / "ds"), "--codebook", str(prepared.codebook), "-q")


def test_concatenated_clips_keep_references_and_windows_inside_each_shot(prepared, tmp_path, run_prepare, capsys):
    """Two GRID clips joined with a hard cut (55 + 55 frames), plus a clip without audio."""
    from fractions import Fraction

    from edidub_engine.media import ClipWriter, load_audio_for_frames, probe_video, read_frames
    from edidub_engine.training import LipSyncWindowDataset, SuperResWindowDataset

    videos = tmp_path / "videos"
    videos.mkdir()
    sources = [prepared.videos / name for name in GRID_CLIPS]
    frames = np.concatenate([read_frames(p, 0, 55) for p in sources])
    audio = np.concatenate([load_audio_for_frames(probe_video(p), 0, 55) for p in sources])
    with ClipWriter(videos / "joined.mp4", width=360, height=288, rate=Fraction(25), codec="h264", audio=audio) as writer:
        for frame in frames:
            writer.write(frame)
    footage = Path(__file__).resolve().parents[2].parent / "shared" / "footage" / "styletalk_hand_near_chin.mp4"
    if footage.is_file():
        shutil.copy2(footage, videos / "silent.mp4")
    dataset = tmp_path / "dataset"
    assert run_prepare(str(videos), "-o", str(dataset), "--codebook", str(prepared.codebook), "-q") == 0
    manifest = read_manifest(dataset)
    (clip,) = manifest["clips"]
    assert clip["shots"] == [[0, 55], [55, 110]]
    assert clip["reference_runs"] == [[0, 55], [55, 110]]
    shard = load_file(str(dataset / clip["shard"]))
    shot, ref = shard["shot"], shard["reference"]
    assert (shot[:55] == 0).all() and (shot[55:] == 1).all()
    assert (ref >= 0).all() and (shot[ref] == shot).all()
    assert (np.abs(ref - np.arange(110)) > 24).all()
    if footage.is_file():
        assert [(f["name"], f["code"]) for f in manifest["failed"]] == [("silent.mp4", "BAD_MEDIA")]
        assert "no audio" in manifest["failed"][0]["reason"]
    # Windows never straddle the cut.
    lsd = LipSyncWindowDataset(dataset)
    assert len(lsd) == 2 * (55 - 25 + 1)
    assert all(not (s < 55 < e) for _, s, e in (lsd.window(i) for i in range(len(lsd))))
    srd = SuperResWindowDataset(dataset)
    assert all(not (s < 55 < e) for _, s, e in (srd.window(i) for i in range(len(srd))))


def test_too_short_clips_are_listed_and_a_run_with_no_usable_clip_is_an_error(prepared, tmp_path, run_prepare):
    dataset = tmp_path / "dataset"
    with pytest.raises(MediaDecodeError, match="no clip"):
        run_prepare(str(prepared.videos), "-o", str(dataset), "--codebook", str(prepared.codebook), "-q", "--min-frames", "100")
    failed = {f["name"]: f for f in read_manifest(dataset)["failed"]}
    assert set(failed) == {*GRID_CLIPS, "notes.mp4"}
    assert "too short" in failed[GRID_CLIPS[0]]["reason"] and failed[GRID_CLIPS[0]]["code"] == "INVALID_ARG"
