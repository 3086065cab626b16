"""``submit_timeline`` refusals and bookkeeping against a real daemon, with a runner that renders nothing
(it waits until cancelled): media roots apply to every shot, a missing file under a root is a skipped clip,
``result`` for a batch is BUSY until every job ended, and bad content is a clear INVALID_ARG."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import opentimelineio as otio
import pytest

from batch_helpers import CLIPS, FOOTAGE, OPTIONS, build_cut

from edidub_engine.client import Client
from edidub_engine.daemon import schema
from edidub_engine.daemon.protocol import BusyError, ForbiddenError, JobNotFoundError, JobState
from edidub_engine.daemon.server import Server, ServerSettings
from edidub_engine.errors import CancelledError, InvalidArgumentError


def _waiting_runner(device):
    def run(request, *, progress, should_cancel):
        while not should_cancel():
            time.sleep(0.02)
        raise CancelledError(f"shot {request.shot_id!r} cancelled")

    return run


@pytest.fixture()
def daemon(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for name, _, _ in CLIPS + [("grid_lbbc2a.mpg", 0, 0), ("dub_fr_french1.wav", 0, 0)]:
        if not (FOOTAGE / name).is_file():
            pytest.skip(f"shared footage {FOOTAGE / name} is absent")
        shutil.copy(FOOTAGE / name, media / name)
    (media / "out").mkdir()
    settings = ServerSettings(store_path=tmp_path / "jobs.sqlite3", media_roots=(media,), request_endpoint="tcp://127.0.0.1:*",
                              events_endpoint="tcp://127.0.0.1:*", shutdown_timeout_s=5)
    with Server(settings, runner_factory=_waiting_runner) as server, Client(server.request_endpoint, timeout_s=20) as client:
        yield client, media


def _cut_in(folder) -> otio.schema.Timeline:
    tl = build_cut()
    for clip in tl.find_clips():
        ref = clip.media_reference
        ref.target_url = str(folder / ref.target_url.rsplit("/", 1)[-1])
    return tl


def _matches_schema(msg_type: str, content: dict) -> None:
    """The content of a message against its generated JSON Schema (docs/schema/<msg_type>.json)."""
    doc = schema.generate()[f"{msg_type}.json"]
    schema.validate(content, doc["properties"]["content"], root=doc)


def test_submit_timeline_bookkeeping_and_refusals(daemon, tmp_path):
    client, media = daemon
    assert "submit_timeline" in client.hello().capabilities
    tl = _cut_in(media)
    (media / "grid_lbax4n.mpg").unlink()  # the third shot's media went offline (under a root): skipped, listed
    batch = client.submit_timeline(tl, dub_track="FR dialogue", picture_tracks="V1", language="FR", output_dir=media / "out", codec="ffv1",
                                   options=OPTIONS)
    (media / "out2").mkdir()
    raw = client.request("submit_timeline", {"timeline": otio.adapters.write_to_string(tl, adapter_name="otio_json"),
                                             "dub_track": "FR dialogue", "output_dir": str(media / "out2"), "codec": "h264"})
    _matches_schema("submit_timeline_reply", raw)
    for job_id in raw["job_ids"]:
        client.cancel(job_id)
    assert batch.batch_id.startswith("batch-") and len(batch.job_ids) == 2 and batch.shot_ids == ["V1_000_grid_bbaf2n", "V1_001_grid_brbk7n"]
    assert sorted(s["reason"] for s in batch.skipped) == ["missing_media", "no_dub"]
    with pytest.raises(BusyError, match="not finished"):
        client.timeline_result(batch.batch_id)
    # the same shots again: their outputs are already claimed by queued jobs (all or nothing)
    with pytest.raises(Exception) as clash:
        client.submit_timeline(tl, dub_track="FR dialogue", output_dir=media / "out", codec="ffv1")
    assert clash.value.code == "OUTPUT_EXISTS"
    for job_id in batch.job_ids:
        client.cancel(job_id)
    deadline = time.monotonic() + 20
    while any(not client.status(j).state.terminal for j in batch.job_ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    request = {"timeline": otio.adapters.write_to_string(tl, adapter_name="otio_json"), "dub_track": "FR dialogue"}
    _matches_schema("submit_timeline_request", request)
    _matches_schema("result_request", {"batch_id": batch.batch_id})
    _matches_schema("result_reply", client.request("result", {"batch_id": batch.batch_id}))
    assert not schema.differences(), "docs/schema is stale: run python -m edidub_engine.daemon.schema"
    result = client.timeline_result(batch.batch_id)
    assert result.dubbed == [] and [f["state"] for f in result.failed] == [JobState.CANCELLED.value] * 2
    undubbed = result.otio_timeline()
    assert [t.name for t in undubbed.tracks] == ["V1", "FR dialogue"]  # nothing dubbed: no dub track

    # media outside the roots: refused whole, naming the shot
    outside = build_cut()
    with pytest.raises(ForbiddenError) as forbidden:
        client.submit_timeline(outside, dub_track="FR dialogue", output_dir=media / "out")
    assert forbidden.value.details.get("shot_id") == "V1_000_grid_bbaf2n"
    # not a timeline, a wrong track, both ids, unknown batch
    with pytest.raises(InvalidArgumentError, match="not OTIO JSON"):
        client.submit_timeline("{not json", dub_track="FR dialogue")
    with pytest.raises(InvalidArgumentError, match="no audio track|no clip to dub|dub"):
        client.submit_timeline(tl, dub_track="DE dialogue", output_dir=media / "out")
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        client.request("result", {"job_id": batch.job_ids[0], "batch_id": batch.batch_id})
    with pytest.raises(JobNotFoundError):
        client.timeline_result("batch-nope")


def _copy_runner(device):
    """Copies the shot's source range to its output (the production runner's contract, no model)."""
    from edidub_engine.media import ClipWriter, Codec, iter_frames, probe_video
    from edidub_engine.shot import RenderedClip

    def run(request, *, progress, should_cancel):
        info = probe_video(request.source.path)
        start, end = request.source.start_frame, request.source.end_frame
        codec = Codec(request.output.codec)
        with ClipWriter(Path(request.output.dir) / f"{request.output.name}{codec.extension}", width=info.width, height=info.height,
                        rate=info.rate, codec=codec, timecode=info.timecode_at(start)) as writer:
            for done, (_, frame) in enumerate(iter_frames(info, start, end)):
                writer.write(frame)
                progress("copy", done + 1, end - start)
            path = writer.close()
        return RenderedClip(shot_id=request.shot_id, path=str(path), start_frame=start, end_frame=end, rate=info.rate,
                            timecode=info.timecode_at(start), frames_edited=0, model={"name": "copy"}, record=request.record)

    return run


def test_edidub_batch_through_a_running_daemon_records_job_ids_and_resumes(tmp_path):
    """``edidub batch --daemon``: the shots go to the daemon, the state file records their job ids, the timeline is written."""
    from edidub_engine.batch import BatchConfig, run_batch, state_path_for
    from edidub_engine.shot import DubOptions

    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(build_cut(), str(cut))  # build_cut skips the test when the footage is absent
    settings = ServerSettings(store_path=tmp_path / "jobs.sqlite3", media_roots=(FOOTAGE, tmp_path), request_endpoint="tcp://127.0.0.1:*",
                              events_endpoint="tcp://127.0.0.1:*", shutdown_timeout_s=5)
    with Server(settings, runner_factory=_copy_runner) as server:
        config = BatchConfig(timeline=cut, dub_track="FR dialogue", language="DE", codec="ffv1", options=DubOptions(**OPTIONS),
                             daemon=server.request_endpoint, mode="daemon", quiet=True)
        stop = threading.Event()

        def interrupt(shot_id, clip):
            if not stop.is_set():
                stop.set()
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_batch(config, on_shot_done=interrupt)
        state = json.loads(state_path_for(tmp_path / "cut.dubbed.otio").read_text())
        assert len(state["shots"]) == 3 and all(e.get("job_id") for e in state["shots"].values())  # all three were submitted
        result = run_batch(config)  # picks up the daemon's jobs: nothing is submitted twice
        with Client(server.request_endpoint) as client:
            assert len(client.list_jobs()) == 3
    assert result.mode == "daemon" and result.complete and len(result.summary.reused) == 1
    written = otio.adapters.read_from_file(str(result.output))
    assert [t.name for t in written.tracks] == ["V1", "EdiDub DE", "FR dialogue"]
    assert [c.range_in_parent().start_time.value for c in written.tracks[1].find_clips()] == [0, 16, 32]


def test_one_clip_with_an_unusable_path_or_range_is_skipped_not_the_timeline(daemon):
    """A Windows path (a cut from another machine) and a clip past its media's end are listed as skipped, with
    the reason; the other clips are queued. Before, the whole timeline was refused for the one path."""
    client, media = daemon
    tl = _cut_in(media)
    clips = list(tl.tracks[0].find_clips())
    clips[0].media_reference.target_url = "C:\\Projects\\cut\\grid_bbaf2n.mpg"
    clips[1].media_reference.available_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(400, 25))
    clips[1].source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(300, 25), otio.opentime.RationalTime(16, 25))
    batch = client.submit_timeline(tl, dub_track="FR dialogue", output_dir=media / "out", codec="ffv1", options=OPTIONS)
    for job_id in batch.job_ids:
        client.cancel(job_id)
    assert batch.shot_ids == ["V1_002_grid_lbax4n"]
    reasons = {s["clip"]: (s["reason"], s["message"]) for s in batch.skipped}
    assert reasons["grid_bbaf2n.mpg"][0] == "missing_media" and "not an absolute path" in reasons["grid_bbaf2n.mpg"][1]
    assert reasons["grid_brbk7n.mpg"][0] == "outside_media" and "go past the end of grid_brbk7n.mpg" in reasons["grid_brbk7n.mpg"][1]
