"""Local authentication: only a process that can read the daemon's connection file gets in, even on loopback."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time

import pytest
import zmq
import zmq.auth

from edidub_engine.client import AuthFailedError, Client, DaemonDownError
from edidub_engine.daemon.connection import CONNECTION_ENV, read_connection
from edidub_engine.daemon.protocol import Message

from daemon_helpers import REPO, spawn_daemon
from runners import FOOTAGE


@pytest.fixture
def served(tmp_path):
    """The real `edidub serve` with its default (local authentication on), and its ready line."""
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, tmp_path])
    yield ready
    proc.terminate()
    proc.wait(30)


def _plain_hello(endpoint: str, timeout_ms: int = 1500) -> bytes | None:
    """A hello from a client with no keys at all; the reply, or None when nothing came back."""
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(endpoint)
        sock.send(Message.make("hello_request", {"client": "intruder"}, session="s").pack())
        return sock.recv() if sock.poll(timeout_ms) else None


def test_serve_writes_a_private_connection_file_that_clients_find(served):
    path = served["connection_file"]
    assert path == os.environ[CONNECTION_ENV]
    mode = os.stat(path).st_mode
    assert stat.S_IMODE(mode) == 0o600 and stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    info = read_connection(path)
    assert info.requests == served["requests"] and info.events == served["events"] and info.pid == served["pid"]
    with Client(timeout_s=10) as client:  # no endpoint, no keys: the file says both
        assert client.endpoint == served["requests"]
        assert client.hello().engine_version


def test_clients_without_the_files_keys_are_refused(served, tmp_path):
    assert _plain_hello(served["requests"]) is None  # no CURVE: the handshake fails, nothing is read
    info = read_connection(served["connection_file"])
    # The server's public key is no secret: knowing it is not enough without the client key of the file.
    with Client(served["requests"], server_key=info.server_public_key, timeout_s=3) as stranger:
        with pytest.raises(AuthFailedError) as err:
            stranger.hello()
    assert err.value.code == "AUTH_FAILED"
    with Client(served["requests"], connection_file=tmp_path / "none.json", timeout_s=3) as no_file:
        with pytest.raises(AuthFailedError, match="refused the secure handshake") as err:
            no_file.list_jobs()
    assert "run this as the user who started it" in err.value.hint and "--no-auth" in err.value.hint


def test_no_auth_is_an_explicit_opt_out(tmp_path):
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, tmp_path], args=("--no-auth",))
    try:
        assert ready["connection_file"] is None and not os.path.exists(os.environ[CONNECTION_ENV])
        reply = _plain_hello(ready["requests"], timeout_ms=10_000)
        assert reply is not None and Message.unpack(reply).content["status"] == "ok"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "--no-auth: any process on this machine" in err


def test_keys_survive_a_restart_and_a_leaked_file_gets_new_ones(make_daemon, tmp_path):
    path = tmp_path / "conn" / "connection.json"
    first = make_daemon(connection_file=path)
    keys = read_connection(path)
    first.stop()
    second = make_daemon(connection_file=path, store_path=tmp_path / "jobs2.sqlite3")
    again = read_connection(path)
    assert (again.server_public_key, again.client_secret_key) == (keys.server_public_key, keys.client_secret_key)
    assert again.requests == second.request_endpoint != keys.requests
    second.stop()
    os.chmod(path, 0o644)  # someone could have read it: those keys are spent
    make_daemon(connection_file=path, store_path=tmp_path / "jobs3.sqlite3")
    fresh = read_connection(path)
    assert fresh.client_secret_key != keys.client_secret_key and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Client(connection_file=path, timeout_s=10) as client:
        client.hello()


_INTRUDER = textwrap.dedent("""
    import json, sys
    from edidub_engine.client import Client, AuthFailedError
    endpoint, conn = sys.argv[1], sys.argv[2]
    try:
        open(conn).read()
        readable = True
    except OSError:
        readable = False
    try:
        with Client(endpoint, timeout_s=3) as c:
            c.request("shutdown")
        outcome = "accepted"
    except AuthFailedError as err:
        outcome = err.code
    print(json.dumps({"readable": readable, "outcome": outcome}))
