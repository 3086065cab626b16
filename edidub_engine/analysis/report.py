"""``edidub analyze``: one pass over a clip range, a report per shot.

One decode, one tracker, frames streamed: memory does not grow with the
clip.  For every frame we record whether the chosen face was found, its head
pose (paper appendix C.2) and, every ``occlusion_every`` frames, how many face
landmarks a hand covers (appendix C.3).  Cuts split the range into shots; the
tracker and the hand tracker start afresh at each cut so a new shot never
inherits the previous shot's face.

With ``speakers``, the tracker follows every face of each shot with its identity
(:class:`~edidub_engine.face.faces.MultiFaceTracker`, the chosen face among them),
keeps one mouth opening per face and frame, and :mod:`.speakers` decides from them
and the clip's sound who speaks when.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..evaluation.curation import (
    OCCLUDED_TOTAL_LANDMARKS,
    HandOcclusionDetector,
    HeadPose,
    head_pose,
    pose_score,
)
from ..face import ALL_FACES, FaceObservation, FacesFrame, FaceSelector, FaceStatus, FaceTracker, MultiFaceTracker, SelectorMode
from ..errors import InvalidArgumentError
from ..media import VideoInfo, iter_frames, load_audio_for_frames, probe_video
from ..media.summary import picture_summary
from ..mouth.drive import loudness_db
from ..mouth.shape import mouth_opening
from .cuts import CutDetector
from .speakers import SpeakersConfig, find_speakers, mask_ranges

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
class SpeakingFace:
    """One face of one shot with its speaking stretches (``--speakers``): frame ranges are half-open and
    count from the clip's first frame, ``index`` counts the shot's faces left to right as ``--face N`` does."""

    index: int
    shot: int  # 0-based, in the report's shots
    speaking: list[list[int]]
    frames: int  # frames of the shot
    frames_found: int  # frames with the face's landmarks (status ok)
    missing: list[list[int]]  # ranges where the face was not seen
    lost: list[list[int]]  # ranges where its identity was lost: since it was last sure of, to where it was seen unsure
    side: str  # left, centre or right: where its box's centre lies in the frame
    box: list[float] | None  # [x0, y0, x1, y1] median landmark box, frame pixels
    confidence: float  # share of voiced frames with a clear-cut decision (see speakers.SpeakerTurns.confidence)


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
    faces: list[SpeakingFace] | None = None  # with speakers: every face of every shot, who speaks when
    speakers: dict | None = None  # with speakers: the rules' settings

    def to_dict(self, *, per_frame: bool = False) -> dict:
        out = asdict(self)
        if not per_frame:
            out.pop("frames")
        if self.faces is None:
            out.pop("faces")
            out.pop("speakers")
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
    speakers: bool = False,
    speakers_config: SpeakersConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> ClipAnalysis:
    """Analyse ``[start_frame, end_frame)`` of a clip (the whole clip by default); with ``speakers``, also
    every face of each shot and who speaks when (the clip must have sound)."""
    info = probe_video(path)
    end_frame = info.frame_count if end_frame is None else end_frame
    if occlusion_every < 1:
        raise InvalidArgumentError(
            f"--occlusion-every must be 1 or more, not {occlusion_every}",
            hint="use 1 to check every frame, 10 to sample every tenth frame as the paper does",
        )
    if speakers and not info.has_audio:
        raise InvalidArgumentError(
            f"--speakers hears who speaks in the clip's own sound, and {info.path.name} has no audio stream",
            hint="analyze the take with its production sound, or leave out --speakers",
        )
    selector = selector or FaceSelector.largest()
    records: list[FrameRecord] = []
    mouths = _Mouths(start_frame) if speakers else None
    cuts = CutDetector()
    total = end_frame - start_frame
    tracker = MultiFaceTracker([selector, ALL_FACES]) if speakers else FaceTracker(selector=selector)
    with tracker, HandOcclusionDetector() as hands:
        for n, (index, frame) in enumerate(iter_frames(info, start_frame, end_frame)):
            record = FrameRecord(frame=index, status=FaceStatus.NO_FACE.value)
            if cuts.is_cut(frame):
                record.cut = True
                if mouths is not None:
                    mouths.cut(index, tracker.lost_ranges())
                tracker.reset()
                hands.reset()
            observation = tracker.process(frame, index)
            if mouths is not None:
                observation = mouths.add(observation, selector)
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
        if mouths is not None:
            mouths.cut(end_frame, tracker.lost_ranges())
    cut_frames = [r.frame for r in records if r.cut]
    bounds = [start_frame, *cut_frames, end_frame]
    shots = [
        _summarise(info, records[a - start_frame : b - start_frame], a, b)
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    faces = None
    if mouths is not None:
        speakers_config = speakers_config or SpeakersConfig()
        faces = mouths.speakers(info, start_frame, end_frame, speakers_config)
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
        faces=faces,
        speakers=None if faces is None else speakers_config.to_dict(),
    )


class _Mouths:
    """Per shot and face, what the speakers' decision needs of each frame: the mouth opening (NaN unless the
    face's landmarks are sure), whether the face was seen, and its box; a few numbers, not the landmarks."""

    def __init__(self, start_frame: int):
        self._start = start_frame
        self._faces: dict[int, dict[str, list]] = {}
        self._shots: list[tuple[int, int, dict[int, dict[str, list]], dict]] = []

    def add(self, frame: FacesFrame, selector: FaceSelector) -> FaceObservation:
        """Keep what the decision needs of ``frame``; returns the chosen face's observation."""
        for key, obs in frame.faces.items():
            if key.mode is not SelectorMode.INDEX:
                continue
            face = self._faces.setdefault(int(key.index), {"opening": {}, "seen": [], "boxes": []})
            if obs.status is not FaceStatus.NO_FACE:
                face["seen"].append(frame.frame_index)
            if obs.status is FaceStatus.OK:
                face["opening"][frame.frame_index] = float(mouth_opening(obs.landmarks)[0])
                face["boxes"].append(obs.box)
        return frame.faces[selector]

    def cut(self, frame_index: int, lost: dict) -> None:
        """The shot ends before ``frame_index``; ``lost`` are its tracker's unsure ranges."""
        if frame_index > self._start:
            self._shots.append((self._start, frame_index, self._faces, lost))
        self._start, self._faces = frame_index, {}

    def speakers(self, info: VideoInfo, start: int, end: int, config: SpeakersConfig) -> list[SpeakingFace]:
        level = loudness_db(load_audio_for_frames(info, start, end), info.rate, end - start)
        out: list[SpeakingFace] = []
        for shot, (a, b, faces, lost) in enumerate(self._shots):
            numbers = sorted(faces)
            openings = np.full((len(numbers), b - a), np.nan)
            for row, number in enumerate(numbers):
                for frame_index, value in faces[number]["opening"].items():
                    openings[row, frame_index - a] = value
            turns = find_speakers(openings, level[a - start : b - start], info.rate, config)
            for row, number in enumerate(numbers):
                face = faces[number]
                seen = np.zeros(b - a, bool)
                seen[np.array(face["seen"], int) - a] = True
                box = np.median(np.array(face["boxes"]), axis=0) if face["boxes"] else None
                out.append(SpeakingFace(
                    index=number, shot=shot, speaking=turns.stretches(row, a), frames=b - a,
                    frames_found=len(face["opening"]), missing=mask_ranges(~seen, a),
                    lost=[list(r) for r in lost.get(FaceSelector.nth(number), [])],
                    side=_side(box, info.width), box=None if box is None else [round(float(v), 1) for v in box],
                    confidence=turns.confidence(row),
                ))
        return out


def _side(box, width: int) -> str:
    if box is None:
        return "unknown"
    centre = (box[0] + box[2]) / 2 / width
    return "left" if centre < 0.4 else "right" if centre > 0.6 else "centre"


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
