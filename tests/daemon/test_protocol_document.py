"""docs/protocol.md's minimal client is the code these tests run against the real `edidub serve` (issue 33): a client
written from the document alone, so the document and the daemon cannot drift apart."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from daemon_helpers import REPO, spawn_daemon
from runners import FOOTAGE


def _example(tmp_path: Path) -> Path:
    """The document's python block under 'A minimal client', as a file."""
    text = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text[text.index("## A minimal client"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "edidub_engine" not in code  # a third-party client: pyzmq and msgpack only
    path = tmp_path / "minimal_client.py"
    path.write_text(code, encoding="utf-8")
    return path


def _module(path: Path):
    spec = importlib.util.spec_from_file_location("minimal_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def daemon(tmp_path):
    renders = tmp_path / "renders"
    renders.mkdir()
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, renders], frame_delay_s=0.2)  # slow enough to hear events
    yield ready, renders
    proc.terminate()
    proc.wait(30)


def test_the_documents_minimal_client_dubs_a_shot(daemon, tmp_path, clip, audio):
    ready, renders = daemon
    script = _example(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "EDIDUB_CONNECTION_FILE": ready["connection_file"]}
    run = subprocess.run([sys.executable, "-I", str(script), str(clip), str(audio), str(renders), "0", "10"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["events"] and result["events"][-1] == "done"  # heard on the PUB socket, with the file's keys
    clip_out = result["clip"]
    assert (clip_out["shot_id"], clip_out["start_frame"], clip_out["end_frame"], clip_out["rate"]) == ("minimal", 0, 10, "25/1")
    assert Path(clip_out["path"]) == renders / "grid_bbaf2n_minimal_dub.mkv" and Path(clip_out["path"]).is_file()


def test_the_connection_file_is_found_where_the_document_says(tmp_path, monkeypatch):
    module = _module(_example(tmp_path))
    from edidub_engine.daemon.connection import default_connection_path

    for env in ({"EDIDUB_CONNECTION_FILE": str(tmp_path / "c.json")}, {"XDG_DATA_HOME": str(tmp_path / "data")},
                {"XDG_DATA_HOME": "relative/data"}, {}):
        for name in ("EDIDUB_CONNECTION_FILE", "XDG_DATA_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert module.connection_file() == default_connection_path(), env


def test_the_documents_diagnosis_tells_refused_keys_from_a_daemon_that_is_down(daemon, tmp_path):
    """Step 4 of Connecting, as the example does it: a client key the daemon does not admit, a wrong server key, nothing
    listening, and a connection file left by a daemon that stopped."""
    ready, _ = daemon
    module = _module(_example(tmp_path))
    module.TIMEOUT_S = 2
    info = json.loads(Path(ready["connection_file"]).read_text(encoding="utf-8"))
    public, secret = zmq.curve_keypair()
    cases = {
        "AUTH_FAILED: the daemon refused this client key": dict(info, client_public_key=public.decode(), client_secret_key=secret.decode()),
        "AUTH_FAILED: the handshake failed": dict(info, server_public_key=zmq.curve_keypair()[0].decode()),
        "DAEMON_DOWN: nothing answered": dict(info, requests="tcp://127.0.0.1:9"),
    }
    for said, keys in cases.items():
        with pytest.raises(RuntimeError, match=re.escape(said)):
            module.Daemon(keys).call("hello", {"client": "diagnosis"})
    assert module.Daemon(info).call("hello", {"client": "diagnosis"})["protocol"].startswith("1.")
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(dict(info, pid=_dead_pid())), encoding="utf-8")
    with pytest.raises(SystemExit, match="is stale"):
        module.read_connection(stale)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
