"""Does a dub's mouth follow its line, or the original's? Figures from mouth openings and loudness alone.

Per shot, with no downloaded weights (a SyncNet's LSE-C/LSE-D go beside them when its weights are given):

* ``copy_corr`` — Pearson r of the output's mouth opening with the source's: 1 is the source's lips
  copied (a real dub of another line: 0.2-0.65 on GRID pairs of one speaker);
* ``open_change`` — mean |output − source| opening over the source's mean opening: 0 is no change;
* ``sync_dub`` / ``sync_orig`` — the best r (lag within ±3 frames) of the output's opening with the line's
  loudness and with the source's own sound. Loudness cannot tell an "o" from an "a": compare these over
  several shots, never on one with a tight margin;
* the line's silences (``silent_frames``): the output's mean opening there against the source's there
  and the actor's speaking opening. A mouth open while the line is silent is a "lip leak".

:func:`lip_sync_reasons` turns them into QC reasons. A line that is the source's own sound (a round trip,
the same take) rightly keeps the source's mouth: then copying is not a fault.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edidub_engine.mouth.drive import MouthDriveConfig, own_speech, silent_frames

__all__ = ["LipSyncFigures", "describe_lip_sync", "lip_sync_figures", "lip_sync_reasons", "COPY_CORR_MAX", "OPEN_CHANGE_MIN", "LEAK_SHARE_MAX"]

MAX_LAG = 3
COPY_CORR_MAX = 0.8  # above this and ...
OPEN_CHANGE_MIN = 0.25  # ... below this, the lips are the source's
SYNC_MARGIN = 0.15  # following the original's sound this much better than the line's
LEAK_SHARE_MAX = 0.6  # the mouth on the line's silences, as a share of the actor's speaking opening
MIN_SILENT_FRAMES = 6  # a silence this long (a quarter second at 25 fps) gives the mouth time to close


def _r(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 10 or x[ok].std() == 0 or y[ok].std() == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _best_r(x: np.ndarray, y: np.ndarray, max_lag: int = MAX_LAG) -> float:
    best = math.nan
    n = min(len(x), len(y))
    for lag in range(-max_lag, max_lag + 1):
        a, b = (x[lag:n], y[: n - lag]) if lag >= 0 else (x[: n + lag], y[-lag:n])
        r = _r(a, b)
        if not math.isnan(r) and (math.isnan(best) or r > best):
            best = r
    return best


@dataclass(frozen=True)
class LipSyncFigures:
    frames: int
    copy_corr: float | None
    open_change: float | None
    sync_dub: float | None
    sync_orig: float | None
    source_sync_orig: float | None  # the source with its own sound: what real sync looks like on this shot
    silent_frames: int  # frames where the line is silent
    silent_open_out: float | None  # the output's mean opening there
    silent_open_src: float | None  # the source's mean opening there
    speaking_open: float | None  # the actor's median opening while the source speaks
    own_speech: bool  # the line is the source's own sound
    leak_frames: list[int] | None = None  # [first, end) of the line's silence where the output's mouth is most open
    leak_open: float | None = None  # the output's mean opening there

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "LipSyncFigures":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def _amplitude(level_db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(level_db, np.float64) / 20.0)


def lip_sync_figures(source_open: np.ndarray, output_open: np.ndarray, dub_db: np.ndarray, source_db: np.ndarray,
                     *, config: MouthDriveConfig | None = None) -> LipSyncFigures:
    """Figures of one shot from per-frame openings (NaN where no face was found) and loudness (``loudness_db``)."""
    config = config or MouthDriveConfig()
    n = min(len(source_open), len(output_open), len(dub_db), len(source_db))
    src, out = np.asarray(source_open, np.float64)[:n], np.asarray(output_open, np.float64)[:n]
    dub_db, source_db = np.asarray(dub_db, np.float64)[:n], np.asarray(source_db, np.float64)[:n]
    ok = np.isfinite(src) & np.isfinite(out)
    none = lambda v: None if v is None or math.isnan(v) else float(v)  # noqa: E731
    change = float(np.mean(np.abs(out[ok] - src[ok])) / max(np.mean(src[ok]), 1e-6)) if ok.any() else math.nan
    silent = silent_frames(dub_db, config)
    silent_ok = silent & ok
    speaking = ~silent_frames(source_db, config) & np.isfinite(src)
    leak_frames, leak_open = None, None
    for a, b in _runs(silent):
        if b - a >= MIN_SILENT_FRAMES and np.isfinite(out[a:b]).sum() >= MIN_SILENT_FRAMES // 2:
            value = float(np.nanmean(out[a:b]))
            if leak_open is None or value > leak_open:
                leak_frames, leak_open = [a, b], value
    return LipSyncFigures(
        frames=n,
        copy_corr=none(_r(out, src)),
        open_change=none(change),
        sync_dub=none(_best_r(out, _amplitude(dub_db))),
        sync_orig=none(_best_r(out, _amplitude(source_db))),
        source_sync_orig=none(_best_r(src, _amplitude(source_db))),
        silent_frames=int(silent_ok.sum()),
        silent_open_out=float(out[silent_ok].mean()) if silent_ok.any() else None,
        silent_open_src=float(src[silent_ok].mean()) if silent_ok.any() else None,
        speaking_open=float(np.median(src[speaking])) if speaking.any() else None,
        own_speech=own_speech(dub_db, source_db, config),
        leak_frames=leak_frames,
        leak_open=leak_open,
    )


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[first, end)`` of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def lip_sync_reasons(figures: LipSyncFigures) -> list[str]:
    """Why an editor should look at this dub's lips (empty: they follow the line as far as loudness can tell)."""
    f, reasons = figures, []
    if f.own_speech:
        return reasons
    if f.copy_corr is not None and f.open_change is not None and f.copy_corr >= COPY_CORR_MAX and f.open_change < OPEN_CHANGE_MIN:
        reasons.append(f"the lips follow the original performance, not the dub line (r {f.copy_corr:.2f} with the source's mouth, "
                       f"{100 * f.open_change:.0f} % change)")
    elif f.sync_dub is not None and f.sync_orig is not None and f.sync_orig - f.sync_dub >= SYNC_MARGIN:
        reasons.append(f"the mouth moves with the original sound (r {f.sync_orig:.2f}) more than with the dub line (r {f.sync_dub:.2f})")
    if f.leak_frames is not None and f.leak_open is not None and f.speaking_open and f.leak_open > LEAK_SHARE_MAX * f.speaking_open:
        reasons.append(f"frames {f.leak_frames[0]}-{f.leak_frames[1] - 1}: the mouth is open while the dub line is silent "
                       f"({100 * f.leak_open / f.speaking_open:.0f} % of the actor's speaking opening): a lip leak")
    return reasons


def describe_lip_sync(figures: dict) -> str:
    """One line for a person, from :meth:`LipSyncFigures.to_dict`."""
    if figures.get("own_speech"):
        return "lips: the dub line is the source's own sound; its mouth is kept"
    parts = []
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    parts.append(f"r {fmt(figures.get('copy_corr'), '.2f')} with the source's mouth, {fmt(figures.get('open_change'), '.0%')} changed")
    parts.append(f"sync with the line {fmt(figures.get('sync_dub'), '.2f')}, with the original sound {fmt(figures.get('sync_orig'), '.2f')}")
    if figures.get("silent_frames"):
        parts.append(f"opening on the line's {figures['silent_frames']} silent frames {fmt(figures.get('silent_open_out'), '.3f')} "
                     f"(the source's there {fmt(figures.get('silent_open_src'), '.3f')})")
    if figures.get("covered_frames"):
        parts.append(f"{figures['covered_frames']} frames under a hand kept their own mouth, not judged")
    return "lips: " + "; ".join(parts)
