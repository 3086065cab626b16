"""Run a stage of a shot on its own thread so the GPU never waits on decode, tracking or encode.

Two shapes, both with bounded queues (memory stays flat whatever the shot's
length) and errors carried back to the calling thread:

* :class:`Prefetch` runs an iterator ahead of its consumer (decode + track);
* :class:`Sink` applies a function to items in the order they were submitted
  (paste-back + encode).

Callbacks that talk to the outside (progress, cancellation) stay on the
calling thread: a daemon's sockets are not thread-safe.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Prefetch", "Sink"]

_DONE = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetch:
    """Iterate ``source`` on a thread, up to ``depth`` items ahead; iterate this object to consume them."""

    def __init__(self, source: Iterable[Any], *, depth: int, name: str):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._source = source
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put(item):
                    break
            else:
                self._put(_DONE)
        except BaseException as exc:  # carried to the consumer
            self._put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the thread (its iterator is closed on that thread) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink:
    """Call ``apply(item)`` on a thread for each submitted item, in order, with at most ``depth`` waiting."""

    def __init__(self, apply: Callable[[Any], None], *, depth: int, name: str):
        self._apply = apply
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None or self._stop.is_set():
                continue  # drain without working: the job is failing or stopping
            try:
                self._apply(item)
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: Any, *, while_waiting: Callable[[], None] | None = None) -> None:
        """Queue one item (waits while the queue is full); raises the thread's error, if it had one.
        ``while_waiting`` is called on this thread every poll while it waits (progress for the work the thread does)."""
        self._raise()
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()
                if while_waiting is not None:
                    while_waiting()

    def finish(self, *, while_waiting: Callable[[], None] | None = None) -> None:
        """Wait for every submitted item to be applied; raises the thread's error, if any."""
        self.submit(_DONE, while_waiting=while_waiting)
        while self._thread.is_alive():
            self._thread.join(_POLL_S)
            if while_waiting is not None:
                while_waiting()
        self._raise()

    def close(self) -> None:
        """Stop without finishing the queue (after a failure or cancel) and wait for the thread."""
        if self._thread.is_alive():
            self._stop.set()
            self._queue.put(_DONE)
            self._thread.join()
