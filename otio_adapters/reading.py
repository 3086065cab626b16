"""Read any editorial file robustly: the adapter by suffix, EDL rates, clear errors.

:func:`read_timeline` never lets an adapter's traceback out: every failure is an
:class:`InvalidArgumentError` naming the file and what is unsupported, and every
liberty taken while reading (an inferred EDL rate, a lenient EDL retry, a rewritten
drop-frame separator) is listed in :attr:`TimelineFile.warnings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError, MediaNotFoundError
from edidub_engine.shot import parse_rate

from ._time import exact_rate, format_rate

ADAPTERS = {
    ".otio": "otio_json",
    ".otioz": "otioz",
    ".otiod": "otiod",
    ".xml": "fcp_xml",
    ".fcpxml": "fcpx_xml",
    ".edl": "cmx_3600",
    ".aaf": "AAF",
}
EDL_DEFAULT_RATE = Fraction(24)


@dataclass
class TimelineFile:
    """What :func:`read_timeline` read, and how."""

    path: Path
    timeline: otio.schema.Timeline
    adapter_name: str
    rate: Fraction | None = None  # EDLs: the rate the timecodes were read at
    lenient: bool = False  # EDLs: read with ignore_timecode_mismatch=True after a strict read failed
    timeline_names: list[str] = field(default_factory=list)  # every timeline in the file
    warnings: list[str] = field(default_factory=list)


def read_timeline(path, *, rate=None, timeline_name: str | None = None) -> TimelineFile:
    """Read ``path`` (.otio, .otioz, .xml FCP7, .fcpxml FCP X, .edl CMX 3600, .aaf) into a Timeline.

    ``rate`` (EDLs only; ``"24000/1001"``, ``25``, a Fraction): the timecode rate, which an EDL
    does not state.  Without it the rate is inferred from the record timecodes and FCM lines
    (frames up to 23 → 24, 24 → 25, 29 → 30, 59 → 60; drop frame → 30000/1001 or 60000/1001),
    and a warning says so — 23.976 and 24 (or 29.97 NDF and 30) cannot be told apart in an
    EDL, and record frames are the same; only seconds differ.
    ``timeline_name``: the timeline to take from a file holding several (FCP X projects).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"timeline {path} does not exist", hint="give the path of an exported timeline (and check its drive is mounted)")
    suffix = path.suffix.lower()
    adapter = ADAPTERS.get(suffix)
    if adapter is None:
        raise InvalidArgumentError(
            f"{path}: unsupported timeline format {suffix or '(no suffix)'!r}",
            hint=f"export OTIO, FCP7 XML, FCP X XML, CMX 3600 EDL or AAF ({', '.join(sorted(ADAPTERS))})",
        )
    if rate is not None and adapter != "cmx_3600":
        raise InvalidArgumentError(f"{path}: rate= is only for EDLs; {adapter} files state their own rate")
    warnings: list[str] = []
    result_rate = None
    lenient = False
    if adapter == "cmx_3600":
        obj, result_rate, lenient = _read_edl(path, rate, warnings)
    else:
        obj = _call_adapter(path, adapter, lambda: otio.adapters.read_from_file(str(path), adapter_name=adapter))
    timeline, names = _pick_timeline(path, obj, timeline_name)
    if adapter == "fcp_xml":
        _apply_fcp7_enabled(timeline)
    if adapter == "fcpx_xml":
        _check_fcpx(path, timeline, warnings)
    return TimelineFile(path, timeline, adapter, result_rate, lenient, names, warnings)


def _apply_fcp7_enabled(timeline) -> int:
    """Premiere and Resolve mark a disabled clip or track ``<enabled>FALSE</enabled>``; OTIO's fcp_xml adapter keeps
    that only in ``metadata["fcp_xml"]`` and reads every item as enabled. Carry it to ``enabled`` (so a disabled clip
    is never dubbed); returns how many items were disabled."""
    disabled = 0
    for item in [*timeline.tracks.find_children(), *timeline.tracks]:
        flag = (item.metadata.get("fcp_xml") or {}).get("enabled") if hasattr(item, "metadata") else None
        if isinstance(flag, str) and flag.strip().upper() == "FALSE" and getattr(item, "enabled", False):
            item.enabled = False
            disabled += 1
    return disabled


