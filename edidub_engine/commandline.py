"""What every EdiDub entry point shares: running a command, quiet native logs, progress bars.

``edidub`` (``cli.py``), its sub-command modules and the ``python -m
edidub_engine.daemon|batch|training.commands`` entry points all sit above this
module and never import one another for these helpers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from .errors import EdidubError

__all__ = ["StageProgress", "advance", "quiet_native_logging", "run_command"]


def quiet_native_logging() -> None:
    """MediaPipe prints start-up chatter (C++ logs, a protobuf deprecation); keep it off the terminal
    unless ``EDIDUB_VERBOSE`` is set (``edidub --verbose``)."""
    import warnings

    if os.environ.get("EDIDUB_VERBOSE", "") not in ("", "0"):
        return

    from .face.native_stderr import install_stderr_filter

    install_stderr_filter()
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")


def run_command(args: argparse.Namespace, *, interrupted: str = "interrupted") -> int:
    """Run a parsed sub-command the way every EdiDub entry point does: an EdidubError becomes its
    message, a hint and its exit status; anything unexpected is logged with its traceback to a file
    whose path is printed. Third-party log chatter (MediaPipe, TFLite, protobuf) is kept off the
    terminal unless ``EDIDUB_VERBOSE=1`` (``edidub --verbose``)."""
    quiet_native_logging()
    try:
        return int(args.func(args) or 0)
    except EdidubError as err:
        print(f"edidub {args.command}: error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  what to do: {err.hint}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print(f"edidub {args.command}: {interrupted}", file=sys.stderr)
        return 130
    except Exception:  # an engine bug: keep the traceback for us, not on the user's screen
        log = Path(tempfile.gettempdir()) / "edidub-crash.log"
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"--- edidub {' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n")
        print(
            f"edidub {args.command}: internal error: {sys.exc_info()[1]!s}\n"
            f"  the details are in {log}; please attach it to a bug report",
            file=sys.stderr,
        )
        return 70


def advance(bar, done: int) -> None:
    """Move a tqdm bar to ``done`` through its own counter (setting ``n`` shows nonsense rates and no ETA)."""
    if done != bar.n:
        bar.update(done - bar.n)
    if bar.total and bar.n >= bar.total:
        bar.refresh()  # the end is always drawn, whatever tqdm's throttle skipped


class StageProgress:
    """A tqdm bar on stderr per stage (count, rate, ETA), handed out as ``update(stage, done, total)``.

    Each stage keeps its own bar for the whole run, one line each: a streamed dub interleaves
    track, lip-sync and render, and a bar rebuilt at every switch would show false rates.
    ``units`` names the unit of stages ending in a key (default "frame"); disabled, the
    context gives ``None``.
    """

    def __init__(self, *, enabled: bool = True, units: dict[str, str] | None = None):
        self.enabled, self.units = enabled, dict(units or {})
        self._bars: dict[str, Any] = {}

    def __enter__(self):
        if not self.enabled:
            return None
        from tqdm import tqdm

        def update(stage: str, done: int, total: int) -> None:
            bar = self._bars.get(stage)
            if bar is None:
                unit = next((u for name, u in self.units.items() if stage.endswith(name)), "frame")
                bar = self._bars[stage] = tqdm(total=max(total, 0), desc=stage, unit=unit, file=sys.stderr, leave=False,
                                               position=len(self._bars))
            bar.total = max(total, 0)
            advance(bar, done)

        return update

    def __exit__(self, *exc) -> None:
        for bar in reversed(list(self._bars.values())):
            bar.close()
        self._bars.clear()
