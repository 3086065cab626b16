"""Access control: media roots (FORBIDDEN for escapes), no overwrites, loopback-only without CURVE, CURVE keys."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edidub_engine.client import AuthFailedError, Client, DaemonDownError
from edidub_engine.daemon.protocol import PROTOCOL_VERSION, ForbiddenError
from edidub_engine.daemon.server import Server, is_local_endpoint
from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, MediaNotFoundError, OutputExistsError

from daemon_helpers import REPO, settings, shot
from runners import CopyRunner


def test_paths_outside_the_roots_are_forbidden(client, clip, audio, out_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mov").write_bytes(b"x")
    (out_dir / "escape").symlink_to(outside)  # a symlink inside a root pointing out of it
    (out_dir / "clip_link.mpg").symlink_to(outside / "secret.mov")
    cases = {
        "source outside": shot(outside / "secret.mov", audio, out_dir),
        "dotdot source": shot(Path(f"{out_dir}/../outside/secret.mov"), audio, out_dir),
        "symlinked file": shot(out_dir / "clip_link.mpg", audio, out_dir),
        "audio outside": shot(clip, outside / "secret.mov", out_dir),
        "output outside": shot(clip, audio, outside),
        "output via symlink": shot(clip, audio, out_dir / "escape"),
        "output dotdot": shot(clip, audio, Path(f"{out_dir}/../outside")),
        "etc": shot(Path("/etc/passwd"), audio, out_dir),
    }
    for name, request in cases.items():
        with pytest.raises(ForbiddenError) as err:
            client.submit(request)
        assert err.value.code == "FORBIDDEN", name
    assert not list(outside.glob("*.mkv"))


def test_bad_paths_and_names_are_refused_clearly(client, clip, audio, out_dir):
    with pytest.raises(InvalidArgumentError, match="absolute"):
        client.submit(shot(Path("relative/clip.mpg"), audio, out_dir))
    with pytest.raises(MediaNotFoundError):
        client.submit(shot(out_dir / "missing.mpg", audio, out_dir))
    with pytest.raises(InvalidArgumentError, match="not a file name"):
        client.submit(shot(clip, audio, out_dir, name="../evil"))
    with pytest.raises(InvalidArgumentError, match="is a file, not a folder"):
        client.submit(shot(clip, audio, clip))


def test_outputs_are_never_overwritten(client, clip, audio, out_dir):
    (out_dir / "taken.mkv").write_bytes(b"an editor's file")
    with pytest.raises(OutputExistsError):
        client.submit(shot(clip, audio, out_dir, name="taken"))
    assert (out_dir / "taken.mkv").read_bytes() == b"an editor's file"
    # two jobs aimed at one file: the second is refused at submit, in one request or two
    with pytest.raises(OutputExistsError) as clash:
        client.submit([shot(clip, audio, out_dir, name="other", shot_id="s0"), shot(clip, audio, out_dir, name="same", shot_id="s1"),
                       shot(clip, audio, out_dir, name="same", shot_id="s2")])
    assert clash.value.details["index"] == 1 and clash.value.details["shot_id"] == "s1"  # which shot to rename
    assert client.list_jobs() == []  # all or nothing


def test_remote_bind_without_keys_refuses_to_start(tmp_path, out_dir, clip):
    assert is_local_endpoint("tcp://127.0.0.1:1") and is_local_endpoint("ipc:///tmp/x") and is_local_endpoint("tcp://[::1]:5")
    assert not is_local_endpoint("tcp://0.0.0.0:1") and not is_local_endpoint("tcp://*:1") and not is_local_endpoint("tcp://eth0:1")
    server = Server(settings(tmp_path, out_dir, request_endpoint="tcp://0.0.0.0:*"), runner_factory=lambda d: CopyRunner())
    with pytest.raises(InvalidArgumentError, match="without CURVE keys"):
        server.start()
    cli = subprocess.run(
        [sys.executable, "-m", "edidub_engine.daemon", "serve", "--bind", "0.0.0.0", "--port", "0", "--device", "cpu",
         "--media-root", str(out_dir), "--store", str(tmp_path / "s.sqlite3")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 2 and "without CURVE keys" in cli.stderr and "edidub keys new" in cli.stderr


def test_no_daemon_is_a_clear_error_fast():
    started = time.monotonic()
    with Client("tcp://127.0.0.1:9", timeout_s=0.5) as client, pytest.raises(DaemonDownError) as err:
        client.hello()
    assert err.value.code == "DAEMON_DOWN" and "edidub serve" in err.value.hint
    assert time.monotonic() - started < 3


def _keys(folder: Path, name: str) -> None:
    from edidub_engine.daemon.__main__ import main

    assert main(["keys", "new", str(folder), "--name", name]) == 0


def test_keys_new_writes_a_pair_and_never_overwrites(tmp_path, capsys):
    _keys(tmp_path / "k", "server")
    assert (tmp_path / "k" / "server.key").is_file()
    assert oct((tmp_path / "k" / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    from edidub_engine.daemon.__main__ import main

    assert main(["keys", "new", str(tmp_path / "k")]) == 5  # OUTPUT_EXISTS


def test_curve_clients_need_the_server_key(make_daemon, tmp_path, clip):
    keys = tmp_path / "keys"
    _keys(keys, "server")
    _keys(tmp_path / "other", "server")
    connection = tmp_path / "conn" / "connection.json"
    daemon = make_daemon(keys_dir=keys, connection_file=connection)
    with Client(daemon.request_endpoint, connection_file=connection, timeout_s=5) as good:
        assert good.hello().protocol == PROTOCOL_VERSION
    with Client(daemon.request_endpoint, server_key=tmp_path / "other" / "server.key", timeout_s=1) as wrong, pytest.raises(AuthFailedError) as err:
        wrong.hello()
    assert err.value.code == "AUTH_FAILED" and "server key" in err.value.hint
    with Client(daemon.request_endpoint, timeout_s=1) as plain, pytest.raises(DaemonDownError):
        plain.hello()  # no key at all: the CURVE server never answers a plain client


def test_keys_without_an_allow_list_or_a_connection_file_refuse_to_start(tmp_path, out_dir):
    """Such a daemon could admit nobody, or (before) anybody holding server.key, which every client is given."""
    keys = tmp_path / "keys"
    _keys(keys, "server")
    server = Server(settings(tmp_path, out_dir, keys_dir=keys), runner_factory=lambda d: CopyRunner())
    with pytest.raises(InvalidArgumentError, match="no authorized_clients folder") as err:
        server.start()
    assert "authorized_clients" in err.value.hint and "--no-auth" in err.value.hint


def test_curve_allow_list_refuses_unlisted_clients(make_daemon, tmp_path, clip):
    keys = tmp_path / "keys"
    _keys(keys, "server")
    _keys(tmp_path / "clients", "alice")
    _keys(tmp_path / "clients", "mallory")
    (keys / "authorized_clients").mkdir()
    os.link(tmp_path / "clients" / "alice.key", keys / "authorized_clients" / "alice.key")
    daemon = make_daemon(keys_dir=keys)
    with Client(daemon.request_endpoint, server_key=keys / "server.key", client_key=tmp_path / "clients" / "alice.key_secret", timeout_s=5) as alice:
        assert alice.hello().protocol == PROTOCOL_VERSION
    mallory = Client(daemon.request_endpoint, server_key=keys / "server.key", client_key=tmp_path / "clients" / "mallory.key_secret", timeout_s=1)
    with mallory, pytest.raises(AuthFailedError):
        mallory.hello()


def test_a_shot_is_checked_against_its_media_at_submit(client, clip, audio, out_dir, footage_path):
    """Ranges past the clip's end, a dub line starting after its audio ends, and a dub file without sound
    are refused at submit with the shot and the file named; before, submit said ok and the worker failed later."""
    for end in (81, 100_000):  # grid_bbaf2n holds 75 frames (2**63 is refused by the range check already)
        with pytest.raises(InvalidArgumentError, match=r"go past the end of grid_bbaf2n.mpg, which holds about 7[45] frames") as err:
            client.submit(shot(clip, audio, out_dir, start=70, end=end, shot_id="late"))
        assert err.value.details["shot_id"] == "late" and err.value.details["index"] == 0
    assert client.submit(shot(clip, audio, out_dir, start=70, end=75))  # the last frames are fine
    late_audio = shot(clip, audio, out_dir)
    late_audio["dub_audio"][0]["start_s"] = 60.0  # dub_en_jfk.flac is 11 s long
    with pytest.raises(InvalidArgumentError, match=r"dub_audio\[0\] starts at 60.000 s, after the end of dub_en_jfk.flac"):
        client.submit(late_audio)
    silent = footage_path("styletalk_hand_near_chin.mp4")  # a video with no sound as the dub line
    with pytest.raises(MediaDecodeError, match="has no audio stream"):
        client.submit(shot(clip, silent, out_dir))
