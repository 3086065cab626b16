"""Benchmark curation as the paper's appendix C does it: a front set and an occluded set.

* Front (C.2): the pose score of a clip is the largest absolute pitch, yaw or
  roll of the head over the sampled frames (:func:`~.curation.pose_score`).
  A clip is discarded at once when it is shorter than ``min_duration_s`` (6 s in
  the paper) and as soon as a sampled frame has no face or its pose exceeds the
  threshold (early exit).  Kept clips are sorted by ascending pose score.
* Occluded (C.3): every ``every``-th frame (10 in the paper), the face landmarks
  inside the convex hull of a detected hand are counted; a clip whose total
  exceeds 30 is occluded.  The total and the largest per-frame count are kept.

Both measures are taken in one decode per clip; decoding stops once both are
decided (front rejected or fully sampled, occlusion over the limit or fully
sampled).  Clips are spread over CPU worker processes.

The front threshold.  The paper's figure did not survive in our copy of the
text, so :data:`FRONT_THRESHOLD_DEG` is ours: 20°, the usual bound of a
"near-frontal" face in face-analysis work, and it falls with a wide margin on
both sides of what we measured on ``../shared/footage`` (every 10th frame):
the static, frontal GRID speakers score 4–10.5°, a frontal interview with mild
head motion (retalking_face2) 12.6°, while the three-quarter interview
(astorfi) reaches 29.7° (yaw 30° and roll -15° at its first frame; the face
mesh reads a near-profile view smaller than it is, so a threshold of 25–30°
would let such a view pass).  Frame-to-frame pose noise of the mesh is a few
degrees, and the clip's score is the worst frame, so a bound near 10° would
reject still studio footage.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .curation import OCCLUDED_TOTAL_LANDMARKS, head_pose

#: Our choice for the lost front threshold of appendix C.2 (see the module text for why).
FRONT_THRESHOLD_DEG = 20.0
#: Appendix C.2: shorter clips are discarded before any frame is read.
MIN_FRONT_DURATION_S = 6.0
#: Appendix C.3: every 10th frame is sampled.
SAMPLE_EVERY = 10

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".avi", ".webm", ".m4v", ".mxf")


@dataclass
class ClipScore:
    """What curation measured on one clip."""

    path: str
    duration_s: float
    frames: int
    sampled_frames: int = 0
    pose_score_deg: float | None = None
    front: bool = False
    front_reason: str = ""  # why not front ("" when front)
    occlusion_total_landmarks: int = 0
    occlusion_max_per_frame: int = 0
    occluded: bool = False
    stopped_at_frame: int | None = None  # early exit: the frame after which nothing more was read
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CurationResult:
    threshold_deg: float
    min_duration_s: float
    every: int
    occluded_total_landmarks: int
    clips: list[ClipScore] = field(default_factory=list)

    @property
    def front(self) -> list[ClipScore]:
        """Front-set clips, sorted by ascending pose score (appendix C.2)."""
        return sorted((c for c in self.clips if c.front), key=lambda c: c.pose_score_deg or 0.0)

    @property
    def occluded(self) -> list[ClipScore]:
        """Occluded-set clips, most occluded first."""
        return sorted((c for c in self.clips if c.occluded), key=lambda c: -c.occlusion_total_landmarks)

    def to_dict(self) -> dict:
        return {
            "threshold_deg": self.threshold_deg,
            "min_duration_s": self.min_duration_s,
            "every": self.every,
            "occluded_total_landmarks": self.occluded_total_landmarks,
            "front": [Path(c.path).name for c in self.front],
            "occluded": [Path(c.path).name for c in self.occluded],
            "clips": [c.to_dict() for c in self.clips],
        }


def score_clip(
    path: str | os.PathLike,
    *,
    threshold_deg: float = FRONT_THRESHOLD_DEG,
    min_duration_s: float = MIN_FRONT_DURATION_S,
    every: int = SAMPLE_EVERY,
    early_exit: bool = True,
    measure_occlusion: bool = True,
) -> ClipScore:
    """Front and occlusion scores of one clip (one decode, early exit; ``measure_occlusion=False``: front only)."""
    from ..face import FaceTracker
    from ..media import iter_frames, probe_video
    from .curation import HandOcclusionDetector, landmarks_inside_hulls

    info = probe_video(path)
    duration = info.frame_count / float(info.rate)
    score = ClipScore(path=str(info.path), duration_s=round(duration, 3), frames=info.frame_count)
    front_open = True
    if duration + 1e-6 < min_duration_s:
        front_open = False
        score.front_reason = f"shorter than {min_duration_s:g} s"
    worst = -math.inf
    occlusion_open = measure_occlusion
    # Hands run in static mode: sampled frames are 10 apart, tracking between them would guess.
    with FaceTracker() as tracker, HandOcclusionDetector(static=True) as hands:
        for index, frame in iter_frames(info):
            if index % every:
                continue
            score.sampled_frames += 1
            obs = tracker.process(frame, index)
            landmarks = obs.landmarks if obs.ok else None
            if landmarks is None:
                if front_open:
                    front_open = False
                    score.front_reason = f"no face in sampled frame {index}"
            else:
                pose = head_pose(landmarks)
                worst = max(worst, pose.max_abs_deg)
                if front_open and pose.max_abs_deg > threshold_deg:
                    front_open = False
                    score.front_reason = f"pose {pose.max_abs_deg:.1f}° > {threshold_deg:g}° at frame {index}"
            if occlusion_open:
                covered = 0
                if landmarks is not None:
                    covered = landmarks_inside_hulls(landmarks[:, :2], hands.hands(frame))
                score.occlusion_total_landmarks += covered
                score.occlusion_max_per_frame = max(score.occlusion_max_per_frame, covered)
                if score.occlusion_total_landmarks > OCCLUDED_TOTAL_LANDMARKS:
                    occlusion_open = False
            if early_exit and not front_open and not occlusion_open:
                score.stopped_at_frame = index
                break
    score.pose_score_deg = None if worst == -math.inf else round(worst, 2)
    score.occluded = score.occlusion_total_landmarks > OCCLUDED_TOTAL_LANDMARKS
    if front_open and score.pose_score_deg is None:
        front_open, score.front_reason = False, "no face"
    score.front = front_open
    return score


def _score_safely(path: str, kwargs: dict) -> ClipScore:
    try:
        return score_clip(path, **kwargs)
    except Exception as exc:  # one broken file must not stop a million-clip scan
        return ClipScore(path=str(path), duration_s=0.0, frames=0, front_reason="error", error=f"{type(exc).__name__}: {exc}")


def find_clips(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursive), sorted."""
    root = Path(folder).expanduser()
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def curate(
    clips: Iterable[str | os.PathLike],
    *,
    threshold_deg: float = FRONT_THRESHOLD_DEG,
    min_duration_s: float = MIN_FRONT_DURATION_S,
    every: int = SAMPLE_EVERY,
    workers: int | None = None,
    measure_occlusion: bool = True,
    on_clip: Callable[[ClipScore], None] | None = None,
) -> CurationResult:
    """Score every clip (in ``workers`` processes; 1 runs in this process) and sort them into the two sets."""
    paths = [str(Path(p).expanduser()) for p in clips]
    kwargs = dict(threshold_deg=threshold_deg, min_duration_s=min_duration_s, every=every, measure_occlusion=measure_occlusion)
    workers = max(1, min(workers or os.cpu_count() or 1, len(paths) or 1))
    result = CurationResult(threshold_deg, min_duration_s, every, OCCLUDED_TOTAL_LANDMARKS)
    if workers == 1:
        scores = (_score_safely(p, kwargs) for p in paths)
        for s in scores:
            result.clips.append(s)
            if on_clip:
                on_clip(s)
    else:
        import multiprocessing

        # spawn: MediaPipe graphs do not survive a fork
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for s in pool.map(_score_safely, paths, [kwargs] * len(paths)):
                result.clips.append(s)
                if on_clip:
                    on_clip(s)
    return result


