"""A ShotRequest against its media, at submit: a range past the clip's end never becomes a job.

The protocol promises that a bad ShotRequest is refused when it is submitted, not
minutes later in a worker.  Field ranges are checked by :mod:`edidub_engine.shot`,
paths by :mod:`.paths`; this reads the media's *headers* (milliseconds, whatever
the file's size, cached per file version) and refuses what is certainly wrong:
a source range past the end of the picture, a file without pictures, a dub
segment that starts after its audio ends or a dub file with no audio at all.
Header lengths are estimates (MPEG program streams guess from the bit rate), so
the check leaves a margin of 2 % and 2 frames; the worker checks exactly.
"""

from __future__ import annotations

from pathlib import Path

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError
from edidub_engine.shot import ShotRequest

__all__ = ["check_against_media"]

_MARGIN = 0.02
_MARGIN_FRAMES = 2
_AUDIO_MARGIN_S = 0.25


def check_against_media(shot: ShotRequest) -> None:
    """Raise a clear error naming the shot and the file when the request cannot fit its media."""
    from edidub_engine.media.probe import header_lengths  # PyAV only once a submit arrives

    where = f"shot {shot.shot_id!r}"
    source = shot.source
    lengths = header_lengths(source.path)
    if lengths.video_s is None and lengths.video_rate is None:
        raise MediaDecodeError(f"{where}: source {Path(source.path).name} has no video stream",
                               hint="the source must be the picture of the shot", details={"path": source.path, "role": "source"})
    rate = source.rate or lengths.video_rate
    if lengths.video_s is not None and rate:
        frames = float(lengths.video_s * rate)
        if source.end_frame > frames * (1 + _MARGIN) + _MARGIN_FRAMES:
            raise InvalidArgumentError(
                f"{where}: source frames [{source.start_frame}, {source.end_frame}) go past the end of {Path(source.path).name}, "
                f"which holds about {frames:.0f} frames ({lengths.video_s:.2f} s at {float(rate):.3f} fps)",
                hint="send file-relative frame numbers (frame 0 is the file's first picture) within the clip, end exclusive",
                details={"path": source.path, "role": "source", "media_frames": round(frames)},
            )
    segments = [(f"dub_audio[{i}]", i, seg) for i, seg in enumerate(shot.dub_audio)]
    segments += [(f"lines[{k}] dub_audio[{i}]", i, seg) for k, line in enumerate(shot.lines) for i, seg in enumerate(line.dub_audio)]
    for label, i, segment in segments:
        audio = header_lengths(segment.path)
        name = Path(segment.path).name
        if audio.audio_s is None and audio.video_s is not None:
            raise MediaDecodeError(f"{where}: {label} {name} has no audio stream",
                                   hint="name a file that holds the dub speech (WAV, FLAC, or a video with sound)",
                                   details={"path": segment.path, "role": "dub_audio", "index_in_shot": i})
        if audio.audio_s is not None and segment.start_s > audio.audio_s + _AUDIO_MARGIN_S:
            raise InvalidArgumentError(
                f"{where}: {label} starts at {segment.start_s:.3f} s, after the end of {name} ({audio.audio_s:.3f} s)",
                hint="start_s is measured from the start of the audio file",
                details={"path": segment.path, "role": "dub_audio", "audio_s": round(audio.audio_s, 3)},
            )
