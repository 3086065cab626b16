"""The QC report of a batch or a shot: one self-contained HTML page plus the same facts as JSON.

Per shot: a strip of before/after mouth crops, the matte over the dubbed face,
a per-frame plot (identity, the sync proxy's mouth opening and speech energy,
tracking confidence) with passed-through frames shaded, and the warnings.
Pictures are PNGs embedded as base64 so the page can be mailed as one file;
the plot is inline SVG (no plotting library).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..files import write_text_atomically
from .measure import ShotMeasures

_PLOT_W, _PLOT_H, _PAD = 720, 170, 28
_SERIES = (
    # key, label, colour, how to scale into [0, 1]
    ("identity", "identity distance (ID-P per frame)", "#d62728", None),
    ("mouth_open_dub", "mouth opening (dub)", "#1f77b4", None),
    ("energy_dub_db", "speech energy (dub)", "#9aa0a6", None),
    ("tracking", "tracking confidence", "#2ca02c", (0.0, 1.0)),
)


def png_data_uri(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def strip_image(shot: ShotMeasures) -> np.ndarray | None:
    """Two rows (before above, after below) of mouth crops, one column per sampled frame."""
    if not shot.strip:
        return None
    cols = []
    for item in shot.strip:
        before, after = item["before"], item["after"]
        col = np.concatenate([before, np.full((2, before.shape[1], 3), 255, np.uint8), after], axis=0)
        cv2.putText(col, str(item["frame"]), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        cols.append(col)
        cols.append(np.full((col.shape[0], 2, 3), 255, np.uint8))
    return np.concatenate(cols[:-1], axis=1)


def _identity_series(shot: ShotMeasures) -> tuple[list, str]:
    if "id_p" in shot.per_frame:
        return shot.per_frame["id_p"], "identity distance (ID-P per frame)"
    ssim = shot.per_frame.get("ssim_in", [])
    return [None if v is None else 1.0 - v for v in ssim], "1 − SSIM inside the mask (no identity weights given)"


def plot_svg(shot: ShotMeasures) -> str:
    """Inline SVG: the per-frame series on a shared frame axis, passthrough ranges shaded grey."""
    n = max(1, shot.summary.get("frames", 1))
    x = lambda k: _PAD + (_PLOT_W - 2 * _PAD) * (k / max(1, n - 1))  # noqa: E731
    y = lambda v: _PLOT_H - _PAD + (2 * _PAD - _PLOT_H) * v  # noqa: E731  (v in [0, 1] → bottom..top)
    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{_PLOT_W}" height="{_PLOT_H}" viewBox="0 0 {_PLOT_W} {_PLOT_H}">',
             f'<rect x="0" y="0" width="{_PLOT_W}" height="{_PLOT_H}" fill="white"/>']
    for p in shot.passthrough:
        x0, x1 = x(p["start_frame"] - 0.5), x(p["end_frame"] - 0.5)
        parts.append(f'<rect class="passthrough" x="{max(_PAD, x0):.1f}" y="{_PAD}" width="{max(1.0, min(x1, _PLOT_W - _PAD) - max(_PAD, x0)):.1f}" '
                     f'height="{_PLOT_H - 2 * _PAD}" fill="#cccccc" opacity="0.6"><title>passed through: {html.escape(p["reason"])}</title></rect>')
    parts.append(f'<line x1="{_PAD}" y1="{_PLOT_H - _PAD}" x2="{_PLOT_W - _PAD}" y2="{_PLOT_H - _PAD}" stroke="black"/>')
    for k in np.linspace(0, n - 1, 6).round().astype(int):
        parts.append(f'<text x="{x(k):.1f}" y="{_PLOT_H - 8}" font-size="10" text-anchor="middle">{k}</text>')
    legend_x = _PAD
    identity, identity_label = _identity_series(shot)
    for key, label, colour, fixed in _SERIES:
        values = identity if key == "identity" else shot.per_frame.get(key, [])
        label = identity_label if key == "identity" else label
        arr = np.array([np.nan if v is None else v for v in values], np.float64)
        if not np.isfinite(arr).any():
            continue
        lo, hi = fixed or (np.nanmin(arr), np.nanmax(arr))
        scaled = (arr - lo) / (hi - lo) if hi > lo else np.full_like(arr, 0.5)
        segments, current = [], []
        for k, v in enumerate(scaled):
            if np.isfinite(v):
                current.append(f"{x(k):.1f},{y(float(v)):.1f}")
            elif current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        for seg in segments:
            parts.append(f'<polyline data-series="{key}" fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(seg)}"/>')
        parts.append(f'<text x="{legend_x}" y="14" font-size="11" fill="{colour}">{html.escape(label)}</text>')
        legend_x += 9 + 6 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:32px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
.warn{color:#a05a00}.ok{color:#2a7a2a}.shot{border-top:2px solid #444;padding-top:8px}img{image-rendering:pixelated;border:1px solid #999}
.caption{font-size:12px;color:#666}"""


