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
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import EdidubError

__all__ = ["StageProgress", "advance", "log_line", "quiet_native_logging", "run_command"]


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
    """Progress per stage on stderr: a tqdm bar each (count, rate, ETA) on a terminal, else log lines.

    Each stage keeps its own bar for as long as it runs, one line each: a streamed dub
    interleaves track, lip-sync and render, and a bar rebuilt at every switch would show
    false rates.  When stderr is not a terminal (a log file, a render-farm job) each stage
    prints one line when it starts and one when it ends (with its count and time), instead
    of bar redraws.  ``units`` names the unit of stages ending in a key (default "frame");
    ``first_position`` leaves lines above for another bar (``edidub batch``'s overall bar).
    Used as a context manager it hands out ``update(stage, done, total)``, or ``None`` when
    disabled (``-q``).
    """

    def __init__(self, *, enabled: bool = True, units: dict[str, str] | None = None, log: bool | None = None, first_position: int = 0):
        self.enabled, self.units = enabled, dict(units or {})
        self.log = (not sys.stderr.isatty()) if log is None else log
        self._bars: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._free: list[int] = []
        self._next = first_position

    def __enter__(self):
        return self.update if self.enabled else None

    def __exit__(self, *exc) -> None:
        self.close()

    def unit(self, stage: str) -> str:
        return next((u for name, u in self.units.items() if stage.endswith(name)), "frame")

    def update(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        done, total = int(done), max(int(total), 0)
        if self.log:
            self._line(stage, done, total)
            return
        bar = self._bars.get(stage)
        if bar is None:
            from tqdm import tqdm

            position = self._free.pop(0) if self._free else self._take()
            bar = self._bars[stage] = tqdm(total=total, desc=stage, unit=self.unit(stage), file=sys.stderr, leave=False, position=position)
        bar.total = total
        advance(bar, done)

    def _take(self) -> int:
        self._next += 1
        return self._next - 1

    def _line(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        unit = self.unit(stage)
        if stage not in self._started:
            self._started[stage] = now
            log_line(f"{stage}: started, {total} {unit}s")
        if total and done >= total and self._started.get(stage) is not None:
            log_line(f"{stage}: done, {done} {unit}s in {now - self._started[stage]:.1f} s")
            self._started[stage] = None  # ended: no second line (a later update of the same stage stays quiet)

    def close(self, prefix: str = "") -> None:
        """Close the bars of stages that start with ``prefix`` (all by default), freeing their lines."""
        for stage in [k for k in self._bars if k.startswith(prefix)]:
            bar = self._bars.pop(stage)
            self._free.append(abs(bar.pos))
            bar.close()
        self._free.sort()
        for stage in [k for k in self._started if k.startswith(prefix)]:
            if self._started.pop(stage) is not None:
                log_line(f"{stage}: stopped before its end")


def log_line(text: str) -> None:
    """A timestamped progress line on stderr: the log form of a bar."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)
