"""``python -m edidub_engine.daemon serve|keys …``: the daemon's commands without the full ``edidub`` CLI."""

from __future__ import annotations

import argparse
import sys

from edidub_engine.daemon.commands import add_daemon_parsers
from edidub_engine.commandline import run_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edidub_engine.daemon", description="The EdiDub daemon.")
    add_daemon_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
