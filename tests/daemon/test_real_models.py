"""The real `edidub serve` with real model bundles (no test runner): the shipped starter and a second, trained-looking bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edidub_engine.client import Client
from edidub_engine.daemon.protocol import JobState
from edidub_engine.errors import EdidubError
from edidub_engine.media import probe_video
from edidub_engine.models.bundle import DEFAULT_BUNDLE, SHIPPED_DIR

REPO = Path(__file__).resolve().parents[2]


def _second_bundle(folder: Path) -> Path:
    """A bundle as `edidub train bundle` leaves it in a studio's model folder, under its own name and version."""
    bundle = folder / "studio-fr"
    shutil.copytree(SHIPPED_DIR / DEFAULT_BUNDLE, bundle)
    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    meta.update(name="studio-fr", version="3")
    (bundle / "bundle.json").write_text(json.dumps(meta), encoding="utf-8")
    for network in ("lsd", "srd"):  # few steps: this is a test of the serving path, not of the picture
        path = bundle / network / "sampling.json"
        values = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**values, "steps": 2, **({"inversion_steps": 2} if network == "lsd" else {})}), encoding="utf-8")
    return bundle


@pytest.fixture
def real_daemon(tmp_path, footage_path):
    models, media = tmp_path / "models", tmp_path / "media"
    models.mkdir(), media.mkdir()
    _second_bundle(models)
    for name in ("grid_bbaf2n.mpg", "dub_fr_french1.wav"):
        shutil.copy(footage_path(name), media / name)  # a symlink out of the root would be refused (FORBIDDEN)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "EDIDUB_MODELS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "edidub_engine", "serve", "--port", "0", "--store", str(tmp_path / "jobs.sqlite3"),
                             "--device", "cpu", "--media-root", str(media), "--models", str(models), "-q"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(30)
        raise RuntimeError(f"edidub serve did not start: {proc.stderr.read()}")
    yield json.loads(line), media
    proc.terminate()
    proc.wait(60)


def _shot(media: Path, shot_id: str, **options) -> dict:
    return {"shot_id": shot_id, "source": {"path": str(media / "grid_bbaf2n.mpg"), "start_frame": 0, "end_frame": 8},
            "dub_audio": [{"path": str(media / "dub_fr_french1.wav")}], "output": {"dir": str(media), "codec": "ffv1"},
            "options": {"steps": 2, "inversion_steps": 2, **options}}


def test_the_daemon_serves_every_bundle_and_dubs_with_the_one_named(real_daemon):
    ready, media = real_daemon
    with Client(ready["requests"], timeout_s=120) as client:
        deadline = time.monotonic() + 300
        while not (hello := client.hello()).workers[0]["ready"]:  # the worker loads the default bundle and checks its fast path
            assert time.monotonic() < deadline and hello.workers[0]["alive"], hello.workers
            time.sleep(0.5)
        names = [m.name for m in hello.models]
        assert names[0] == DEFAULT_BUNDLE and "studio-fr" in names  # the default first, then every bundle found
        assert hello.workers and hello.workers[0]["ready"]
        studio = next(m for m in hello.models if m.name == "studio-fr")
        assert studio.version == "3" and studio.path.endswith("studio-fr") and not studio.details["default"]
        with pytest.raises(EdidubError, match="not served"):  # refused at submit, naming what is served
            client.submit(_shot(media, "nope", model="no-such-model"))
        default_job, studio_job = client.submit([_shot(media, "a"), _shot(media, "b", model="studio-fr")])
        results = {job: client.wait(job, timeout_s=600) for job in (default_job, studio_job)}
        assert client.status(studio_job).state is JobState.DONE
    assert results[default_job].model["name"] == DEFAULT_BUNDLE
    assert results[studio_job].model["name"] == "studio-fr" and results[studio_job].model["version"] == "3"
    for clip in results.values():
        assert probe_video(clip.path).frame_count == 8 and clip.frames_edited == 8


def _ready(client: Client):
    deadline = time.monotonic() + 300
    while not (hello := client.hello()).workers[0]["ready"]:
        assert time.monotonic() < deadline and hello.workers[0]["alive"], hello.workers
        time.sleep(0.5)
    return hello


