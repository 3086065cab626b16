"""A QC verdict per shot, measured while it renders: would an editor want to look at this before it is cut in?

First, do the lips follow the dub line (:mod:`edidub_engine.mouth.sync`)? The output's mouth opening is measured
on every edited frame as written (the face mesh on the face's place) and set against the source's mouth, the
line's loudness and the original sound: lips that copy the original performance, move with the original sound,
or stay open while the line is silent (a lip leak) get ``review``.

Then, is it still the actor's face? A dub changes the lips and little else, so whatever the new line is:

* the face is still a face — the tracker finds it again in the output frames (every ``FACE_EVERY``-th
  edited frame, on the encode thread);
* the cheeks and chin (the lower face outside a margin around the lips) stay close to the source:
  ``cheek_psnr_db`` over the shot, and over its worst stretch of :data:`STRETCH_FRAMES` frames — a short
  run of bad frames is what an editor sees, and pooled over the shot it hides (two bad frames in twenty
  pooled to 28 dB); ``cheek_colour_psnr_db`` is the same on the colour channels alone (Cr, Cb), blurred,
  where a moving jaw changes little and smooth coloured blotches a lot;
* the lips are the mouth that was placed there: ``lips_psnr_db`` against the picture the edit started
  from (the source's lips, or the actor's own mouth moved in), worst stretch — blotches confined to the
  lips hide in a lower-face figure;
* the texture inside the edited region is the source's kind: ``texture_ratio`` is the Laplacian variance
  of the output frame over the source frame's, inside the matte (1 = same detail, ≫ 1 noise, ≪ 1 blur).

``verdict`` is ``ok`` or ``review`` with the reasons that tripped, in words an editor can act on. Everything
is measured on what the renderer already holds (the crops, the frames it writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .mouth.shape import OUTER_LIPS, mouth_opening

__all__ = ["CHEEK_PSNR_MIN_DB", "FACE_FOUND_MIN", "ShotQC", "TEXTURE_RATIO_RANGE", "lips_region"]

CHEEK_PSNR_MIN_DB = 24.0
CHEEK_STRETCH_MIN_DB = 21.0  # the worst stretch of cheeks and chin
COLOUR_STRETCH_MIN_DB = 38.0  # the worst stretch of the blurred colour channels (real dubs of the shared clips: 43-55 dB)
LIPS_STRETCH_MIN_DB = 27.0  # the worst stretch of the lips against the mouth placed there
TEXTURE_RATIO_RANGE = (0.25, 2.5)
FACE_FOUND_MIN = 0.95
FACE_EVERY = 4
STRETCH_FRAMES = 8  # a third of a second: a run of bad frames an editor notices


def lips_region(landmarks: np.ndarray, matrix: np.ndarray, size: int, *, margin: float = 0.08) -> np.ndarray:
    """(size, size) bool: the lips' hull in the crop, grown by ``margin`` of the crop side (where a dub may differ)."""
    points = np.asarray(landmarks, np.float64)[list(OUTER_LIPS), :2]
    crop = points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(crop.astype(np.float32)).astype(np.int32), 1)
    grow = max(1, int(round(margin * size)))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return region.astype(bool)