def render_html(shots: Sequence[ShotMeasures], *, title: str = "EdiDub QC report", table: str | None = None) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    if table:
        out.append(f"<pre>{html.escape(table)}</pre>")
    keys = ["frames", "passthrough_fraction", "id_p", "id_tc", "lse_d", "lse_c", "sync_proxy", "copy_corr", "open_change", "sync_dub",
            "sync_orig", "psnr_in", "psnr_out", "ssim_in", "ssim_out"]
    out.append("<table><tr><th>shot</th>" + "".join(f"<th>{k}</th>" for k in keys) + "<th>warnings</th></tr>")
    for s in shots:
        out.append(f"<tr><td><a href='#shot-{html.escape(s.shot_id)}'>{html.escape(s.shot_id)}</a></td>"
                   + "".join(f"<td>{_fmt(s.summary.get(k))}</td>" for k in keys) + f"<td>{len(s.warnings)}</td></tr>")
    out.append("</table>")
    for s in shots:
        out.append(f"<div class='shot' id='shot-{html.escape(s.shot_id)}'><h2>{html.escape(s.shot_id)}: "
                   f"{html.escape(Path(s.source).name)} frames {s.start_frame}–{s.end_frame - 1}</h2>")
        out.append(f"<div class='caption'>dub: {html.escape(s.dubbed)}</div>")
        if s.warnings:
            out.append("<ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in s.warnings) + "</ul>")
        else:
            out.append("<p class='ok'>no warnings</p>")
        strip = strip_image(s)
        if strip is not None:
            out.append(f"<p class='caption'>mouth crops, before (top) and after (bottom), frames of the shot as labelled</p>"
                       f"<img class='strip' alt='before/after mouth crops' src='{png_data_uri(strip)}'>")
            mattes = np.concatenate([it["matte"] for it in s.strip], axis=1)
            out.append(f"<p class='caption'>the edit matte (red) over the dubbed face</p>"
                       f"<img class='matte' alt='matte overlay' src='{png_data_uri(mattes)}'>")
        out.append("<p class='caption'>per-frame scores (each scaled to its own range; grey: passed through)</p>" + plot_svg(s))
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(s.summary.get(k))}</td><td>{_fmt(s.real.get(k))}</td></tr>"
                       for k in sorted(set(s.summary) | set(s.real)))
        out.append(f"<table><tr><th>metric</th><th>dub</th><th>source (real)</th></tr>{rows}</table></div>")
    out.append("</body></html>")
    return "".join(out)


def write_qc_report(shots: Sequence[ShotMeasures], html_path: str | Path, *, title: str = "EdiDub QC report",
                    table: str | None = None, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` beside it; returns both paths."""
    html_path = Path(html_path).expanduser()
    json_path = html_path.with_suffix(".json")
    write_text_atomically(html_path, render_html(shots, title=title, table=table))
    payload = {"title": title, **(extra or {}), "shots": [s.to_dict() for s in shots]}
    write_text_atomically(json_path, json.dumps(payload, indent=1, default=_json_default) + "\n")
    return html_path, json_path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


__all__ = ["plot_svg", "render_html", "strip_image", "write_qc_report"]
