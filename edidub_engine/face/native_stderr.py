"""Keep MediaPipe's C++ start-up chatter off the user's terminal.

MediaPipe's graphs (TFLite, absl logging) print INFO/WARNING lines straight to
file descriptor 2, from their own threads, whenever a graph is built or
restarted ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager
requires a model with a single signature…").  They are not actionable and
bury our own messages; absl reads no log-level variable before it is
initialised, and the lines come asynchronously, so silencing fd 2 around a
call does not catch them.  A process that talks to people (the CLI, the
daemon) therefore routes fd 2 through a filter that drops exactly these lines
and passes everything else through unchanged.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

_CHATTER = re.compile(
    rb"^(?:W0000 [^\n]*inference_feedback_manager\.cc"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
_installed = False


def install_stderr_filter() -> None:
    """Route fd 2 through a thread that drops MediaPipe's start-up lines (idempotent)."""
    global _installed
    if _installed:
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):  # no real fd 2: nothing to filter
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    _installed = True

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            pending += chunk
            # Lines end in \n; progress bars redraw with \r: forward each piece as it completes.
            pieces = re.split(rb"(?<=[\r\n])", pending)
            pending = pieces.pop()
            out = b"".join(p for p in pieces if not _CHATTER.match(p))
            if out:
                os.write(original, out)
        if pending and not _CHATTER.match(pending):
            os.write(original, pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # closes the pipe's last write end, so the pump drains and stops
        thread.join(timeout=2.0)

    atexit.register(restore)
