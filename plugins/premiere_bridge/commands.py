"""``edidub bridge premiere``: the argparse wiring, so cli.py adds it with one line.

    from plugins.premiere_bridge.commands import add_bridge_parser
    add_bridge_parser(sub)

The same parser backs ``python -m plugins.premiere_bridge``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import CODECS

__all__ = ["add_bridge_parser", "add_premiere_arguments", "cmd_premiere"]


def add_premiere_arguments(parser: argparse.ArgumentParser) -> None:
    from .server import DEFAULT_PORT
    from .token import default_token_path

    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"WebSocket port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--daemon", metavar="ENDPOINT", help="the daemon's request endpoint (default $EDIDUB_DAEMON, else the one in the daemon's connection file, else tcp://127.0.0.1:47610)")
    parser.add_argument("--server-key", metavar="KEY", help="the daemon's public key (server.key) when it uses CURVE")
    parser.add_argument("--output-dir", metavar="DIR", help="where dubbed clips go (default: the daemon's --output-root, else beside each source clip)")
    parser.add_argument("--codec", choices=CODECS, default="prores_hq", help="codec of the dubbed clips (default %(default)s)")
    parser.add_argument("--adapt-minutes", type=float, default=20.0, metavar="N",
                        help="budget of the panel's Adapt to actor, in minutes (default %(default)s; 0: none, then --adapt-steps)")
    parser.add_argument("--adapt-steps", type=int, metavar="N", help="budget of the panel's Adapt to actor, in training steps")
    parser.add_argument("--token-file", metavar="PATH", help=f"the token file (default {default_token_path()})")
    parser.add_argument("--new-token", action="store_true", help="replace the token (panels must be given the new one)")
    parser.add_argument("--print-token", action="store_true", help="print the token file's path and the token, then exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    parser.set_defaults(func=cmd_premiere)


def add_bridge_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bridge`` with ``bridge premiere`` on ``subparsers``."""
    bridge = subparsers.add_parser("bridge", help="local bridges between editing applications' panels and the daemon")
    kinds = bridge.add_subparsers(dest="bridge_command", metavar="APP", required=True)
    premiere = kinds.add_parser(
        "premiere",
        help="serve the Premiere Pro panel: a WebSocket on 127.0.0.1 that forwards dub requests to the daemon",
        description=(
            "Run the bridge the EdiDub Premiere Pro panel connects to. It listens on 127.0.0.1 only, refuses any panel "
            "whose first message lacks the token from the per-user token file, converts Premiere tick times to frames, "
            "submits the shots to the EdiDub daemon (`edidub serve`) and pushes progress and results to the panel."
        ),
    )
    add_premiere_arguments(premiere)


def cmd_premiere(args: argparse.Namespace) -> int:
    from .server import Bridge, BridgeSettings
    from .token import ensure_token

    if not 0 <= args.port <= 65535:
        raise InvalidArgumentError(f"--port {args.port} is not a port number")
    if args.output_dir is not None and not Path(args.output_dir).is_dir():
        raise InvalidArgumentError(f"--output-dir {args.output_dir} is not a folder")
    adapt_minutes = args.adapt_minutes or None
    if (adapt_minutes is not None and adapt_minutes < 0) or (args.adapt_steps is not None and args.adapt_steps <= 0) \
            or (adapt_minutes is None and args.adapt_steps is None):
        raise InvalidArgumentError("give Adapt to actor a budget: --adapt-minutes N (> 0) and/or --adapt-steps N (> 0)")
    token, token_path = ensure_token(Path(args.token_file) if args.token_file else None, new=args.new_token)
    if args.print_token:
        print(f"token file: {token_path}\ntoken: {token}")
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    settings = BridgeSettings(
        token=token, port=args.port, daemon_endpoint=args.daemon, server_key=args.server_key,
        output_dir=str(Path(args.output_dir).resolve()) if args.output_dir else None, codec=args.codec,
        adapt_minutes=adapt_minutes, adapt_steps=args.adapt_steps,
    )

    async def run() -> None:
        bridge = Bridge(settings)
        await bridge.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows
                pass
        print(json.dumps({"event": "ready", "url": bridge.url, "token_file": str(token_path), "pid": os.getpid()}), flush=True)
        try:
            await stop.wait()
        finally:
            await bridge.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0
