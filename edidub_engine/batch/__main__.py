"""``python -m edidub_engine.batch CUT.otio --dub-track …``: ``edidub batch`` without the full CLI."""

from __future__ import annotations

import argparse
import sys

from edidub_engine.batch.commands import add_batch_parser
from edidub_engine.commandline import run_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edidub_engine.batch", description="EdiDub batch dubbing of a timeline.")
    add_batch_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(["batch", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args, interrupted="interrupted; run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
