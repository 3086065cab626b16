"""A real, model-free shot runner for the daemon tests: copy the source range to a new clip.

It follows the production runner contract (``edidub_engine.render.dub_shot``):
decode the request's range with ``media.iter_frames``, write it with
``media.ClipWriter`` (temp name, atomic publish, never overwriting), report
progress per frame, poll ``should_cancel`` before every frame and raise
CancelledError.  ``frame_delay_s`` makes each frame slow for cancel/kill tests;
``make_runner`` (the ``--runner-factory`` of subprocess daemons) reads it from
``$EDIDUB_TEST_FRAME_DELAY_S``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edidub_engine.errors import CancelledError
from edidub_engine.shot import RenderedClip, ShotRequest

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"


@dataclass
class CopyRunner:
    frame_delay_s: float = 0.0
    device: str = "cpu"
    jobs_run: int = 0
    frames_after_cancel: list[int] = field(default_factory=list)

    def describe_models(self) -> list[dict]:
        return [{"name": "copy-runner", "present": True, "version": "test", "details": {"device": self.device}}]

    def __call__(
        self, request: ShotRequest, *, progress: Callable[[str, int, int], None], should_cancel: Callable[[], bool]
    ) -> RenderedClip:
        from edidub_engine.media import ClipWriter, Codec, iter_frames, probe_video

        self.jobs_run += 1
        info = probe_video(request.source.path)
        start, end = request.source.start_frame, request.source.end_frame
        codec = Codec(request.output.codec)
        out = Path(request.output.dir) / f"{request.output.name}{codec.extension}"
        total = end - start
        progress("copy", 0, total)
        writer = ClipWriter(out, width=info.width, height=info.height, rate=info.rate, codec=codec, timecode=info.timecode_at(start))
        with writer, contextlib.closing(iter_frames(info, start, end)) as frames:
            for done, (_index, rgb) in enumerate(frames):
                if should_cancel():
                    raise CancelledError(f"shot {request.shot_id!r} cancelled after {done} of {total} frames")
                writer.write(rgb)
                if self.frame_delay_s:
                    time.sleep(self.frame_delay_s)
                progress("copy", done + 1, total)
        return RenderedClip(
            shot_id=request.shot_id,
            path=str(writer.path),
            start_frame=start,
            end_frame=end,
            rate=info.rate,
            timecode=info.timecode_at(start),
            frames_edited=0,
            model={"name": "copy-runner", "version": "test"},
            record=request.record,
        )


def make_runner(device: str) -> CopyRunner:
    """``--runner-factory runners:make_runner`` for daemons run as subprocesses."""
    return CopyRunner(frame_delay_s=float(os.environ.get("EDIDUB_TEST_FRAME_DELAY_S", "0")), device=device)