def _call_adapter(path, adapter, read):
    try:
        return read()
    except InvalidArgumentError:
        raise
    except Exception as exc:  # every adapter failure becomes a clear error, never a traceback
        raise InvalidArgumentError(
            f"{path}: the {adapter} adapter cannot read this file ({type(exc).__name__}: {_short(exc)})",
            hint=_hint_for(adapter),
            details={"adapter": adapter, "exception": type(exc).__name__},
        ) from None


def _short(exc) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return text[:300]


def _hint_for(adapter) -> str:
    return {
        "cmx_3600": "check the rate (rate=) and that the EDL is a CMX 3600 list; or export OTIO / FCP7 XML instead",
        "fcpx_xml": "the fcpx_xml adapter reads only part of FCPXML; export FCP7 XML or OTIO from the NLE instead",
        "fcp_xml": "the file is not an FCP7 XML (xmeml) sequence the fcp_xml adapter understands; export OTIO instead",
        "AAF": "the AAF could not be parsed; export OTIO or FCP7 XML instead",
    }.get(adapter, "export the timeline again as .otio")


def _pick_timeline(path, obj, name):
    if isinstance(obj, otio.schema.Timeline):
        if name is not None and obj.name != name:
            raise InvalidArgumentError(f"{path}: holds one timeline, {obj.name!r}, not {name!r}")
        return obj, [obj.name]
    if isinstance(obj, otio.schema.SerializableCollection):
        timelines = [t for t in obj.find_children(descended_from_type=otio.schema.Timeline)] if hasattr(
            obj, "find_children"
        ) else [t for t in obj if isinstance(t, otio.schema.Timeline)]
        names = [t.name for t in timelines]
        if not timelines:
            raise InvalidArgumentError(f"{path}: the file holds no timeline")
        if name is None and len(timelines) == 1:
            return timelines[0], names
        if name is None:
            raise InvalidArgumentError(
                f"{path}: holds {len(timelines)} timelines: {', '.join(map(repr, names))}",
                hint="choose one with --timeline-name NAME (timeline_name= in Python)",
                details={"timelines": names},
            )
        chosen = [t for t in timelines if t.name == name]
        if len(chosen) != 1:
            raise InvalidArgumentError(
                f"{path}: {'no' if not chosen else len(chosen)} timeline(s) named {name!r}",
                hint=f"timelines in the file: {', '.join(map(repr, names))}",
                details={"timelines": names},
            )
        return chosen[0], names
    raise InvalidArgumentError(f"{path}: the file holds a {type(obj).__name__}, not a timeline")


# ---------------------------------------------------------------------------------------------- EDL

_TC = r"\d{1,2}[:;.]\d{2}[:;.]\d{2}[:;.]\d{2,3}"
_EVENT = re.compile(rf"^\s*\d+\s+.*?({_TC})\s+({_TC})\s+({_TC})\s+({_TC})\s*$")


