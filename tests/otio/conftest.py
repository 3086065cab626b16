"""Builders for timelines shaped the way Resolve and Premiere export them."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest


def _rt(v, rate):
    return otio.opentime.RationalTime(v, rate)


def clip(name, url, src_start, dur, rate, *, avail=(86400, 1000), effects=(), enabled=True, media_rate=None):
    """A Resolve-shaped clip: bare path (or URL), timecode-based ranges (01:00:00:00 → 86400 at 24)."""
    mr = media_rate or rate
    if url is None:
        ref = otio.schema.MissingReference()
    else:
        ref = otio.schema.ExternalReference(
            target_url=url, available_range=otio.opentime.TimeRange(_rt(avail[0], mr), _rt(avail[1], mr))
        )
    c = otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(_rt(src_start, rate), _rt(dur, rate)))
    for e in effects:
        c.effects.append(e)
    c.enabled = enabled
    return c


def gap(n, rate):
    return otio.schema.Gap(source_range=otio.opentime.TimeRange(_rt(0, rate), _rt(n, rate)))


def dissolve(in_off, out_off, rate):
    return otio.schema.Transition(
        name="Cross Dissolve", transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=_rt(in_off, rate), out_offset=_rt(out_off, rate),
    )


def timeline(name, rate, start, video, audio=(), *, video_name="Video 1", audio_name="FR dialogue"):
    tl = otio.schema.Timeline(name=name, global_start_time=_rt(start, rate))
    v = otio.schema.Track(name=video_name, kind=otio.schema.TrackKind.Video)
    for item in video:
        v.append(item)
    tl.tracks.append(v)
    tl.tracks.append(otio.schema.Track(name="Original dialogue", kind=otio.schema.TrackKind.Audio))
    a = otio.schema.Track(name=audio_name, kind=otio.schema.TrackKind.Audio)
    for item in audio:
        a.append(item)
    tl.tracks.append(a)
    return tl


@pytest.fixture
def build():
    class B:
        pass

    b = B()
    b.clip, b.gap, b.dissolve, b.timeline, b.Fraction = clip, gap, dissolve, timeline, Fraction
    return b