def format_curation(result: CurationResult) -> str:
    lines = [f"{'clip':34s} {'dur s':>6s} {'pose°':>6s} {'front':>5s} {'occl.':>6s} {'max':>4s} {'occluded':>8s}  note"]
    for c in result.clips:
        pose = "—" if c.pose_score_deg is None else f"{c.pose_score_deg:.1f}"
        lines.append(
            f"{Path(c.path).name[:34]:34s} {c.duration_s:6.2f} {pose:>6s} {'yes' if c.front else 'no':>5s} "
            f"{c.occlusion_total_landmarks:6d} {c.occlusion_max_per_frame:4d} {'yes' if c.occluded else 'no':>8s}  "
            f"{c.error or c.front_reason}"
        )
    lines.append(f"front set ({len(result.front)}): {', '.join(Path(c.path).name for c in result.front) or 'none'}")
    lines.append(f"occluded set ({len(result.occluded)}): {', '.join(Path(c.path).name for c in result.occluded) or 'none'}")
    return "\n".join(lines)


__all__ = [
    "FRONT_THRESHOLD_DEG",
    "MIN_FRONT_DURATION_S",
    "SAMPLE_EVERY",
    "ClipScore",
    "CurationResult",
    "curate",
    "find_clips",
    "format_curation",
    "score_clip",
]