def _read_edl(path, rate, warnings):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        warnings.append("the EDL is not UTF-8; read as Latin-1")
    if raw.startswith(b"\xef\xbb\xbf"):
        warnings.append("stripped a UTF-8 byte-order mark before parsing")
    text, dropped = _drop_header_comments(text)
    if dropped:
        warnings.append(f"ignored {dropped} header comment line(s) before the first event that the cmx_3600 adapter cannot parse")
    if rate is None:
        edl_rate, why = _infer_edl_rate(text)
        warnings.append(f"rate not given: read at {format_rate(edl_rate)} ({why}); pass --rate to edidub batch (rate= in Python) if that is wrong")
    else:
        edl_rate = parse_rate(rate, where=f"{path}")
        edl_rate = exact_rate(edl_rate, where=str(path))
    text, rewritten = _mark_drop_frame(text, edl_rate)
    if rewritten:
        warnings.append(f"{rewritten} event line(s) had their timecodes rewritten as HH:MM:SS;FF (drop frame, from FCM lines) or HH:MM:SS:FF")

    text, untrusted = _untrusted_sources(text, edl_rate)
    if untrusted:
        warnings.append(f"{untrusted} event(s) whose source side disagrees with the record side (a retime the adapter cannot "
                        "read, or source timecodes of another rate) are placed by their record timecodes and not dubbed")

    def strict():
        return _flag_untrusted(_record_start_as_global_start(
            otio.adapters.read_from_string(text, adapter_name="cmx_3600", rate=float(edl_rate))))

    try:
        return strict(), edl_rate, False
    except Exception as exc:
        first = f"{type(exc).__name__}: {_short(exc)}"
    try:
        obj = _flag_untrusted(_record_start_as_global_start(
            otio.adapters.read_from_string(text, adapter_name="cmx_3600", rate=float(edl_rate), ignore_timecode_mismatch=True)))
    except Exception as exc:
        raise InvalidArgumentError(
            f"{path}: the cmx_3600 adapter cannot read this EDL at {format_rate(edl_rate)} fps: strict read: {first}; "
            f"lenient read: {type(exc).__name__}: {_short(exc)}",
            hint="mixed timecode bases or a non-CMX layout are not supported; check rate=, or export OTIO / FCP7 XML",
            details={"adapter": "cmx_3600"},
        ) from None
    warnings.append(
        f"strict read failed ({first}); read again with ignore_timecode_mismatch=True, "
        "which can shift record frames where source and record durations disagree"
    )
    return obj, edl_rate, True


_UNTRUSTED = "EDIDUB SOURCE UNTRUSTED:"
_M2_SPEED = re.compile(r"^M2\s+(?P<name>.*?)\s*(?P<speed>-?[0-9.]*)\s*(?P<tc>[0-9:]{11})$")  # what the adapter can read


def _untrusted_sources(text, rate):
    """Make every cut event's source side agree with its record side, marking those that did not.

    Record positions must come from the record timecodes.  The cmx_3600 adapter places an event by its
    source duration when that differs from the record duration and no M2 line it can read explains
    it (``ignore_timecode_mismatch``), shifting every later event — an Avid M2 retime of a 48 fps
    source moved 316 of 376 events, the last by 1548 frames.  Such an event (or one whose source
    timecodes are not timecodes at the EDL's rate) gets a source side as long as its record side
    and a comment, and :func:`_flag_untrusted` gives its clip a time effect: it is placed exactly
    and skipped as retimed, never shifted and never dubbed from the wrong frames.
    """
    from edidub_engine.timebase import frame_to_timecode, timecode_to_frame

    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _EVENT.match(line)]
    out, count = [], 0
    bounds = dict(zip(starts, starts[1:] + [len(lines)]))
    skip: set[int] = set()
    for i, line in enumerate(lines):
        if i in skip:
            continue
        out.append(line)
        if i not in bounds:
            continue
        parts = line.split()
        if len(parts) != 8 or parts[3].upper() != "C":
            continue  # dissolves, wipes and keys: the adapter's own handling
        notes = range(i + 1, bounds[i])
        m2 = [j for j in notes if lines[j].strip().upper().startswith("M2")]
        if any("FREEZE" in lines[j].upper() for j in notes):
            continue
        m = _EVENT.match(line)
        si, so, ri, ro = m.groups()
        try:
            record = timecode_to_frame(ro, rate) - timecode_to_frame(ri, rate)
        except Exception:
            continue  # a broken record side: the adapter's error says so
        why = None
        try:
            source_in, source = timecode_to_frame(si, rate), timecode_to_frame(so, rate) - timecode_to_frame(si, rate)
        except Exception:
            source_in, source, why = 0, None, f"source timecodes {si}-{so} are not {format_rate(rate)} fps timecodes"
        if why is None and m2:
            readable = all((mm := _M2_SPEED.match(lines[j].strip())) and mm.group("speed") not in ("", ".", "-") for j in m2)
            if not readable:
                why = f"an M2 line the reader cannot use: {lines[m2[0]].strip()[:60]!r}"
        elif why is None and source != record:
            why = f"the source side runs {source} frames for {record} record frames, with no M2 line"
        if why is None:
            continue
        new_out = frame_to_timecode(source_in + record, rate)
        new_in = frame_to_timecode(source_in, rate)
        (s1, e1), (s2, e2) = m.span(1), m.span(2)
        out[-1] = line[:s1] + new_in + line[e1:s2] + new_out + line[e2:]
        out.append(f"* {_UNTRUSTED} {why}")
        skip.update(m2)
        count += 1
    return "\n".join(out) + "\n", count


