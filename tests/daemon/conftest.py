"""Daemon test fixtures: a real daemon on 127.0.0.1 ephemeral ports, real footage, real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from edidub_engine.client import Client
from edidub_engine.daemon.server import Server

from daemon_helpers import AUDIO, CLIP, need_footage, settings
from runners import CopyRunner


@pytest.fixture
def clip() -> Path:
    return need_footage(CLIP)


@pytest.fixture
def audio() -> Path:
    return need_footage(AUDIO)


@pytest.fixture
def out_dir(tmp_path) -> Path:
    path = tmp_path / "renders"
    path.mkdir()
    return path


@pytest.fixture
def make_daemon(tmp_path, out_dir):
    """``make_daemon(runner=CopyRunner(), **settings)`` → a started in-process Server, stopped at the end."""
    started = []

    def make(runner: CopyRunner | None = None, **kw) -> Server:
        runner = runner or CopyRunner()
        server = Server(settings(tmp_path, out_dir, **kw), runner_factory=lambda device: runner)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def daemon(make_daemon, clip):
    return make_daemon()


@pytest.fixture
def client(daemon):
    with Client(daemon.request_endpoint, timeout_s=10) as c:
        yield c
