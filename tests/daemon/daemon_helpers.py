"""Helpers shared by the daemon tests (a plain module: pytest's conftest is not importable by name across folders)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edidub_engine.daemon.server import ServerSettings

from runners import FOOTAGE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLIP = "grid_bbaf2n.mpg"  # 75 frames, 360x288
AUDIO = "dub_en_jfk.flac"
_ids = itertools.count()


def need_footage(name: str) -> Path:
    path = FOOTAGE / name
    if not path.is_file():
        pytest.skip(f"shared footage {path} is absent (the daemon tests read it from ../shared/footage)")
    return path


def shot(clip: Path, audio: Path, out_dir: Path, *, start: int = 0, end: int = 2, shot_id: str | None = None, **output) -> dict:
    return {
        "shot_id": shot_id or f"sh{next(_ids):04d}",
        "source": {"path": str(clip), "start_frame": start, "end_frame": end, "rate": "25"},
        "dub_audio": [{"path": str(audio), "start_s": 0.0, "duration_s": 1.0}],
        "output": {"dir": str(out_dir), "codec": "ffv1", **output},
        "record": {"timeline": "cut v1", "track": "V2", "start_frame": 86400},
    }


def settings(tmp_path: Path, out_dir: Path, **kw) -> ServerSettings:
    base = dict(
        store_path=tmp_path / "jobs.sqlite3",
        media_roots=(FOOTAGE, out_dir),
        request_endpoint="tcp://127.0.0.1:*",
        events_endpoint="tcp://127.0.0.1:*",
        devices=("cpu",),
        shutdown_timeout_s=10,
    )
    base.update(kw)
    return ServerSettings(**base)


def spawn_daemon(store: Path, roots: list[Path], *, frame_delay_s: float = 0.0, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, dict]:
    """``python -m edidub_engine.daemon serve`` in a subprocess on ephemeral ports; returns it and its ready line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]), EDIDUB_TEST_FRAME_DELAY_S=str(frame_delay_s))
    cmd = [sys.executable, "-m", "edidub_engine.daemon", "serve", "--port", "0", "--store", str(store), "--device", "cpu",
           "--runner-factory", "runners:make_runner", "-q", *args]
    for root in roots:
        cmd += ["--media-root", str(root)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError(f"daemon did not start: {proc.stderr.read()}")
    return proc, json.loads(line)
