"""``python -m plugins.premiere_bridge [options]``: the Premiere bridge without the full ``edidub`` CLI."""

from __future__ import annotations

import argparse
import sys

from edidub_engine.errors import EdidubError

from .commands import add_premiere_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.premiere_bridge", description="The EdiDub bridge for the Premiere Pro panel.")
    add_premiere_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdidubError as err:
        print(f"edidub bridge premiere: error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  what to do: {err.hint}", file=sys.stderr)
        return err.exit_status


if __name__ == "__main__":
    sys.exit(main())
