"""Jobs: priorities, cancellation mid-job, graceful restart, and 4 clients x 100 jobs with status latency measured."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from edidub_engine.client import Client
from edidub_engine.daemon.protocol import JobState
from edidub_engine.errors import CancelledError

from daemon_helpers import shot, spawn_daemon
from runners import FOOTAGE, CopyRunner


def _wait_until(predicate, timeout_s: float = 60, every_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError("condition not met in time")


def test_interactive_jumps_ahead_of_queued_batch(make_daemon, clip, audio, out_dir):
    daemon = make_daemon(CopyRunner(frame_delay_s=0.05))
    with Client(daemon.request_endpoint) as client:
        (blocker,) = client.submit(shot(clip, audio, out_dir, end=8))
        _wait_until(lambda: client.status(blocker).state is JobState.RUNNING)
        batch = client.submit([shot(clip, audio, out_dir, end=1) for _ in range(3)])
        interactive = client.submit([shot(clip, audio, out_dir, end=1) for _ in range(2)], priority="interactive")
        for job_id in [blocker, *batch, *interactive]:
            client.wait(job_id, timeout_s=60)
        started = sorted(client.list_jobs(), key=lambda j: j.started_at)
    assert [j.job_id for j in started] == [blocker, *interactive, *batch]


def test_cancel_mid_job_stops_within_one_step_and_leaves_no_output(make_daemon, clip, audio, out_dir):
    runner = CopyRunner(frame_delay_s=0.1)
    daemon = make_daemon(runner)
    with Client(daemon.request_endpoint) as client:
        (job_id,) = client.submit(shot(clip, audio, out_dir, end=75))
        _wait_until(lambda: client.status(job_id).frames_done >= 3)
        done_at_cancel = client.status(job_id).frames_done
        asked = time.monotonic()
        reply = client.cancel(job_id)
        assert reply.state is JobState.RUNNING and reply.cancel_requested
        events = list(client.events(job_id, timeout_s=10, poll_s=0.05))
        stopped_after_s = time.monotonic() - asked
        final = client.status(job_id)
        with pytest.raises(CancelledError):
            client.result(job_id)
    assert events[-1].state is JobState.CANCELLED and final.state is JobState.CANCELLED
    assert final.frames_done - done_at_cancel <= 1, (done_at_cancel, final.frames_done)  # at most the step in flight
    assert stopped_after_s < 1.0
    assert list(out_dir.iterdir()) == []  # no output, no temporary file


def test_cancel_a_queued_job_is_immediate(make_daemon, clip, audio, out_dir):
    daemon = make_daemon(CopyRunner(frame_delay_s=0.05))
    with Client(daemon.request_endpoint) as client:
        first, second = client.submit([shot(clip, audio, out_dir, end=10), shot(clip, audio, out_dir, end=2)])
        reply = client.cancel(second)
        assert reply.state is JobState.CANCELLED
        client.wait(first, timeout_s=30)
    assert len(list(out_dir.iterdir())) == 1


def test_shutdown_requeues_the_running_job_and_a_restart_finishes_it(make_daemon, clip, audio, out_dir):
    daemon = make_daemon(CopyRunner(frame_delay_s=0.05))
    with Client(daemon.request_endpoint) as client:
        (job_id,) = client.submit(shot(clip, audio, out_dir, end=40))
        _wait_until(lambda: client.status(job_id).frames_done >= 2)
        client.shutdown()
    assert daemon.wait(15)
    assert list(out_dir.iterdir()) == []
    again = make_daemon(CopyRunner())
    with Client(again.request_endpoint) as client:
        clip_out = client.wait(job_id, timeout_s=60)
        assert client.status(job_id).attempts == 2
    assert clip_out.end_frame == 40


def test_four_clients_a_hundred_jobs_each_with_status_latency(tmp_path, clip, audio, out_dir):
    """Load: 400 one-frame jobs from 4 concurrent clients on a subprocess daemon; status p99 measured meanwhile."""
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, out_dir])
    try:
        ids: dict[int, list[str]] = {}
        latencies: list[float] = []
        submitting_done = threading.Event()
        all_done = threading.Event()
        errors: list[BaseException] = []

        def submitter(n: int) -> None:
            try:
                with Client(ready["requests"], timeout_s=30) as client:
                    priority = "interactive" if n < 2 else "batch"
                    ids[n] = [client.submit(shot(clip, audio, out_dir, end=1, shot_id=f"c{n}_{i:03d}"), priority=priority)[0] for i in range(100)]
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        def prober() -> None:
            with Client(ready["requests"], timeout_s=5) as client:
                while not all_done.is_set():
                    if len(ids) == 4:
                        job = ids[3][-1]
                    else:
                        time.sleep(0.005)
                        jobs = client.list_jobs(limit=1)
                        if not jobs:
                            continue
                        job = jobs[0].job_id
                    started = time.perf_counter()
                    client.status(job)
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.005)

        threads = [threading.Thread(target=submitter, args=(n,)) for n in range(4)]
        probe = threading.Thread(target=prober)
        started_at = time.monotonic()
        probe.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with Client(ready["requests"], timeout_s=30) as client:
            _wait_until(lambda: all(j.state.terminal for j in client.list_jobs(limit=1000)), timeout_s=180, every_s=0.25)
            all_done.set()
            probe.join()
            jobs = client.list_jobs(limit=1000)
        elapsed = time.monotonic() - started_at
    finally:
        proc.terminate()
        proc.wait(30)
    assert len(jobs) == 400 and all(j.state is JobState.DONE for j in jobs), {j.state for j in jobs}
    assert len(list(out_dir.glob("*.mkv"))) == 400
    # priority: no batch job started while an interactive job was waiting; FIFO within a priority
    interactive = [j for j in jobs if j.priority.value == "interactive"]
    batch = [j for j in jobs if j.priority.value == "batch"]
    for b in batch:
        assert not any(a.submitted_at < b.started_at < a.started_at for a in interactive), b
    for group in (interactive, batch):
        by_submit = sorted(group, key=lambda j: (j.submitted_at, j.job_id))
        assert [j.started_at for j in by_submit] == sorted(j.started_at for j in by_submit)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nload: 400 jobs in {elapsed:.1f} s; status round trips {len(latencies)}, "
          f"median {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {latencies[-1] * 1000:.2f} ms")
    assert len(latencies) >= 200
    # A status call never waits for a render (that would take seconds); the exact figure depends on
    # the machine and what else runs, so it is printed above, not held to a few milliseconds here.
    assert p99 < 0.25


def test_a_finished_job_reads_as_finished(make_daemon, clip, audio, out_dir):
    """Issue 18: a done job said frames_done 0; now status and the done event both say every frame was rendered."""
    daemon = make_daemon(CopyRunner(frame_delay_s=0.01))
    with Client(daemon.request_endpoint) as client:
        (job_id,) = client.submit(shot(clip, audio, out_dir, end=6))
        client.wait(job_id, timeout_s=60)
        status = client.status(job_id)
    assert status.state is JobState.DONE and status.frames_done == status.frames_total == 6 and status.stage == "render"


def test_a_worker_outlives_an_error_outside_the_render_and_says_so(make_daemon, clip, audio, out_dir):
    """Issue 18: a worker thread that died was only logged, and jobs queued behind it never ran."""
    daemon = make_daemon(CopyRunner())
    store = daemon._workers[0]._shared.store
    real_finish, calls = store.finish, []

    def finish_failing_once(*args, **kwargs):  # the store refuses the first 'done' write (a locked disk, say)
        calls.append(args)
        if len(calls) == 1:
            raise OSError("database disk image is malformed")
        return real_finish(*args, **kwargs)

    store.finish = finish_failing_once
    with Client(daemon.request_endpoint) as client:
        (first,) = client.submit(shot(clip, audio, out_dir, end=2))
        from edidub_engine.daemon.protocol import InternalError

        with pytest.raises(InternalError, match="failed outside the render"):
            client.wait(first, timeout_s=60)
        assert client.status(first).state is JobState.FAILED
        (second,) = client.submit(shot(clip, audio, out_dir, end=2))  # the same worker takes the next job
        client.wait(second, timeout_s=60)
        assert client.status(second).state is JobState.DONE
        (health,) = client.hello().workers
    assert health["alive"] and health["ready"] and health["restarts"] == 1 and "malformed" in health["last_error"]
