"""``edidub batch`` end to end on a three-shot cut of ../shared/footage with a tiny random bundle (real renderer,
real files): the dubbed clips land at the originals' record frames; an interrupted batch resumes without rendering
its finished shot again; a local Ray cluster and the daemon's ``submit_timeline`` give the same timeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest

from batch_helpers import CLIPS, GST, OPTIONS, build_cut, signature  # starter_bundle: tests/conftest.py

from edidub_engine.batch import BatchConfig, run_batch, state_path_for
from edidub_engine.errors import OutputExistsError
from edidub_engine.media import probe_video
from edidub_engine.shot import DubOptions

REPO = Path(__file__).resolve().parents[2]
SHOT_IDS = [f"V1_{i:03d}_{name.split('.')[0]}" for i, (name, _, _) in enumerate(CLIPS)]


def _config(tmp: Path, bundle: Path, cache: Path, **kw) -> BatchConfig:
    return BatchConfig(timeline=tmp / "cut.otio", dub_track="FR dialogue", picture_tracks=["V1"], language="FR", models=str(bundle),
                       codec="ffv1", options=DubOptions(**OPTIONS), cache_dir=cache, quiet=True, **kw)


def _write_cut(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(build_cut(), str(path))
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("inversions")


@pytest.fixture(scope="module")
def local_run(starter_bundle, cache_dir, tmp_path_factory):
    """Interrupt an in-process batch after its first shot, then finish it with the CLI (a new process)."""
    tmp = tmp_path_factory.mktemp("local")
    _write_cut(tmp)
    rendered: list[str] = []

    def stop_after_first(shot_id, clip):
        rendered.append(shot_id)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(_config(tmp, starter_bundle, cache_dir, mode="local"), on_shot_done=stop_after_first)
    output = tmp / "cut.dubbed.otio"
    state = json.loads(state_path_for(output).read_text())
    first = state["shots"][SHOT_IDS[0]]["clip"]["path"]
    before = os.stat(first)
    cli = [sys.executable, "-m", "edidub_engine.batch", str(tmp / "cut.otio"), "--dub-track", "FR dialogue", "--picture-track", "V1",
           "--language", "FR", "--models", str(starter_bundle), "--codec", "ffv1", "--no-daemon", "--cache-dir", str(cache_dir),
           "--steps", str(OPTIONS["steps"]), "--inversion-steps", str(OPTIONS["inversion_steps"]), "-q"]
    proc = subprocess.run(cli, cwd=tmp, capture_output=True, text=True, timeout=600)
    again = subprocess.run(cli, cwd=tmp, capture_output=True, text=True, timeout=600)
    return {
        "tmp": tmp, "output": output, "first_run": rendered, "state_after_interrupt": state, "first_file": first,
        "first_stat": before, "proc": proc, "again": again,
    }


def test_batch_puts_three_dubbed_clips_at_the_original_record_frames(local_run):
    proc = local_run["proc"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    tl = otio.adapters.read_from_file(str(local_run["output"]))
    names = [t.name for t in tl.tracks]
    assert names == ["V1", "EdiDub FR", "FR dialogue"]  # the dub track sits right above its picture track
    original = build_cut()
    for name in ("V1", "FR dialogue"):  # every other track is untouched
        assert tl.tracks[names.index(name)].to_json_string() == next(t for t in original.tracks if t.name == name).to_json_string()
    dub = tl.tracks[1]
    clips = list(dub.find_clips())
    assert len(clips) == 3
    record = 0
    for clip, (name, src_start, frames), shot_id in zip(clips, CLIPS, SHOT_IDS):
        rng = clip.range_in_parent()
        # the clip covers its original's cut exactly: frames [GST + record, GST + record + 16)
        assert (tl.global_start_time + rng.start_time).value == GST + record and rng.duration.value == frames
        meta = clip.metadata["edidub"]
        assert meta["shot_id"] == shot_id and meta["record"]["source_start_frame"] == src_start
        info = probe_video(clip.media_reference.target_url)
        assert info.frame_count == frames and Path(clip.media_reference.target_url).parent.name == "cut_dubbed_media"
        assert clip.source_range.duration.value == frames
        record += frames
    # the summary: three dubbed, the fourth clip (no dub line under it) skipped with its reason
    assert "dubbed 3 shot(s) (1 from an earlier run)" in proc.stdout
    # positions as the timeline's timecodes (01:00:00:00 at 25 fps; the fourth clip sits at record frames 48-55)
    assert "skipped V1/grid_lbbc2a.mpg, record in 01:00:01:23, out 01:00:02:06 (8 frames): no_dub" in proc.stdout
    summary = json.loads(Path(str(local_run["output"]) + ".summary.json").read_text())
    assert summary["dubbed"] == SHOT_IDS and [s["reason"] for s in summary["skipped"]] == ["no_dub"]
    for shot_id, clip in zip(SHOT_IDS, clips):  # every dubbed shot is listed with where its media went
        assert summary["media"][shot_id] == clip.media_reference.target_url
        assert f"dubbed {shot_id} → {clip.media_reference.target_url}" in proc.stdout


def test_a_batch_that_dubs_nothing_says_so_and_fails(starter_bundle, tmp_path):
    cut = build_cut()
    next(t for t in cut.tracks if t.name == "FR dialogue").clear()  # the dub track holds no line
    otio.adapters.write_to_file(cut, str(tmp_path / "cut.otio"))
    proc = subprocess.run([sys.executable, "-m", "edidub_engine.batch", str(tmp_path / "cut.otio"), "--dub-track", "FR dialogue",
                           "--picture-track", "V1", "--models", str(starter_bundle), "--no-daemon", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "nothing was dubbed" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "dubbed 0 shot(s)" in proc.stdout and "rendered in this process" not in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otio"]  # no timeline, no state file, no media folder


def test_interrupted_batch_resumes_without_rendering_the_first_shot_again(local_run):
    assert local_run["first_run"] == SHOT_IDS[:1]
    assert set(local_run["state_after_interrupt"]["shots"]) == {SHOT_IDS[0]}
    assert not local_run["output"].exists() or local_run["proc"].returncode == 0
    after = os.stat(local_run["first_file"])
    before = local_run["first_stat"]
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    state = json.loads(state_path_for(local_run["output"]).read_text())
    assert state["summary"]["reused"] == [SHOT_IDS[0]]
    assert state["summary"]["dubbed"] == SHOT_IDS
    assert state["batch_id"] == local_run["state_after_interrupt"]["batch_id"]
    # a third run finds the dubbed timeline written and refuses to overwrite it
    again = local_run["again"]
    assert again.returncode == OutputExistsError.exit_status and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_ray_batch_gives_the_same_timeline(local_run, starter_bundle, cache_dir, tmp_path):
    pytest.importorskip("ray")
    _write_cut(tmp_path)
    result = run_batch(_config(tmp_path, starter_bundle, cache_dir, mode="ray", ray="local", ray_actors=2))
    assert result.mode == "ray" and result.complete
    local = otio.adapters.read_from_file(str(local_run["output"]))
    ray_tl = otio.adapters.read_from_file(str(result.output))
    assert signature(ray_tl) == signature(local)


def test_submit_timeline_through_the_client_gives_the_same_timeline(local_run, starter_bundle, cache_dir, tmp_path):
    from edidub_engine.cache import InversionCache
    from edidub_engine.client import Client
    from edidub_engine.daemon.server import Server, ServerSettings
    from edidub_engine.render import LoadedModels, ShotRenderer

    from batch_helpers import FOOTAGE

    def factory(device):
        return ShotRenderer(LoadedModels.load(starter_bundle), cache=InversionCache(cache_dir)).dub_shot

    out_dir = tmp_path / "daemon_media"
    out_dir.mkdir()
    settings = ServerSettings(store_path=tmp_path / "jobs.sqlite3", media_roots=(FOOTAGE, tmp_path),
                              request_endpoint="tcp://127.0.0.1:*", events_endpoint="tcp://127.0.0.1:*")
    text = (local_run["tmp"] / "cut.otio").read_text()
    with Server(settings, runner_factory=factory) as server, Client(server.request_endpoint, timeout_s=30) as client:
        batch = client.submit_timeline(text, dub_track="FR dialogue", picture_tracks=["V1"], language="FR", output_dir=out_dir,
                                       codec="ffv1", options=OPTIONS)
        assert batch.shot_ids == SHOT_IDS and len(batch.job_ids) == 3
        assert [s["reason"] for s in batch.skipped] == ["no_dub"]
        seen = set()
        result = client.wait_timeline(batch, progress=lambda shot_id, ev: seen.add(shot_id), timeout_s=600)
    assert result.failed == [] and result.dubbed == SHOT_IDS and seen == set(SHOT_IDS)
    daemon_tl = result.otio_timeline()
    local = otio.adapters.read_from_file(str(local_run["output"]))
    assert signature(daemon_tl) == signature(local)
    assert {c.metadata["edidub"]["job_id"] for c in daemon_tl.tracks[1].find_clips()} == {batch.batch_id}


def test_a_batch_output_opens_in_the_review_page(local_run):
    """`edidub review CUT.dubbed.otio` builds the review set beside it: each shot's original range (as a proxy) and its dub."""
    from edidub_engine.evaluation.review import ReviewServer
    from edidub_engine.evaluation.review.manifest import review_set_for_batch

    folder = review_set_for_batch(local_run["output"])
    assert folder == local_run["tmp"] / "cut.dubbed_review"
    with ReviewServer(folder, port=0) as server:
        shots = server.shots()["shots"]
        assert [s["shot_id"] for s in shots] == SHOT_IDS and all(s["proxy"] for s in shots)
        for i, (name, src_start, frames) in enumerate(CLIPS):
            assert shots[i]["start_frame"] == src_start and shots[i]["end_frame"] == src_start + frames
            assert probe_video(server.media_path(i, "original")).frame_count == frames  # the original's range alone
            assert server.media_path(i, "dubbed") == Path(shots[i]["dubbed"])
