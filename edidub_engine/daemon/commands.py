"""``edidub serve`` and ``edidub keys new``: the argparse wiring, kept here so cli.py adds it with one line.

    from .daemon.commands import add_daemon_parsers
    add_daemon_parsers(sub)

Handlers return an exit status and raise :class:`EdidubError` subclasses on
bad input; cli.py's ``main`` turns those into a message and a hint.  The same
parsers back ``python -m edidub_engine.daemon``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from edidub_engine.daemon.connection import CONNECTION_ENV, default_connection_path
from edidub_engine.daemon.protocol import DEFAULT_REQUEST_PORT, MAX_MESSAGE_BYTES
from edidub_engine.errors import InvalidArgumentError, ModelMissingError, OutputExistsError

__all__ = ["add_daemon_parsers", "cmd_keys_new", "cmd_serve", "default_store_path", "detect_devices"]


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/edidub/daemon/jobs.sqlite3`` (else ``~/.local/share/…``): never the working folder."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "edidub" / "daemon" / "jobs.sqlite3"


def detect_devices() -> tuple[str, ...]:
    """One worker per CUDA GPU, else one on the CPU (imports torch: only ``serve --device auto`` pays for it)."""
    try:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        count = 0
    return tuple(f"cuda:{i}" for i in range(count)) or ("cpu",)


def add_daemon_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve`` and ``keys`` (with ``keys new``) on ``subparsers``."""
    serve = subparsers.add_parser(
        "serve",
        help="run the dubbing daemon (ZeroMQ: requests on a ROUTER, progress on a PUB)",
        description=(
            "Run the EdiDub daemon that plugins, adapters and scripts talk to through edidub_engine.client "
            f"(wire protocol v1, docs/protocol.md). Listens on 127.0.0.1:{DEFAULT_REQUEST_PORT} for requests and "
            f"the next port for events. Only this user's processes get in: the daemon writes its endpoints and keys to a "
            f"connection file readable by this user only ({default_connection_path()}; $EDIDUB_CONNECTION_FILE or "
            "$XDG_DATA_HOME/edidub/daemon/connection.json when set), which edidub_engine.client, the "
            "Resolve scripts, the Premiere bridge and edidub batch read on their own (--no-auth turns this off on a "
            "single-user machine). Binding any other address needs CURVE keys (edidub keys new). Requests may "
            "only read and write under the --media-root folders. Jobs live in a SQLite store and survive restarts."
        ),
    )
    serve.add_argument("--media-root", action="append", required=True, metavar="DIR", help="folder requests may read and write under (repeatable)")
    serve.add_argument("--models", action="append", default=[], metavar="DIR",
                       help="a model bundle, or a folder of bundles, to serve (repeatable); also served: $EDIDUB_MODELS, "
                            "the user's model folder and the shipped starter. A ShotRequest picks one with options.model")
    serve.add_argument("--default-model", metavar="NAME", help="the bundle for requests that name none (default: edidub-starter)")
    serve.add_argument("--hubert", metavar="DIR", help="local HuBERT folder, for bundles whose speech units are HuBERT's")
    serve.add_argument("--adapted-dir", metavar="DIR",
                       help="where `adapt` requests publish actor bundles, served from there too (default: beside the job store)")
    serve.add_argument("--output-root", metavar="DIR", help="output folder for shots that name none (must lie under a media root)")
    serve.add_argument("--store", metavar="PATH", help=f"job store (SQLite); default {default_store_path()}")
    serve.add_argument("--bind", default="127.0.0.1", metavar="HOST", help="address to listen on (default 127.0.0.1; any other needs --keys)")
    serve.add_argument("--port", type=int, default=DEFAULT_REQUEST_PORT, help=f"request port (default {DEFAULT_REQUEST_PORT}; 0 picks a free one)")
    serve.add_argument("--events-port", type=int, metavar="PORT", help="event (PUB) port; default --port + 1 (a free one when --port is 0)")
    serve.add_argument("--endpoint", metavar="URL", help="full request endpoint instead of --bind/--port, e.g. ipc:///run/edidub.sock")
    serve.add_argument("--events-endpoint", metavar="URL", help="full event endpoint instead of --bind/--events-port")
    serve.add_argument("--keys", metavar="DIR", help="CURVE key folder with server.key_secret; the clients admitted are the connection "
                                                    "file's and those whose public keys are in DIR/authorized_clients/ (server.key alone admits nobody)")
    serve.add_argument("--connection-file", metavar="PATH",
                       help=f"where to write the endpoints and keys local clients use (default ${CONNECTION_ENV} or {default_connection_path()})")
    serve.add_argument("--no-auth", action="store_true",
                       help="admit any local process without keys (single-user machines only; any other user on this machine could "
                            "then submit jobs that run as you, read your job list and stop the daemon)")
    serve.add_argument("--runner", metavar="MODULE:FUNC", help="a shot runner instead of the engine's own (for tests and integrations)")
    serve.add_argument("--runner-factory", metavar="MODULE:FACTORY",
                       help="a factory(device) -> runner, called once per worker (default edidub_engine.render:runner_for_device: models loaded on the worker's device)")
    serve.add_argument("--precision", choices=("fp32", "bf16"), help="network precision (default: bf16 on GPUs, fp32 on CPU)")
    serve.add_argument("--compile", choices=("off", "default", "reduce-overhead", "max-autotune"),
                       help="torch.compile the networks (default: 'default' on GPUs, off on CPU; 'reduce-overhead' adds CUDA graphs)")
    serve.add_argument("--device", action="append", metavar="DEV", help="a worker per device: cpu, cuda:0, … (repeatable; default: every GPU, else cpu)")
    serve.add_argument("--max-queued", type=int, default=10_000, metavar="N", help="refuse submissions (BUSY) beyond N queued+running jobs")
    serve.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    serve.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("keys", help="CURVE key pairs for a daemon that listens beyond this machine")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = keys_sub.add_parser(
        "new",
        help="write a key pair NAME.key (public) and NAME.key_secret (private) into DIR",
        description=(
            "Write a CURVE key pair. For the daemon: `edidub keys new DIR` writes DIR/server.key and DIR/server.key_secret; "
            "start with `edidub serve --keys DIR` and give clients server.key. For a client: `--name alice`; put alice.key "
            "into the daemon's DIR/authorized_clients/ to admit it (server.key alone admits nobody: only the connection "
            "file's client and the listed ones get in). Never overwrites."
        ),
    )
    new.add_argument("folder", metavar="DIR", help="folder to write into (created, mode 0700)")
    new.add_argument("--name", default="server", help="file name stem (default server)")
    new.set_defaults(func=cmd_keys_new)


