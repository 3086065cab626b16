"""``edidub analyze``: one pass over a clip range, a report per shot.

One decode, one tracker, frames streamed: memory does not grow with the
clip.  For every frame we record whether the chosen face was found, its head
pose (paper appendix C.2) and, every ``occlusion_every`` frames, how many face
landmarks a hand covers (appendix C.3).  Cuts split the range into shots; the
tracker and the hand tracker start afresh at each cut so a new shot never
inherits the previous shot's face.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..evaluation.curation import (
    OCCLUDED_TOTAL_LANDMARKS,
    HandOcclusionDetector,
    HeadPose,
    head_pose,
    pose_score,
)
from ..face import FaceSelector, FaceStatus, FaceTracker
from ..errors import InvalidArgumentError
from ..media import VideoInfo, iter_frames, probe_video
from ..media.summary import picture_summary
from .cuts import CutDetector

#: Beyond this head rotation (the pose score, any axis) the lower face is seen from the side.
PROFILE_POSE_DEG = 30.0

#: A frame counts as occluded when a hand covers at least this many face landmarks.
#: One or two covered landmarks happen when a hand merely passes the jaw line.
OCCLUDED_FRAME_MIN_LANDMARKS = 3

ProgressCallback = Callable[[int, int], None]


@dataclass
class FrameRecord:
    frame: int
    status: str
    cut: bool = False
    pitch_deg: float | None = None
    yaw_deg: float | None = None
    roll_deg: float | None = None
    occlusion: int | None = None  # None: not sampled


@dataclass
class ShotAnalysis:
    """The report of one shot (frames between two cuts) — the JSON the CLI writes."""

    start_frame: int
    end_frame: int
    start_timecode: str
    end_timecode: str
    frames: int
    frames_with_face: int
    no_face: list[list[int]]
    low_confidence: list[list[int]]
    pose_score_deg: float | None
    occlusion_sampled_frames: int
    occlusion_total_landmarks: int
    occlusion_max_per_frame: int
    occluded: bool
    occluded_frames: list[int]

    def dubbing(self) -> str:
        """What ``edidub dub`` will do with this shot, in one line for an editor."""
        if self.frames_with_face == 0:
            return "passed through unchanged: no face to dub"
        parts = ["dubbed" if self.frames_with_face == self.frames else
                 f"dubbed where the face is found ({self.frames_with_face} of {self.frames} frames; the rest passed through)"]
        if self.occluded_frames:
            parts.append(f"expect artefacts where a hand covers the mouth ({len(self.occluded_frames)} sampled frame(s))")
        if self.pose_score_deg is not None and self.pose_score_deg > PROFILE_POSE_DEG:
            parts.append(f"head turned up to {self.pose_score_deg:.0f}°: expect a weaker match than on a frontal face")
        return "; ".join(parts)


@dataclass
class ClipAnalysis:
    file: str
    rate: str
    start_frame: int
    end_frame: int
    start_timecode: str
    end_timecode: str
    width: int
    height: int
    variable_frame_rate: bool
    face_selector: str
    occlusion_every: int
    cuts: list[int]
    shots: list[ShotAnalysis]
    frames: list[FrameRecord] = field(default_factory=list)
    picture: dict = field(default_factory=dict)  # pixel format, bit depth, colour tags and what a dub keeps

    def to_dict(self, *, per_frame: bool = False) -> dict:
        out = asdict(self)
        if not per_frame:
            out.pop("frames")
        return out

    @property
    def frames_with_face(self) -> int:
        return sum(s.frames_with_face for s in self.shots)


def analyze_clip(
    path: str | Path,
    *,
    start_frame: int = 0,
    end_frame: int | None = None,
    selector: FaceSelector | None = None,
    occlusion_every: int = 1,
    on_progress: ProgressCallback | None = None,
) -> ClipAnalysis:
    """Analyse ``[start_frame, end_frame)`` of a clip (the whole clip by default)."""
    info = probe_video(path)
    end_frame = info.frame_count if end_frame is None else end_frame
    if occlusion_every < 1:
        raise InvalidArgumentError(
            f"--occlusion-every must be 1 or more, not {occlusion_every}",
            hint="use 1 to check every frame, 10 to sample every tenth frame as the paper does",
        )
    selector = selector or FaceSelector.largest()
    records: list[FrameRecord] = []
    cuts = CutDetector()
    total = end_frame - start_frame
    with FaceTracker(selector=selector) as tracker, HandOcclusionDetector() as hands:
        for n, (index, frame) in enumerate(iter_frames(info, start_frame, end_frame)):
            record = FrameRecord(frame=index, status=FaceStatus.NO_FACE.value)
            if cuts.is_cut(frame):
                record.cut = True
                tracker.reset()
                hands.reset()
            observation = tracker.process(frame, index)
            record.status = observation.status.value
            landmarks = observation.landmarks if observation.status is FaceStatus.OK else None
            if landmarks is not None:
                pose = head_pose(landmarks)
                record.pitch_deg, record.yaw_deg, record.roll_deg = (
                    round(pose.pitch_deg, 2), round(pose.yaw_deg, 2), round(pose.roll_deg, 2),
                )
            if (index - start_frame) % occlusion_every == 0:
                record.occlusion = hands.count(frame, landmarks)
            records.append(record)
            if on_progress is not None:
                on_progress(n + 1, total)
    cut_frames = [r.frame for r in records if r.cut]
    bounds = [start_frame, *cut_frames, end_frame]
    shots = [
        _summarise(info, records[a - start_frame : b - start_frame], a, b)
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    return ClipAnalysis(
        file=str(info.path),
        rate=f"{info.rate.numerator}/{info.rate.denominator}",
        start_frame=start_frame,
        end_frame=end_frame,
        start_timecode=info.timecode_at(start_frame),
        end_timecode=info.timecode_at(end_frame),
        width=info.width,
        height=info.height,
        variable_frame_rate=info.variable_frame_rate,
        face_selector=str(selector),
        occlusion_every=occlusion_every,
        cuts=cut_frames,
        shots=shots,
        frames=records,
        picture=picture_summary(info),
    )


def _summarise(info: VideoInfo, records: list[FrameRecord], start: int, end: int) -> ShotAnalysis:
    score = pose_score([HeadPose(r.pitch_deg, r.yaw_deg, r.roll_deg) for r in records if r.pitch_deg is not None])
    sampled = [r for r in records if r.occlusion is not None]
    counts = [r.occlusion for r in sampled]
    total = int(sum(counts))
    return ShotAnalysis(
        start_frame=start,
        end_frame=end,
        start_timecode=info.timecode_at(start),
        end_timecode=info.timecode_at(end),
        frames=end - start,
        frames_with_face=sum(r.status == FaceStatus.OK.value for r in records),
        no_face=_ranges(r.frame for r in records if r.status == FaceStatus.NO_FACE.value),
        low_confidence=_ranges(r.frame for r in records if r.status == FaceStatus.LOW_CONFIDENCE.value),
        pose_score_deg=score,
        occlusion_sampled_frames=len(sampled),
        occlusion_total_landmarks=total,
        occlusion_max_per_frame=max(counts, default=0),
        occluded=total > OCCLUDED_TOTAL_LANDMARKS,
        occluded_frames=[r.frame for r in sampled if r.occlusion >= OCCLUDED_FRAME_MIN_LANDMARKS],
    )


def _ranges(frames: Iterable[int]) -> list[list[int]]:
    """Collapse sorted frame numbers into half-open ``[start, end)`` ranges."""
    out: list[list[int]] = []
    for f in frames:
        if out and out[-1][1] == f:
            out[-1][1] = f + 1
        else:
            out.append([f, f + 1])
    return out
