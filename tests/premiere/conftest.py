"""Premiere bridge fixtures: a real daemon running the starter bundle (tests/conftest.py), test media at
23.976 and 29.97 fps, and the bridge in a background event loop on 127.0.0.1."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge_helpers import BridgeThread, make_ntsc_clip  # noqa: E402


@pytest.fixture(scope="session")
def media(tmp_path_factory, footage_path):
    """``{"23.976": clip, "29.97": clip, "dub": wav, "grid": take, "dir": folder}``: the GRID talking head re-timed to
    NTSC rates (picture only), and as shot (25 fps, 75 frames with its own sound: an actor's take to adapt on)."""
    folder = tmp_path_factory.mktemp("media")
    grid = footage_path("grid_bbaf2n.mpg")
    dub = footage_path("dub_fr_french1.wav")
    local_dub = folder / dub.name
    local_dub.write_bytes(dub.read_bytes())
    take = folder / "ANNA_t1.mpg"  # a copy: a symlink out of the media root would be refused
    take.write_bytes(grid.read_bytes())
    return {
        "dir": folder,
        "dub": local_dub,
        "grid": take,
        "23.976": make_ntsc_clip(grid, folder / "grid_23976.mkv", Fraction(24000, 1001), frames=48),
        "29.97": make_ntsc_clip(grid, folder / "grid_2997.mkv", Fraction(30000, 1001), frames=48),
    }


@pytest.fixture(scope="session")
def renders(tmp_path_factory):
    return tmp_path_factory.mktemp("renders")


@pytest.fixture(scope="session")
def daemon(tmp_path_factory, starter_bundle, media, renders):
    """A real daemon (in-process, ephemeral ports) with the engine's own runner, as `edidub serve` has: it dubs with the
    starter bundle and runs adapt jobs into an adapted-bundle folder, serving each bundle once it is made."""
    from edidub_engine.daemon.server import Server, ServerSettings
    from edidub_engine.models.bundle import DEFAULT_BUNDLE
    from edidub_engine.render import ModelRunner

    runner = ModelRunner("cpu", {DEFAULT_BUNDLE: starter_bundle}, default=DEFAULT_BUNDLE)
    settings = ServerSettings(
        store_path=tmp_path_factory.mktemp("daemon") / "jobs.sqlite3",
        adapted_dir=tmp_path_factory.mktemp("adapted"),
        media_roots=(media["dir"], renders),
        output_root=renders,
        request_endpoint="tcp://127.0.0.1:*",
        events_endpoint="tcp://127.0.0.1:*",
        devices=("cpu",),
        shutdown_timeout_s=30,
    )
    server = Server(settings, runner_factory=lambda device: runner)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bridge(daemon):
    """The bridge against the real daemon; ``bridge.url``, ``bridge.token``."""
    with BridgeThread(daemon_endpoint=daemon.request_endpoint) as running:
        yield running
