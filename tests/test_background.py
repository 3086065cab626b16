"""Stage threads: order kept, errors carried to the caller, and nothing left running after a stop."""

from __future__ import annotations

import threading
import time

import pytest

from edidub_engine.background import Prefetch, Sink


def test_prefetch_yields_in_order_and_closes_its_source_on_its_own_thread():
    closed_on = []

    def source():
        try:
            for i in range(1000):
                yield i
        finally:
            closed_on.append(threading.current_thread().name)

    with Prefetch(source(), depth=4, name="t-prefetch") as items:
        assert list(items) == list(range(1000))
    assert closed_on == ["t-prefetch"]


def test_prefetch_carries_the_error_and_stops_early_when_the_consumer_does():
    def failing():
        yield 1
        raise ValueError("tracker broke on frame 2")

    with Prefetch(failing(), depth=2, name="t-fail") as items, pytest.raises(ValueError, match="frame 2"):
        list(items)

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    prefetch = Prefetch(endless(), depth=3, name="t-endless")
    assert next(iter(prefetch)) == 0
    prefetch.close()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 6  # bounded look-ahead, and the thread is gone
    assert not any(t.name == "t-endless" for t in threading.enumerate())


def test_sink_applies_in_order_and_raises_the_threads_error_at_the_next_call():
    seen = []
    sink = Sink(seen.append, depth=2, name="t-sink")
    for i in range(100):
        sink.submit(i)
    sink.finish()
    assert seen == list(range(100))

    def apply(item):
        if item == 3:
            raise OSError("disk full")
        seen.append(item)

    seen.clear()
    sink = Sink(apply, depth=1, name="t-sink-fail")
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            sink.submit(i)
        sink.finish()
    sink.close()
    assert seen == [0, 1, 2]
    assert not any(t.name == "t-sink-fail" for t in threading.enumerate())
