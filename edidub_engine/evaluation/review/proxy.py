"""Browser-playable proxies of each original's range, made when a review set is built.

Browsers play H.264 in MP4 and little else: an MPEG-1, ProRes, DNxHR or MXF original
would show an empty black player. So the review set carries, per shot, the original's
own frames ``[start_frame, end_frame)`` with their sound as H.264/AAC (at most 720
lines high, even sizes), and the page plays that. A proxy that cannot be made is
said on the shot, and the page falls back to the original file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import EdidubError

__all__ = ["PROXY_DIR", "make_proxy", "proxy_name"]

PROXY_DIR = "proxies"
MAX_LINES = 720


def proxy_name(index: int, shot_id: str, start_frame: int, end_frame: int) -> str:
    """A proxy's file name; the range is part of it, so a re-cut shot never reuses an old proxy."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", shot_id).strip("._") or "shot"
    return f"{index:03d}_{slug[:60]}_{start_frame}-{end_frame}.mp4"


def make_proxy(original: str | Path, start_frame: int, end_frame: int, out: str | Path) -> Path:
    """Write ``out`` (H.264 + AAC) from frames ``[start_frame, end_frame)`` of ``original`` and their sound."""
    import cv2

    from ...media import ClipWriter, iter_frames, load_audio_for_frames, probe_video

    info = probe_video(original)
    scale = min(1.0, MAX_LINES / info.height)
    width, height = (2 * int(info.width * scale / 2), 2 * int(info.height * scale / 2))
    try:
        sound = load_audio_for_frames(info, start_frame, end_frame, sample_rate_hz=48000)
    except EdidubError:  # an original without sound still gets a picture proxy
        sound = None
    with ClipWriter(out, width=width, height=height, rate=info.rate, codec="h264", timecode=info.timecode_at(start_frame),
                    audio=sound, audio_sample_rate_hz=48000) as writer:
        for _, frame in iter_frames(info, start_frame, end_frame):
            if frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(np.ascontiguousarray(frame))
    return Path(out)

