"""The faces a shot dubs and what each says: one face (``options.face``) with the dub line, a line per face (a
two-shot's ``lines``), or one mixed line shared out to the faces that spoke each stretch of it in the original
(``speakers: "auto"``; dubbing keeps the picture's timing, so a stretch goes to the face whose mouth moved then).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, MediaNotFoundError, NoFaceError
from ..shot import AudioSegment, ShotRequest

SAMPLE_RATE_HZ = 16000
RAMP_S = 0.02  # a stretch of a mixed line fades in and out over this (no click where it is cut)


@dataclass
class FaceLinePlan:
    """One face to dub: its selector, its line on the shot's clock (16 kHz) and, shared out of a mixed line, the
    stretches it was given."""

    face: str
    audio16: np.ndarray
    dub_end_s: float
    speaking: list[list[int]] | None = None
    given_by: str = "line"  # "line", "speakers" (found in the original) or "shot list" (the supervisor's stretches)


def line_audio(shot_id: str, segments: tuple[AudioSegment, ...], rate: Fraction, n: int) -> tuple[np.ndarray, list, float]:
    """A dub line laid out on the shot's clock: 16 kHz samples (for the units), its pieces for the output's sound
    (:class:`~edidub_engine.media.mix.AudioMix`, decoded a block at a time as frames are written) and where it ends."""
    from ..media import load_audio
    from ..media.mix import MixPiece

    shot_s = Fraction(n) / rate
    pieces, parts = [], []
    for seg in segments:
        if not Path(seg.path).is_file():
            raise MediaNotFoundError(f"shot {shot_id!r}: dub audio {seg.path} does not exist",
                                     hint="check the path of the dub line (and that its drive is mounted)")
        a16 = load_audio(seg.path, start_s=seg.start_s, duration_s=seg.duration_s, sample_rate_hz=SAMPLE_RATE_HZ)
        parts.append((seg, a16))
        pieces.append(MixPiece(Path(seg.path), Fraction(seg.start_s).limit_denominator(10**9),
                               Fraction(seg.offset_s).limit_denominator(10**9), Fraction(len(a16), SAMPLE_RATE_HZ)))
    dub_end_s = max(seg.offset_s + len(a16) / SAMPLE_RATE_HZ for seg, a16 in parts)
    out16 = np.zeros(int(round(max(float(shot_s), dub_end_s) * SAMPLE_RATE_HZ)), np.float32)
    for seg, a16 in parts:
        at = int(round(seg.offset_s * SAMPLE_RATE_HZ))
        stop = min(len(out16), at + len(a16))
        out16[at:stop] += a16[: stop - at]
    return out16, pieces, dub_end_s


def keep_stretches(audio16: np.ndarray, stretches: list[list[int]], rate: Fraction) -> np.ndarray:
    """``audio16`` where ``stretches`` (half-open shot frames) are, silence elsewhere, with short fades."""
    gain = np.zeros(len(audio16), np.float32)
    ramp = max(1, int(RAMP_S * SAMPLE_RATE_HZ))
    for a, b in stretches:
        lo, hi = int(round(a / rate * SAMPLE_RATE_HZ)), min(len(gain), int(round(b / rate * SAMPLE_RATE_HZ)))
        if hi <= lo:
            continue
        gain[lo:hi] = 1.0
        fade = min(ramp, (hi - lo) // 2)
        if fade:
            gain[lo : lo + fade] = np.minimum(gain[lo : lo + fade], np.linspace(0, 1, fade, endpoint=False))
            gain[hi - fade : hi] = np.minimum(gain[hi - fade : hi], np.linspace(1, 0, fade, endpoint=False))
    return audio16 * gain


def who_spoke(info, start: int, end: int, faces: list[str], source_db: np.ndarray) -> list[tuple[str, list[list[int]]]]:
    """Each face's speaking stretches in the original (:mod:`edidub_engine.analysis.speakers`), from a tracking pass
    over the shot: ``[(face, [[s, e], …]), …]``. ``faces``: selectors, or ``["all"]`` for every face seen (numbered
    left to right, as ``--face N`` counts)."""
    from ..analysis.speakers import find_speakers
    from ..face import ALL_FACES, FaceStatus, MultiFaceTracker
    from ..media import iter_frames
    from ..mouth import mouth_opening

    n = end - start
    openings: dict[str, np.ndarray] = {}
    with MultiFaceTracker(faces) as tracker:
        for index, frame in iter_frames(info, start, end):
            seen = tracker.process(frame, index)
            for key, obs in seen.faces.items():
                row = openings.setdefault(str(key), np.full(n, np.nan))
                if obs.status is FaceStatus.OK and obs.landmarks is not None:
                    row[index - start] = float(mouth_opening(obs.landmarks)[0])
    if not openings:
        raise NoFaceError(f"{info.path.name} frames {start}-{end - 1}: no face to share the dub line out to",
                          hint="check the range; faces smaller than about 20 px, in profile or covered cannot be dubbed")
    names = [str(f) for f in faces if str(f).strip().lower() != ALL_FACES] or sorted(openings, key=lambda k: int(k) if k.isdigit() else 0)
    names = [name for name in names if name in openings] or list(openings)
    turns = find_speakers(np.stack([openings[name] for name in names]), source_db, info.rate)
    return [(name, turns.stretches(k)) for k, name in enumerate(names)]


def plan_faces(request: ShotRequest, info, start: int, end: int, source_db: np.ndarray) -> tuple[list[FaceLinePlan], list]:
    """The faces of a request and their lines, and the pieces of the output's sound (every line, or the mixed one)."""
    n = end - start
    shot = f"shot {request.shot_id!r}"
    if request.speakers is None:
        plans, pieces = [], []
        for line in request.face_lines():
            audio16, line_pieces, dub_end_s = line_audio(request.shot_id, line.dub_audio, info.rate, n)
            plans.append(FaceLinePlan(str(line.face), audio16, dub_end_s))
            pieces += line_pieces
        return plans, pieces
    if not info.has_audio:
        raise InvalidArgumentError(f"{shot}: the speakers rule hears who speaks in {info.path.name}'s own sound, and it has none",
                                   hint="give each face its line (--line FACE=AUDIO), or its stretches in the shot list")
    mixed, pieces, dub_end_s = line_audio(request.shot_id, request.dub_audio, info.rate, n)
    given = {str(line.face): [list(r) for r in line.speaking] for line in request.lines if line.speaking is not None}
    wanted = [str(line.face) for line in request.lines] or ["all"]
    found = dict(who_spoke(info, start, end, [f for f in wanted if f not in given] or [], source_db)) if set(wanted) - set(given) else {}
    plans = []
    for face in (wanted if request.lines else list(found)):
        stretches = given.get(face, found.get(face, []))
        if not stretches and not request.lines:  # a face that never speaks keeps its pixels
            continue
        plans.append(FaceLinePlan(face, keep_stretches(mixed, stretches, info.rate), dub_end_s, stretches,
                                  "shot list" if face in given else "speakers"))
    if not plans:
        raise NoFaceError(f"{shot}: no face in {info.path.name} frames {start}-{end - 1} speaks in the original",
                          hint="give each face its line (--line FACE=AUDIO), or its stretches in the shot list")
    return plans, pieces


__all__ = ["FaceLinePlan", "keep_stretches", "line_audio", "plan_faces", "who_spoke"]
