"""``python -m edidub_engine.daemon serve|keys …``: the daemon's commands without the full ``edidub`` CLI."""

from __future__ import annotations

import argparse
import sys

from edidub_engine.daemon.commands import add_daemon_parsers
from edidub_engine.errors import EdidubError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edidub_engine.daemon", description="The EdiDub daemon.")
    add_daemon_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdidubError as err:
        print(f"edidub {args.command}: error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  what to do: {err.hint}", file=sys.stderr)
        return err.exit_status


if __name__ == "__main__":
    sys.exit(main())