def _flag_untrusted(timeline):
    """A clip of an event :func:`_untrusted_sources` marked gets a time effect: converters skip it as retimed."""
    if not isinstance(timeline, otio.schema.Timeline):
        return timeline
    for clip in timeline.find_clips():
        comments = clip.metadata.get("cmx_3600", {}).get("comments", []) if hasattr(clip.metadata, "get") else []
        for comment in comments:
            if _UNTRUSTED in comment:
                why = comment.split(_UNTRUSTED, 1)[1].strip()
                clip.effects.append(otio.schema.TimeEffect(name="EDL retime", effect_name=f"EDL retime ({why})"))
                break
    return timeline


def _record_start_as_global_start(timeline):
    """The cmx_3600 reader puts the first record timecode in each track's ``source_range`` as a negative
    start (-90523 for 01:00:20:23 at 25), not in ``global_start_time``.  Every other format, and the
    write-back, keeps it in the timeline's global start; move it there so that record frames are
    ``global start + track time`` everywhere and a written-back EDL does not apply the start twice."""
    if not isinstance(timeline, otio.schema.Timeline) or timeline.global_start_time is not None:
        return timeline
    ranges = [t.source_range for t in timeline.tracks]
    if not ranges or any(r is None for r in ranges):
        return timeline
    starts = {(r.start_time.value, r.start_time.rate) for r in ranges}
    if len(starts) != 1 or ranges[0].start_time.value > 0:
        return timeline
    for track, r in zip(timeline.tracks, ranges):
        if r.duration != track.available_range().duration:
            return timeline  # a track trimmed for another reason: leave the file's own shape
    start = ranges[0].start_time
    timeline.global_start_time = otio.opentime.RationalTime(-start.value, start.rate)
    for track in timeline.tracks:
        track.source_range = None
    return timeline


def _drop_header_comments(text):
    """Drop lines before the first event other than TITLE: and FCM: — the cmx_3600 adapter calls
    any other header line (``* comment``, EDL-X's indented multi-line options) an unknown event."""
    lines = text.splitlines()
    out, dropped, in_header = [], 0, True
    for line in lines:
        stripped = line.strip()
        if in_header and stripped and stripped[0].isdigit() and _EVENT.match(line):
            in_header = False
        if in_header and stripped and not stripped.startswith(("TITLE:", "FCM")):
            dropped += 1
            continue
        out.append(line)
    return "\n".join(out) + "\n", dropped


def _infer_edl_rate(text):
    max_frame, drop = 0, False
    for line in text.splitlines():
        if line.strip().upper().startswith("FCM") and "NON" not in line.upper() and "DROP" in line.upper():
            drop = True
        m = _EVENT.match(line)
        if m:
            for tc in m.group(3, 4):  # record timecodes only: sources may use another base
                max_frame = max(max_frame, int(re.split(r"[:;.]", tc)[-1]))
                drop = drop or ";" in tc
    if max_frame >= 30:
        base = 60
    elif max_frame >= 25:
        base = 30
    elif max_frame == 24:
        base = 25
    else:
        base = 24
    if drop and base in (30, 60):
        return Fraction(base * 1000, 1001), f"drop-frame record timecodes with frames up to {max_frame}"
    return Fraction(base), f"record timecodes with frames up to {max_frame}"


