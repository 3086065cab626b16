"""``python -m plugins.premiere_bridge [options]``: the Premiere bridge without the full ``edidub`` CLI."""

from __future__ import annotations

import argparse
import sys

from edidub_engine.commandline import run_command

from .commands import add_premiere_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.premiere_bridge", description="The EdiDub bridge for the Premiere Pro panel.")
    add_premiere_arguments(parser)
    args = parser.parse_args(argv)
    args.command = "bridge premiere"  # how run_command names it in messages
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