def _endpoints(args: argparse.Namespace) -> tuple[str, str]:
    host = args.bind if ":" not in args.bind else f"[{args.bind}]"
    if args.port == 0:
        request = f"tcp://{host}:*"
        events = f"tcp://{host}:{args.events_port}" if args.events_port else f"tcp://{host}:*"
    else:
        request = f"tcp://{host}:{args.port}"
        events = f"tcp://{host}:{args.events_port or args.port + 1}"
    return args.endpoint or request, args.events_endpoint or events


def cmd_serve(args: argparse.Namespace) -> int:
    """Handler of ``edidub serve``: runs until a shutdown request, SIGTERM or Ctrl-C."""
    from edidub_engine.daemon.server import Server, ServerSettings

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    request, events = _endpoints(args)
    if args.no_auth and args.connection_file:
        raise InvalidArgumentError("--no-auth writes no connection file; --connection-file makes no sense with it", hint="drop one of them")
    # read by the default runner factory in each worker thread (render.runner_for_device)
    for folder in args.models:
        if not Path(folder).expanduser().is_dir():
            raise ModelMissingError(f"--models {folder} is not a folder", hint="name a model bundle folder, or a folder of bundles")
    for name, value in (("EDIDUB_PRECISION", args.precision), ("EDIDUB_COMPILE", args.compile), ("EDIDUB_DEFAULT_MODEL", args.default_model),
                        ("EDIDUB_HUBERT", args.hubert),
                        ("EDIDUB_MODEL_DIRS", os.pathsep.join(str(Path(f).expanduser().resolve()) for f in args.models))):
        if value:
            os.environ[name] = value
    store_path = Path(args.store).expanduser() if args.store else default_store_path()
    adapted = Path(args.adapted_dir).expanduser().resolve() if args.adapted_dir else store_path.parent / "adapted"
    adapted.mkdir(parents=True, exist_ok=True)
    os.environ["EDIDUB_ADAPTED_DIR"] = str(adapted)
    devices = tuple(args.device) if args.device else detect_devices()
    settings = ServerSettings(
        store_path=store_path,
        adapted_dir=adapted,
        media_roots=tuple(Path(r) for r in args.media_root),
        output_root=Path(args.output_root) if args.output_root else None,
        request_endpoint=request,
        events_endpoint=events,
        keys_dir=Path(args.keys).expanduser() if args.keys else None,
        connection_file=None if args.no_auth else (Path(args.connection_file).expanduser() if args.connection_file else default_connection_path()),
        runner=args.runner or "edidub_engine.render:dub_shot",
        runner_factory=args.runner_factory or (None if args.runner else "edidub_engine.render:runner_for_device"),
        catalogue=None if args.runner or args.runner_factory else "edidub_engine.daemon.catalogue:served_bundles",
        devices=devices,
        max_queued=args.max_queued,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    server = Server(settings)
    server.start(background=True)
    ready = {"event": "ready", "requests": server.request_endpoint, "events": server.events_endpoint, "pid": os.getpid(),
             "connection_file": str(settings.connection_file) if settings.connection_file else None}
    print(json.dumps(ready), flush=True)
    if settings.connection_file is None:
        logging.getLogger("edidub.daemon").warning("--no-auth: any process on this machine, of any user, may use this daemon")

    def stop(signum, frame) -> None:  # the loop thread does the shutting down; this only asks
        server._stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    while not server.wait(0.5):
        pass
    server.stop()
    return 0


def cmd_keys_new(args: argparse.Namespace) -> int:
    """Handler of ``edidub keys new``."""
    import zmq
    import zmq.auth

    if not zmq.has("curve"):
        raise InvalidArgumentError("this pyzmq/libzmq was built without CURVE", hint="install pyzmq wheels, which include it")
    name = args.name
    if not name or "/" in name or name.startswith("."):
        raise InvalidArgumentError(f"--name {name!r} must be a plain file name stem")
    folder = Path(args.folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in (".key", ".key_secret"):
        if (folder / f"{name}{suffix}").exists():
            raise OutputExistsError(f"{folder / (name + suffix)} already exists; keys are never overwritten", hint="choose another --name or folder")
    public_file, secret_file = zmq.auth.create_certificates(str(folder), name)
    os.chmod(secret_file, 0o600)
    public, _ = zmq.auth.load_certificate(public_file)
    print(f"public key:  {public_file}\nsecret key:  {secret_file} (keep private)\npublic key text: {public.decode()}")
    return 0
