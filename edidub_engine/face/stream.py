"""Track and align a shot as a stream: each frame comes out with its observation and its
smoothed alignment, ``radius`` frames after it went in.

Why a stream: a shot may be minutes long; holding it whole would make memory
follow its length.  The only frames held are the smoother's look-ahead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from edidub_engine.face.alignment import AlignmentSmoother, FaceAlignment
from edidub_engine.face.tracking import FaceObservation, FaceTracker


@dataclass
class TrackedFrame:
    frame_index: int
    frame: np.ndarray  # H×W×3 uint8 RGB, native size
    observation: FaceObservation
    alignment: FaceAlignment


def track_and_align(
    frames: Iterable[tuple[int, np.ndarray]],
    *,
    tracker: FaceTracker,
    radius: int = 4,
    is_cut: Callable[[np.ndarray], bool] | None = None,
) -> Iterator[TrackedFrame]:
    """Yield every input frame, in order, with its observation and smoothed alignment.

    ``is_cut(frame)``, when given, says a frame starts a new shot: the tracker
    forgets the face and smoothing does not cross the cut.
    """
    smoother = AlignmentSmoother(radius=radius)
    pending: deque[tuple[int, np.ndarray, FaceObservation]] = deque()

    def release(alignments: list[FaceAlignment]) -> Iterator[TrackedFrame]:
        for alignment in alignments:
            index, frame, observation = pending.popleft()
            assert index == alignment.frame_index, "smoother emitted out of order"
            yield TrackedFrame(index, frame, observation, alignment)

    for index, frame in frames:
        if is_cut is not None and is_cut(frame):
            yield from release(smoother.mark_cut())
            tracker.reset()
        observation = tracker.process(frame, index)
        pending.append((index, frame, observation))
        yield from release(smoother.push(observation))
    yield from release(smoother.flush())