def _mark_drop_frame(text, rate):
    """Write drop-frame timecodes with ';' so OTIO counts them as drop frame (it decides by the
    separator alone): record timecodes follow the header's FCM line, source timecodes the FCM
    line in force at the event (Avid writes one per event for the source tape)."""
    ntsc = rate in (Fraction(30000, 1001), Fraction(60000, 1001))
    out, header_drop, drop, count, seen_event = [], False, False, 0, False
    for line in text.splitlines():
        upper = line.strip().upper()
        if upper.startswith("FCM"):
            drop = "NON" not in upper and "DROP" in upper
            if not seen_event:
                header_drop = drop
        m = _EVENT.match(line)
        if m:
            seen_event = True
            marks = (drop, drop, header_drop, header_drop)
            pieces, pos = [], 0
            for k, (tc, df) in enumerate(zip(m.groups(), marks)):
                s, e = m.span(k + 1)
                pieces.append(line[pos:s])
                parts = re.split(r"[:;.]", tc)
                df = ntsc and (df or ";" in tc)  # "10;35;42;53" (EDL-X) is drop frame too
                pieces.append(":".join(parts[:3]) + (";" if df else ":") + parts[3])
                pos = e
            pieces.append(line[pos:])
            new = "".join(pieces)
            count += new != line
            line = new
        out.append(line)
    return "\n".join(out) + "\n", count


# ---------------------------------------------------------------------------------------------- FCP X


def _check_fcpx(path, timeline, warnings):
    """fcpx_xml 1.0.0 misreads NTSC rates (29.97 → 29) and drops transitions: refuse rather than
    return wrong frames."""
    text = path.read_text(encoding="utf-8", errors="replace")
    rates = {}  # format id → frame rate, from frameDuration ("1001/30000s", "15015/360000s", "100/2500s")
    for m in re.finditer(r'<format\b[^>]*>', text):
        fid, dur = re.search(r'\bid="([^"]+)"', m.group(0)), re.search(r'\bframeDuration="(\d+)(?:/(\d+))?s"', m.group(0))
        if fid and dur and int(dur.group(1)):
            rates[fid.group(1)] = Fraction(int(dur.group(2) or 1), int(dur.group(1)))

    def ntsc(rate):
        return rate is not None and rate.denominator != 1 and (rate * 1001).denominator == 1

    for m in re.finditer(r'<sequence\b[^>]*\bformat="([^"]+)"', text):  # the projects' own rate decides
        rate = rates.get(m.group(1))
        if ntsc(rate):
            raise InvalidArgumentError(
                f"{path}: FCP X project at {format_rate(rate)} fps: the fcpx_xml adapter reads NTSC rates as whole "
                "numbers (29.97 as 29), so every frame would be wrong",
                hint="export FCP7 XML or OTIO from Final Cut Pro (or through a converter) instead",
            )
    # An NTSC asset cut into a 25/50 fps (or 24, 30) project: its clips' source times are misread the same way.
    ntsc_assets = {a.group(1) for a in re.finditer(r'<asset\b[^>]*\bname="([^"]*)"[^>]*\bformat="([^"]+)"', text) if ntsc(rates.get(a.group(2)))}
    flagged = 0
    for clip in timeline.find_clips():
        if clip.name in ntsc_assets:
            clip.metadata["edidub_untrusted_source"] = "the fcpx_xml adapter misreads the source times of an NTSC asset (29.97 as 29)"
            flagged += 1
    if flagged:
        warnings.append(f"{flagged} clip(s) of NTSC assets ({', '.join(sorted(ntsc_assets))}) are not dubbed: the fcpx_xml adapter "
                        "misreads their source frames")
    transitions = len(re.findall(r"<transition\b", text))
    if transitions and not any(
        isinstance(c, otio.schema.Transition) for c in timeline.find_children(descended_from_type=otio.schema.Transition)
    ):
        warnings.append(
            f"the FCPXML has {transitions} transition(s) that the fcpx_xml adapter drops: dissolve handles are not dubbed"
        )
    if re.search(r"<media-rep\b", text) and not any(
        isinstance(c.media_reference, otio.schema.ExternalReference) for c in timeline.find_clips()
    ):
        warnings.append("the fcpx_xml adapter does not read <media-rep>: every clip's media is missing")