""")


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs setpriv and root to run as another uid")
def test_another_uid_is_refused(served, tmp_path):
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", "import zmq, msgpack"],
                           capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": "/tmp"})
    if probe.returncode != 0:
        pytest.skip(f"uid 65534 cannot run this Python: {probe.stderr.strip()[-200:]}")
    env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": str(REPO), CONNECTION_ENV: served["connection_file"]}
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", _INTRUDER,
                          served["requests"], served["connection_file"]], capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"readable": False, "outcome": "AUTH_FAILED"}
    with Client(timeout_s=10) as owner:  # and the daemon is still there for its own user
        assert owner.hello().engine_version


def test_with_keys_and_no_allow_list_only_the_connection_files_client_gets_in(tmp_path):
    """`edidub serve --keys DIR` without DIR/authorized_clients: server.key is handed to every client, so holding it
    admits nobody; the connection file's client key does, and the daemon says so (issue 34 item 4: before, any client
    holding server.key was admitted)."""
    from edidub_engine.daemon.__main__ import main

    keys = tmp_path / "keys"
    assert main(["keys", "new", str(keys)]) == 0
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, tmp_path], args=("--keys", str(keys)))
    try:
        with Client(timeout_s=10) as owner:  # the connection file: the --keys folder's server key and the file's client pair
            assert owner.hello().engine_version
            assert owner.connection.server_public_key.encode() == zmq.auth.load_certificate(keys / "server.key")[0]
        with Client(ready["requests"], server_key=keys / "server.key", timeout_s=3) as holder:
            with pytest.raises(AuthFailedError) as err:
                holder.hello()
        assert err.value.code == "AUTH_FAILED"
    finally:
        proc.terminate()
        _, log = proc.communicate(timeout=30)
    assert "authorized_clients does not exist: only the client key of the connection file" in log


def test_a_refused_handshake_is_told_apart_from_a_daemon_that_is_down_at_once(served, tmp_path):
    """Issue 33 item 3: only the socket monitor tells them apart. A key the daemon does not admit is refused by its
    authenticator (ZAP status 400); a wrong server key fails the handshake itself; the client says which, as soon as the
    monitor reports it (before, it waited out its whole timeout, blocked on send)."""
    info = read_connection(served["connection_file"])
    for server_key, kind in ((info.server_public_key, "client_key_refused"), (zmq.curve_keypair()[0], "failed")):
        started = time.monotonic()
        with Client(served["requests"], server_key=server_key, timeout_s=20) as stranger, pytest.raises(AuthFailedError) as err:
            stranger.hello()
        assert err.value.details["handshake"] == kind and time.monotonic() - started < 5
    with Client("tcp://127.0.0.1:9", connection_file=tmp_path / "none.json", timeout_s=1) as nobody, pytest.raises(DaemonDownError) as down:
        nobody.hello()
    assert down.value.code == "DAEMON_DOWN" and "handshake" not in down.value.details


def test_a_connection_file_left_by_a_stopped_daemon_is_said_to_be_stale(tmp_path):
    """Issue 33 item 2: the file outlives the daemon (its keys serve the next start); its pid tells a client it is stale."""
    proc, ready = spawn_daemon(tmp_path / "jobs.sqlite3", [FOOTAGE, tmp_path])
    proc.terminate()
    proc.wait(30)
    assert read_connection(ready["connection_file"]).pid == ready["pid"]
    with Client(timeout_s=1) as client, pytest.raises(DaemonDownError) as err:
        client.hello()
    assert err.value.code == "DAEMON_DOWN" and err.value.details["stale_connection_file"] == ready["connection_file"]
    assert f"daemon (pid {ready['pid']}) that is no longer running" in err.value.hint


def test_an_open_client_follows_a_daemon_started_again_with_new_keys_or_ports(make_daemon, tmp_path):
    """Issue 33 item 8: a daemon that finds its connection file readable by others makes new keys; a client that read
    the old file reads it again when the handshake fails (before: AUTH_FAILED until the client was made anew). The same
    when the daemon comes back on other ports."""
    path = tmp_path / "conn" / "connection.json"
    first = make_daemon(connection_file=path)
    with Client(connection_file=path, timeout_s=3) as client:
        client.hello()
        old = read_connection(path)
        first.stop()
        os.chmod(path, 0o644)  # someone could have read it: the next start makes new keys
        second = make_daemon(connection_file=path, store_path=tmp_path / "jobs2.sqlite3", request_endpoint=old.requests,
                             events_endpoint=old.events)
        new = read_connection(path)
        assert new.requests == old.requests and new.server_public_key != old.server_public_key
        started = time.monotonic()
        assert client.hello().engine_version and client.connection == new
        assert time.monotonic() - started < 3  # the failed handshake was noticed at once, not after the timeout
        second.stop()
        moved = make_daemon(connection_file=tmp_path / "conn" / "other.json", store_path=tmp_path / "jobs3.sqlite3")
        os.replace(tmp_path / "conn" / "other.json", path)  # as a daemon started on other ports leaves it
        assert client.hello().engine_version and client.endpoint == moved.request_endpoint


def test_a_request_that_was_sent_is_never_sent_again(make_daemon, tmp_path, clip, audio, out_dir):
    """Following a changed connection file resends only what never left: a submit the daemon received but did not answer
    in time must not be queued twice, even when the file changed meanwhile."""
    from dataclasses import replace

    from edidub_engine.daemon.connection import write_connection

    from daemon_helpers import shot

    path = tmp_path / "conn" / "connection.json"
    server = make_daemon(connection_file=path)
    answer = server._on_submit

    def slow_submit(*args):  # a daemon slow to answer (a media check over a network share); 1 ms was a race on CI
        time.sleep(1.0)
        return answer(*args)

    server._on_submit = slow_submit
    with Client(connection_file=path, timeout_s=10) as client:
        client.hello()  # the handshake is done: the next request leaves at once
        write_connection(path, replace(read_connection(path), pid=os.getpid() + 1))  # the file changed
        with pytest.raises(DaemonDownError, match="did not answer submit"):
            client.request("submit", {"shots": [shot(clip, audio, out_dir)]}, timeout_s=0.3)
        deadline = time.monotonic() + 10
        while not client.list_jobs():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert len(client.list_jobs()) == 1