def _laplacian_variance(image: np.ndarray, region: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    return float(lap[region].var()) if region.any() else 0.0


def _psnr(mse: float) -> float:
    """PSNR in dB of 8-bit pictures, 99 for identical ones."""
    return float(min(99.0, 10 * np.log10(255.0**2 / max(mse, 1e-12))))


def _colour(image: np.ndarray, sigma: float) -> np.ndarray:
    """The chroma channels (Cr, Cb) of an RGB crop, blurred: the smooth colour a geometric change barely moves."""
    chroma = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
    return cv2.GaussianBlur(chroma, (0, 0), sigma)


@dataclass
class _Series:
    """A per-frame error (sum of squares, count), to pool over the shot and over its worst stretch."""

    frames: list[int] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def add(self, frame: int, diff: np.ndarray) -> None:
        if diff.size:
            self.frames.append(frame)
            self.sums.append(float((diff.astype(np.float64) ** 2).sum()))
            self.counts.append(diff.size)

    def pooled_db(self) -> float | None:
        return _psnr(sum(self.sums) / sum(self.counts)) if self.counts else None

    def worst(self, floor_db: float, frames: int = STRETCH_FRAMES) -> tuple[float, int, int] | None:
        """``(psnr, first, last)`` of the worst run of ``frames`` consecutive measured frames; ``first``/``last``
        narrowed to the frames in it that are below ``floor_db`` on their own, when some are."""
        if not self.counts:
            return None
        s, c = np.array(self.sums), np.array(self.counts, np.float64)
        k = min(frames, len(s))
        ws = np.convolve(s, np.ones(k), "valid") / np.convolve(c, np.ones(k), "valid")
        at = int(ws.argmax())
        bad = [self.frames[j] for j in range(at, at + k) if _psnr(s[j] / c[j]) < floor_db] or [self.frames[at], self.frames[at + k - 1]]
        return _psnr(float(ws[at])), bad[0], bad[-1]


@dataclass
class ShotQC:
    """Accumulates per-frame figures of one shot; :meth:`result` gives the ``qc`` entry of a RenderedClip.

    ``dub_db``/``source_db``: the line's and the source's loudness per shot frame
    (:func:`~edidub_engine.mouth.loudness_db`); without them no lip-sync figures are made.
    """

    dub_db: np.ndarray | None = None
    source_db: np.ndarray | None = None
    cheeks: _Series = field(default_factory=_Series)
    colour: _Series = field(default_factory=_Series)
    lips: _Series = field(default_factory=_Series)
    lips_colour: _Series = field(default_factory=_Series)
    texture_out: list[float] = field(default_factory=list)
    texture_src: list[float] = field(default_factory=list)
    face_checked: int = 0
    face_found: int = 0
    source_open: dict[int, float] = field(default_factory=dict)
    output_open: dict[int, float] = field(default_factory=dict)
    covered_frames: int = 0  # frames kept under a hand, their lips not judged
    _tracker: Any = None
    _mesh: Any = None
    _edited: int = 0

    def add_crop(self, restored: np.ndarray, source: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, matrix: np.ndarray,
                 *, intended: np.ndarray | None = None, frame: int | None = None) -> None:
        """One edited frame's crops at the SRD size (``mask``: the lower face the networks may change; ``intended``: the
        picture the edit started from, the source's or with the actor's own mouth moved in; ``frame``: its shot frame)."""
        frame = len(self.cheeks.frames) if frame is None else int(frame)
        inside = np.asarray(mask, bool)
        lips = lips_region(landmarks, matrix, restored.shape[0])
        cheeks = inside & ~lips
        self.cheeks.add(frame, restored[cheeks].astype(np.float64) - source[cheeks])
        sigma = max(1.0, restored.shape[0] / 64)
        colour = _colour(restored, sigma)
        self.colour.add(frame, (colour - _colour(source, sigma))[cheeks])
        target = source if intended is None else intended
        self.lips.add(frame, restored[inside & lips].astype(np.float64) - target[inside & lips])
        self.lips_colour.add(frame, (colour - _colour(target, sigma))[inside & lips])

    def add_texture(self, output: np.ndarray, source: np.ndarray, region: np.ndarray) -> None:
        """Fine texture of the edited region in the native frame, output and source (blur and noise show here,
        not on a crop that is itself smaller than the face)."""
        ys, xs = np.nonzero(region)
        if ys.size == 0:
            return
        box = (slice(max(0, ys.min() - 1), ys.max() + 2), slice(max(0, xs.min() - 1), xs.max() + 2))
        self.texture_out.append(_laplacian_variance(output[box], region[box]))
        self.texture_src.append(_laplacian_variance(source[box], region[box]))

    def add_frame(self, frame: np.ndarray, *, landmarks: np.ndarray | None = None) -> None:
        """An edited output frame as written; every ``FACE_EVERY``-th is searched for the face again — anywhere, or
        where ``landmarks`` (the source's face, in a shot of several faces) put it."""
        self._edited += 1
        if (self._edited - 1) % FACE_EVERY:
            return
        from .face import FaceTracker

        if self._tracker is None:
            self._tracker = FaceTracker()
        self._tracker.reset()  # each sampled frame on its own: a found face must be found from scratch
        self.face_checked += 1
        if landmarks is None:
            self.face_found += int(self._tracker.process(frame, self._edited - 1).ok)
        else:
            self.face_found += int(self._tracker.mesh_near(frame, landmarks) is not None)

    def add_mouth(self, index: int, output: np.ndarray, source_landmarks: np.ndarray, *, covered: bool = False) -> None:
        """Shot frame ``index`` as written: its mouth opening, measured where the source's face is, beside the source's.
        A ``covered`` frame (a hand over the lower face, its own mouth kept) is not measured: landmarks guessed under
        a hand are no opening, and judging them would call the kept frames a lip leak."""
        from .face import FaceTracker

        if covered:
            self.covered_frames += 1
            return
        if self._mesh is None:
            self._mesh = FaceTracker()
        landmarks = self._mesh.mesh_near(output, source_landmarks)
        self.source_open[int(index)] = float(mouth_opening(source_landmarks)[0])
        self.output_open[int(index)] = float(mouth_opening(landmarks)[0]) if landmarks is not None else np.nan

    def close(self) -> None:
        for name in ("_tracker", "_mesh"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
                setattr(self, name, None)

    def lip_sync(self):
        """:class:`~edidub_engine.mouth.LipSyncFigures` of the edited frames (None without loudness or mouths)."""
        from .mouth import lip_sync_figures

        if self.dub_db is None or self.source_db is None or not self.output_open:
            return None
        n = len(self.dub_db)
        src, out = np.full(n, np.nan), np.full(n, np.nan)
        for k, v in self.source_open.items():
            src[k] = v
        for k, v in self.output_open.items():
            out[k] = v
        return lip_sync_figures(src, out, self.dub_db, self.source_db)

    def result(self) -> dict[str, Any]:
        """Figures, verdict and reasons (no edited frame: nothing to judge, ``ok``)."""
        from .mouth import lip_sync_reasons

        self.close()
        figures: dict[str, Any] = {"frames": self._edited}
        reasons = []
        sync = self.lip_sync()
        if sync is not None:
            figures["lip_sync"] = {**sync.to_dict(), "covered_frames": self.covered_frames}
            reasons += lip_sync_reasons(sync)
        if (cheek := self.cheeks.pooled_db()) is not None:
            figures["cheek_psnr_db"] = round(cheek, 2)
            if cheek < CHEEK_PSNR_MIN_DB:
                reasons.append(f"the cheeks and chin differ from the source ({cheek:.1f} dB < {CHEEK_PSNR_MIN_DB:.0f} dB): "
                               "the lower face may be smeared or noisy")
        for series, name, floor, what in (
            (self.cheeks, "cheek_worst_db", CHEEK_STRETCH_MIN_DB, "the cheeks and chin differ from the source: smeared or noisy"),
            (self.colour, "cheek_colour_worst_db", COLOUR_STRETCH_MIN_DB, "coloured blotches on the cheeks and chin"),
            (self.lips, "lips_worst_db", LIPS_STRETCH_MIN_DB, "the lips are not the mouth placed there: blotched, smeared or noisy"),
            (self.lips_colour, "lips_colour_worst_db", COLOUR_STRETCH_MIN_DB, "coloured blotches on the lips"),
        ):
            worst = series.worst(floor)
            if worst is None:
                continue
            figures[name] = round(worst[0], 2)
            if worst[0] < floor and not (name == "cheek_worst_db" and cheek is not None and cheek < CHEEK_PSNR_MIN_DB):
                where = f"frame {worst[1]}" if worst[1] == worst[2] else f"frames {worst[1]}-{worst[2]}"
                reasons.append(f"{where}: {what} ({worst[0]:.1f} dB < {floor:.0f} dB)")
        if (colour := self.colour.pooled_db()) is not None:
            figures["cheek_colour_psnr_db"] = round(colour, 2)
        if (lips := self.lips.pooled_db()) is not None:
            figures["lips_psnr_db"] = round(lips, 2)
        if self.texture_src:
            ratio = float(np.sum(self.texture_out) / max(np.sum(self.texture_src), 1e-6))
            figures["texture_ratio"] = round(ratio, 3)
            lo, hi = TEXTURE_RATIO_RANGE
            if ratio > hi:
                reasons.append(f"the mouth region has {ratio:.1f}x the source's fine texture: noise-like")
            elif ratio < lo:
                reasons.append(f"the mouth region has {ratio:.2f}x the source's fine texture: blurred")
        if self.face_checked:
            found = self.face_found / self.face_checked
            figures["face_found"] = round(found, 3)
            if found < FACE_FOUND_MIN:
                reasons.append(f"the face was found again in only {100 * found:.0f} % of the checked output frames")
        return {**figures, "verdict": "review" if reasons else "ok", "reasons": reasons}