def test_an_adapt_job_makes_a_bundle_the_daemon_then_serves_and_a_cancelled_one_leaves_nothing(real_daemon, tmp_path):
    ready, media = real_daemon
    take = (str(media / "grid_bbaf2n.mpg"), 0, 75)
    with Client(ready["requests"], timeout_s=120) as client:
        assert "adapt" in _ready(client).capabilities
        with pytest.raises(EdidubError, match="already served"):
            client.adapt("studio-fr", [take], steps=2)
        with pytest.raises(EdidubError, match="media roots"):
            client.adapt("anna", [("/etc/hostname", 0, None)], steps=2)
        with pytest.raises(EdidubError, match="40 frames of grid_bbaf2n.mpg are fewer than the 75"):  # refused at once, not at run time
            client.adapt("anna", [(take[0], 0, 40)], steps=2)
        job, path = client.adapt("anna", [take], base="studio-fr", steps=2, validate_every=2)
        events = []
        for event in client.events(job, timeout_s=600):
            events.append(event)
        assert client.status(job).state is JobState.DONE, client.status(job)
        assert any(e.stage == "adapt" for e in events)
        bundle = client.adapted(job)
        assert bundle["name"] == "anna" and bundle["path"] == path and bundle["steps"] == 2 and bundle["after_db"] >= bundle["before_db"]
        assert "anna" in [m.name for m in client.models()]  # served from now on
        clip = client.wait(client.submit(_shot(media, "dubbed_by_anna", model="anna"))[0], timeout_s=600)
        assert clip.model["name"] == "anna" and clip.frames_edited == 8

        long_job, long_path = client.adapt("bob", [take], base="studio-fr", steps=10_000, validate_every=1)
        deadline = time.monotonic() + 300
        while client.status(long_job).state is not JobState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        client.cancel(long_job)
        while client.status(long_job).state is JobState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert client.status(long_job).state is JobState.CANCELLED
        assert not Path(long_path).exists() and not (Path(long_path).parent / ".bob.adapt").exists()
        assert "bob" not in [m.name for m in client.models()]


def test_the_bundles_are_known_from_the_start_and_a_missing_one_is_refused_before_and_after_the_worker_is_ready(real_daemon):
    """Issue 33 item 7: right after the ready line, before the worker has loaded anything, `models` lists every bundle
    and a shot naming one that does not exist is refused at submit (before: an empty list, and the shot was queued and
    failed later); once the worker is ready it is refused the same way, and the worker's list is the one read at start."""
    ready, media = real_daemon
    with Client(ready["requests"], timeout_s=120) as client:
        first = client.hello()  # the worker is still loading here (torch, MediaPipe, the bundle): seconds on a CPU
        assert [m.name for m in first.models] == [DEFAULT_BUNDLE, "studio-fr"], (first.models, first.workers)
        with pytest.raises(EdidubError) as err:
            client.submit([_shot(media, "fine"), _shot(media, "typo", model="nope")])
        assert err.value.code == "MODEL_MISSING" and err.value.details == {"index": 1, "shot_id": "typo"}
        assert "'nope' is not served" in err.value.message and "edidub-starter, studio-fr" in err.value.hint
        assert client.list_jobs() == []  # all or nothing
        loaded = _ready(client)
        with pytest.raises(EdidubError) as again:
            client.submit(_shot(media, "typo", model="nope"))
        assert again.value.code == "MODEL_MISSING"
    at_start = {m.name: (m.path, m.version, m.details) for m in first.models}
    assert {m.name: (m.path, m.version, m.details) for m in loaded.models} == at_start  # the catalogue and the runner agree


def test_serve_refuses_to_start_without_its_default_bundle(tmp_path):
    run = subprocess.run([sys.executable, "-m", "edidub_engine", "serve", "--port", "0", "--store", str(tmp_path / "jobs.sqlite3"),
                          "--device", "cpu", "--media-root", str(tmp_path), "--default-model", "studio-de", "-q"],
                         cwd=REPO, env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "EDIDUB_MODELS": ""},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 7 and run.stdout == "", (run.returncode, run.stdout, run.stderr)
    assert "default model bundle 'studio-de' is not among the bundles found (edidub-starter)" in run.stderr
    assert "--default-model" in run.stderr and "Traceback" not in run.stderr
