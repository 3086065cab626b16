"""Resolve script fixtures: the documented-API double, short test clips at NTSC and film rates,
a tiny random model bundle, a real in-process daemon and the scripts installed into a temporary HOME."""

from __future__ import annotations

import runpy
from fractions import Fraction
from pathlib import Path

import pytest

import resolve_double
from resolve_api import DOCUMENTED

from resolve_media import CLIP_FRAMES, FOOTAGE, RATES, REPO, need  # noqa: F401  (shared with the tests)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    """Real GRID frames re-encoded as ProRes at 24, 24000/1001 and 30000/1001 with hour-one timecode."""
    from edidub_engine.media import ClipWriter, read_frames

    root = tmp_path_factory.mktemp("media")
    frames = read_frames(need("grid_bbaf2n.mpg"), 0, CLIP_FRAMES + 4)
    for rate, tc, name in RATES.values():
        with ClipWriter(root / name, width=frames.shape[2], height=frames.shape[1], rate=rate, codec="prores_hq", timecode=tc) as w:
            for frame in frames:
                w.write(frame)
    return root


@pytest.fixture(scope="session")
def dub_audio() -> Path:
    return need("dub_fr_french1.wav")


@pytest.fixture(scope="session")
def daemon(starter_bundle, media_root, tmp_path_factory):
    """A real daemon with the engine's own runner (as `edidub serve` has): it dubs with the starter bundle (few steps)
    and runs adapt jobs into an adapted-bundle folder of its own, serving each bundle once it is made."""
    from edidub_engine.daemon.server import Server, ServerSettings
    from edidub_engine.models.bundle import DEFAULT_BUNDLE
    from edidub_engine.render import ModelRunner

    runner = ModelRunner("cpu", {DEFAULT_BUNDLE: starter_bundle}, default=DEFAULT_BUNDLE)
    settings = ServerSettings(
        store_path=tmp_path_factory.mktemp("store") / "jobs.sqlite3",
        adapted_dir=tmp_path_factory.mktemp("adapted"),
        media_roots=(media_root, FOOTAGE),
        request_endpoint="tcp://127.0.0.1:*",
        events_endpoint="tcp://127.0.0.1:*",
        devices=("cpu",),
        shutdown_timeout_s=10,
    )
    server = Server(settings, runner_factory=lambda device: runner)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A temporary HOME (and config folder) for the installed scripts and the per-project settings."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(path / ".config"))
    monkeypatch.delenv("EDIDUB_DAEMON", raising=False)
    return path


@pytest.fixture
def installed(home) -> Path:
    """The scripts as `edidub install resolve --user` writes them (Linux per-user folder)."""
    from plugins.davinci.install import install, scripts_folder

    install(scripts_folder(user=True, platform="linux", home=str(home)))
    return scripts_folder(user=True, platform="linux", home=str(home)) / "Edit"


@pytest.fixture
def run_script(installed, capsys):
    """``run_script("Dub Shot", resolve)`` → (report, console text): the installed file, run as Resolve runs it."""

    def run(which: str, resolve):
        capsys.readouterr()
        scope = runpy.run_path(str(installed / f"EdiDub {which}.py"), init_globals={"resolve": resolve}, run_name="__main__")
        return scope["report"], capsys.readouterr().out

    return run


@pytest.fixture(autouse=True)
def documented_calls_only():
    """Every call any test makes on the double must be a documented Resolve method."""
    resolve_double.CALLS.clear()
    resolve_double.MISUSE.clear()
    yield
    undocumented = sorted(c for c in resolve_double.CALLS if c.split(".")[1] not in DOCUMENTED[c.split(".")[0]])
    assert not undocumented, f"calls outside the documented Resolve API: {undocumented}"
    assert not resolve_double.MISUSE, resolve_double.MISUSE
