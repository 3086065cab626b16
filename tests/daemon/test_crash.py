"""kill -9 mid-job: the restarted daemon re-queues the job and finishes it with the same frames; no partial output
is ever visible under the final name."""

from __future__ import annotations

import threading
import time

import numpy as np

from edidub_engine.client import Client
from edidub_engine.daemon.protocol import JobState
from edidub_engine.shot import ShotRequest

from daemon_helpers import shot, spawn_daemon
from runners import FOOTAGE, CopyRunner


def test_kill_9_mid_job_then_restart_finishes_it(tmp_path, clip, audio, out_dir):
    from edidub_engine.media import read_frames

    store = tmp_path / "jobs.sqlite3"
    request = shot(clip, audio, out_dir, start=10, end=40, shot_id="crash")
    final = out_dir / "grid_bbaf2n_crash_dub.mkv"
    sightings: list[int] = []
    watching = threading.Event()
    watching.set()

    def watch() -> None:  # every ~2 ms: if the final name exists, it must already be the complete file
        while watching.is_set():
            try:
                sightings.append(final.stat().st_size)
            except FileNotFoundError:
                pass
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    proc, ready = spawn_daemon(store, [FOOTAGE, out_dir], frame_delay_s=0.1)
    try:
        with Client(ready["requests"], timeout_s=10) as client:
            (job_id,) = client.submit(request)
            deadline = time.monotonic() + 60
            while client.status(job_id).frames_done < 8:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait(30)
        assert not final.exists()
        assert list(out_dir.glob(".grid_bbaf2n_crash_dub.partial-*.mkv")), "the killed writer's temp file should be there"

        proc, ready = spawn_daemon(store, [FOOTAGE, out_dir])
        with Client(ready["requests"], timeout_s=10) as client:
            rendered = client.wait(job_id, timeout_s=120)
            view = client.status(job_id)
    finally:
        proc.kill()
        proc.wait(30)
        watching.clear()
        watcher.join()
    assert view.state is JobState.DONE and view.attempts == 2
    assert rendered.path == str(final)
    assert sightings and set(sightings) == {final.stat().st_size}  # only ever the finished file
    assert sorted(p.name for p in out_dir.iterdir()) == [final.name]  # the stale temp file was removed on restart

    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    uninterrupted = CopyRunner()(
        ShotRequest.from_dict({**request, "output": {"dir": str(reference_dir), "codec": "ffv1", "name": "ref"}}),
        progress=lambda *a: None,
        should_cancel=lambda: False,
    )
    got, want = read_frames(final, 0, 30), read_frames(uninterrupted.path, 0, 30)
    assert np.array_equal(got, want)
    assert np.array_equal(got, read_frames(clip, 10, 40))  # FFV1 is lossless: the source range itself
