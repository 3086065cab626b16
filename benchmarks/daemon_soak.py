"""Soak the real daemon: 100 000 malformed messages, then 1 000 status requests; its memory before, during, after.

Issue 18 saw ``edidub serve`` grow from about 630 to 760 MiB over 24 000 bad
messages and asked whether it keeps growing.  This starts the real daemon (its
own models loaded, local authentication on), connects as its user with the
connection file's keys, and sends in rounds of 500: random bytes, random
msgpack, envelopes with broken or huge header fields, known requests with
fuzzed content, and submits whose paths leave the media roots.  Each message
must be answered with an error (none may be accepted); every 10 000 messages
the daemon's resident memory (VmRSS, from /proc) is printed.  Then 1 000
``status`` requests are timed one by one, and a real ``hello`` must still work.

    .venv/bin/python benchmarks/daemon_soak.py [--messages 100000] [--status 1000] [--json out.json]

Growth is judged on the second half (after allocator warm-up): a leak keeps
climbing there, a warm-up does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import zmq

from _common import ROOT, environment, write_json

from edidub_engine.client import Client
from edidub_engine.daemon.connection import read_connection
from edidub_engine.daemon.protocol import ACTIONS, PROTOCOL_VERSION

_TYPES = [f"{a}_request" for a in ACTIONS if a != "shutdown"] + ["", "x" * 100, "submit_reply", "hello"]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _envelope(msg_type: str, content, header: dict | None = None) -> dict:
    head = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "protocol": PROTOCOL_VERSION, "session": "soak", "date": "2026-01-01T00:00:00Z"}
    head.update(header or {})
    return {"header": head, "parent_header": {}, "content": content}


def _junk(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, 2**63 - 1, -(2**63), 1e308, float("nan"), 0])
    if kind == 2:
        return "".join(rng.choice("abc/..\x00é") for _ in range(rng.randrange(40)))
    if kind == 3:
        return rng.randbytes(rng.randrange(40))
    if kind == 4:
        return rng.choice(["x" * 100_000, list(range(5000)), {"k" * 3000: 1}])
    if kind == 5:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {str(_junk(rng, 3))[:12]: _junk(rng, depth + 1) for _ in range(rng.randrange(5))}


def bad_message(rng: random.Random, media: Path) -> bytes:
    """One message the daemon must refuse (with an error reply)."""
    kind = rng.randrange(5)
    if kind == 0:
        return b"\xc1" + rng.randbytes(rng.randrange(300))  # 0xc1 is never valid msgpack
    if kind == 1:
        return msgpack.packb([_junk(rng)], use_bin_type=True)
    if kind == 2:
        # header strings are opaque (any session or date text is valid), so the junk here is never a short string
        field = rng.choice(["msg_id", "msg_type", "protocol", "session", "date"])
        value = rng.choice([None, 7, 1.5, [], {"a": 1}, b"bytes", "x" * 100_000, "\x00" * 5000])
        return msgpack.packb(_envelope(rng.choice(_TYPES), {}, {field: value}), use_bin_type=True)
    if kind == 3:
        return msgpack.packb(_envelope(rng.choice(_TYPES[:-4]), {"job_id": _junk(rng), "shots": _junk(rng), "options": _junk(rng)}), use_bin_type=True)
    escape = rng.choice(["/etc/passwd", f"{media}/../../etc/shadow", "relative/clip.mov", f"{media}/a\x00b.mov"])
    shot = {"shot_id": "soak", "source": {"path": escape, "start_frame": 0, "end_frame": 2, "rate": "25"},
            "dub_audio": [{"path": escape, "start_s": 0.0, "duration_s": 1.0}], "output": {"dir": "/tmp", "codec": "ffv1"}}
    return msgpack.packb(_envelope("submit_request", {"shots": [shot]}), use_bin_type=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--status", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        media = tmp / "media"
        media.mkdir()
        conn = tmp / "daemon" / "connection.json"
        env = dict(os.environ, EDIDUB_CONNECTION_FILE=str(conn))
        proc = subprocess.Popen([sys.executable, "-m", "edidub_engine", "serve", "--media-root", str(media), "--port", "0",
                                 "--store", str(tmp / "jobs.sqlite3"), "--device", "cpu", "-q"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        try:
            ready = json.loads(proc.stdout.readline())
            with Client(ready["requests"], connection_file=conn, timeout_s=120) as client:
                while not all(w.get("ready") for w in client.hello().workers):  # models loaded: the steady state
                    time.sleep(0.5)
            info = read_connection(conn)
            ctx = zmq.Context()
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.curve_serverkey = info.server_public_key.encode()
            sock.curve_publickey, sock.curve_secretkey = info.client_public_key.encode(), info.client_secret_key.encode()
            sock.connect(ready["requests"])
            rss = [(0, _rss_mib(proc.pid))]
            print(f"daemon pid {proc.pid}, models loaded: {rss[0][1]:.0f} MiB resident")
            accepted = sent = 0
            started = time.perf_counter()
            while sent < args.messages:
                batch = min(500, args.messages - sent)
                for _ in range(batch):
                    sock.send(bad_message(rng, media))
                for _ in range(batch):
                    if not sock.poll(60_000):
                        raise SystemExit(f"FAIL: no reply after {sent} messages")
                    reply = msgpack.unpackb(sock.recv(), raw=False, strict_map_key=False)
                    accepted += reply.get("content", {}).get("status") == "ok"
                sent += batch
                if sent % 10_000 == 0 or sent == args.messages:
                    rss.append((sent, _rss_mib(proc.pid)))
                    print(f"{sent:>7} bad messages  {rss[-1][1]:7.1f} MiB  ({sent / (time.perf_counter() - started):.0f} msg/s)", flush=True)
            bad_s = time.perf_counter() - started
            with Client(ready["requests"], connection_file=conn, timeout_s=30) as client:
                latencies = []
                for _ in range(args.status):
                    t0 = time.perf_counter()
                    try:
                        client.status(uuid.uuid4().hex)
                    except Exception as err:  # NOT_FOUND is the answer for an unknown job
                        assert getattr(err, "code", "") == "NOT_FOUND", err
                    latencies.append(time.perf_counter() - t0)
                hello_ok = bool(client.hello().engine_version)
            after = _rss_mib(proc.pid)
            sock.close()
            ctx.term()
        finally:
            proc.terminate()
            proc.wait(60)
    latencies.sort()
    half = [r for n, r in rss if n >= args.messages // 2]
    figures = {
        "environment": environment(), "messages": args.messages, "accepted": accepted, "seconds": round(bad_s, 1),
        "rss_mib": {"loaded": round(rss[0][1], 1), "after_bad": round(rss[-1][1], 1), "after_status": round(after, 1),
                    "second_half_growth": round(half[-1] - half[0], 1) if len(half) > 1 else None, "trace": [[n, round(r, 1)] for n, r in rss]},
        "status": {"count": args.status, "median_ms": round(1000 * latencies[len(latencies) // 2], 2), "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 2)},
        "hello_after": hello_ok,
    }
    print(f"{args.messages} bad messages in {bad_s:.0f} s, {accepted} accepted (must be 0)")
    print(f"resident memory: {figures['rss_mib']['loaded']} MiB loaded -> {figures['rss_mib']['after_bad']} after the bad messages "
          f"-> {after:.1f} after {args.status} status requests; second half growth {figures['rss_mib']['second_half_growth']} MiB")
    print(f"status: median {figures['status']['median_ms']} ms, p99 {figures['status']['p99_ms']} ms; hello afterwards: {'ok' if hello_ok else 'FAILED'}")
    if args.json:
        write_json(args.json, figures)
    return 0 if accepted == 0 and hello_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
