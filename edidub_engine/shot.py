"""The two contracts every caller shares (``../shared/DESIGN.md``): what to dub, and what came back.

:class:`ShotRequest` is what a plugin, the batch tool, a TD script or a render
farm's command line asks for; :class:`RenderedClip` is what the engine returns.
Both travel as plain maps (msgpack on the wire, JSON in files): ``to_dict`` /
``from_dict`` are the only (de)serialisers, and ``from_dict`` validates, naming
the shot and the field so a bad request is a clear error, never a traceback.
Rates are rationals written ``"30000/1001"`` (a typed 29.97 is read as that NTSC rate,
:func:`edidub_engine.timebase.parse_rate`); frames are half-open ``[start, end)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from typing import Any

from .errors import InvalidArgumentError
from .timebase import format_rate, parse_rate  # one reading of a typed rate (decimals: the NTSC rate they mean)

#: What a shot may be delivered as, and each file's extension (the media writer's; kept here so
#: light callers — the daemon, the plugins — need not import PyAV to name an output).
#: An image-sequence codec's output is a folder (no extension) of numbered frames (media.sequence).
OUTPUT_EXTENSIONS = {"prores_hq": ".mov", "h264": ".mp4", "ffv1": ".mkv", "prores_4444xq": ".mov", "dnxhr_hqx": ".mov",
                     "exr": "", "dpx": ""}
SEQUENCE_CODECS = ("exr", "dpx")
#: The shortest take an actor adaptation learns from: 50 frames to train on and 25 held back for validation
#: (here, not in training, so the plugins — Resolve's Python has no numpy — check it before they submit).
MIN_ADAPT_TAKE_FRAMES = 75
#: One line each for help texts.
CODEC_HELP = ("prores_hq: ProRes 422 HQ .mov (default); h264: H.264 .mp4 for review; ffv1: FFV1 .mkv, lossless in the source's "
              "own pixel format; prores_4444xq: ProRes 4444 XQ .mov (10-bit 4:4:4); dnxhr_hqx: DNxHR HQX .mov (10-bit 4:2:2); "
              "exr: a folder of EXR frames (from EXR plates); dpx: a folder of DPX frames (10-bit and up)")
CODECS = tuple(OUTPUT_EXTENSIONS)


@dataclass(frozen=True)
class SourceRange:
    """The source media's own frames, file-relative from 0."""

    path: str
    start_frame: int
    end_frame: int
    rate: Fraction | None = None  # the caller's idea of the rate; checked against the file when given

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame


@dataclass(frozen=True)
class AudioSegment:
    """A stretch of the dub speech: ``duration_s`` seconds from ``start_s`` of ``path``,
    placed ``offset_s`` seconds after the shot's first frame."""

    path: str
    start_s: float = 0.0
    duration_s: float | None = None
    offset_s: float = 0.0


@dataclass(frozen=True)
class OutputSpec:
    dir: str | None = None  # default: beside nothing — the caller's working folder (CLI) or the daemon's output root
    codec: str = "prores_hq"
    name: str | None = None  # default: "<source stem>_<shot_id>_dub"
    patch: bool = False  # also write the edited region alone as ProRes 4444 with alpha
    audio: bool = True  # the dub line as the clip's sound; False: picture only (an NLE placing it keeps its own dub track)

    @classmethod
    def from_dict(cls, data: Any, where: str = "output") -> "OutputSpec":
        """From a wire or file map: unknown names and wrong basic types are refused, naming ``where``."""
        return _dataclass_from(cls, data, where)


@dataclass(frozen=True)
class DubOptions:
    """Per-shot settings; ``None`` means the model's / paper's default (50 steps, guidance 5)."""

    steps: int | None = None
    inversion_steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    face: str | int = "largest"  # "largest", an index counted left to right (from 0), or "x,y" in pixels
    strength: float = 1.0
    model: str | None = None  # the model bundle to dub with, by name (a daemon lists them: `models`); None: its default

    @classmethod
    def from_dict(cls, data: Any, where: str = "options") -> "DubOptions":
        """From a wire or file map: unknown names and wrong basic types are refused, naming ``where``."""
        return _check_options(_dataclass_from(cls, data, where), where)


@dataclass(frozen=True)
class FaceLine:
    """One face of a two-shot or panel and what it says: ``face`` as ``options.face`` takes it (an index counted
    left to right, ``"largest"`` or ``"x,y"``); ``dub_audio`` its own line; or, with the shot's ``speakers`` rule, no
    audio of its own and optionally ``speaking``: the half-open shot frames ``[[s, e], …]`` of the mixed line it is
    given (the supervisor's word over the rule's)."""

    face: str | int
    dub_audio: tuple[AudioSegment, ...] = ()
    speaking: tuple[tuple[int, int], ...] | None = None


SPEAKER_RULES = ("auto",)


@dataclass(frozen=True)
class ShotRequest:
    shot_id: str
    source: SourceRange
    dub_audio: tuple[AudioSegment, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    options: DubOptions = field(default_factory=DubOptions)
    record: dict[str, Any] = field(default_factory=dict)  # opaque to the engine; echoed for write-back
    # Several faces (protocol 1.1): a line per face; or one mixed line (``dub_audio``) shared out by ``speakers``
    # ("auto": each stretch to the face that spoke it in the original). Empty and None: one face, options.face.
    lines: tuple[FaceLine, ...] = ()
    speakers: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["source"]["rate"] = None if self.source.rate is None else format_rate(self.source.rate)
        out["dub_audio"] = [asdict(s) for s in self.dub_audio]
        if not self.lines:  # one face: the map every 1.0 client knows
            del out["lines"]
        else:
            out["lines"] = [{"face": line.face, "dub_audio": [asdict(s) for s in line.dub_audio],
                             **({} if line.speaking is None else {"speaking": [list(r) for r in line.speaking]})} for line in self.lines]
        if self.speakers is None:
            del out["speakers"]
        return out

    def face_lines(self) -> tuple[FaceLine, ...]:
        """The faces to dub and their lines: ``lines``, or the one face of ``options.face`` with ``dub_audio``."""
        return self.lines or (FaceLine(face=self.options.face, dub_audio=self.dub_audio),)

    @classmethod
    def from_dict(cls, data: Any) -> "ShotRequest":
        if not isinstance(data, dict):
            raise InvalidArgumentError("a shot request must be a map", hint="see ShotRequest in docs or DESIGN.md")
        shot_id = data.get("shot_id")
        if not isinstance(shot_id, str) or not shot_id.strip() or len(shot_id) > 200:
            raise InvalidArgumentError("shot request: shot_id must be a non-empty string of at most 200 characters")
        where = f"shot {shot_id!r}"
        _known_keys(data, ("shot_id", "source", "dub_audio", "output", "options", "record", "lines", "speakers"), where)
        source = _require_map(data, "source", where)
        _known_keys(source, ("path", "start_frame", "end_frame", "rate"), f"{where} source")
        path = _string(source, "path", where)
        start, end = _int(source, "start_frame", where), _int(source, "end_frame", where)
        if start < 0 or end <= start or end > MAX_FRAME:
            raise InvalidArgumentError(
                f"{where}: source frames [{start}, {end}) are not a range",
                hint=f"end_frame must be greater than start_frame >= 0 (and at most {MAX_FRAME})",
            )
        rate = None if source.get("rate") is None else parse_rate(source["rate"], where=f"{where} source")
        speakers = data.get("speakers")
        if speakers is not None and speakers not in SPEAKER_RULES:
            raise InvalidArgumentError(f"{where}: speakers is {speakers!r}", hint="\"auto\" shares a mixed line out to the faces "
                                       "that spoke each stretch in the original; leave it out for a line per face")
        lines = _lines(data.get("lines"), where, mixed=speakers is not None, end=end - start)
        raw_audio = data.get("dub_audio")
        if isinstance(raw_audio, dict):
            raw_audio = [raw_audio]
        if raw_audio is None and lines and speakers is None:
            raw_audio = []  # every face has its own line
        if not isinstance(raw_audio, list) or (not raw_audio and not (lines and speakers is None)):
            raise InvalidArgumentError(f"{where}: dub_audio must name at least one audio segment",
                                       hint="or give each face its line under lines")
        segments = tuple(_segment(seg, f"{where} dub_audio[{i}]") for i, seg in enumerate(raw_audio))
        if segments and lines and speakers is None:
            raise InvalidArgumentError(f"{where}: both dub_audio and lines name dub lines",
                                       hint='give each face its line under lines, or one mixed line as dub_audio with "speakers": "auto"')
        output = OutputSpec.from_dict(data.get("output") or {}, f"{where} output")
        if output.codec not in CODECS:
            raise InvalidArgumentError(f"{where}: codec {output.codec!r} is not supported", hint=f"use one of {', '.join(CODECS)}")
        options = DubOptions.from_dict(data.get("options") or {}, f"{where} options")
        if output.name is not None and (not output.name.strip() or any(c in output.name for c in "/\\\0") or output.name.startswith(".")):
            raise InvalidArgumentError(f"{where}: output name {output.name!r} is not a file name",
                                       hint="a plain name without folders (give the folder as output.dir), or leave it out for the default")
        record = data.get("record") or {}
        if not isinstance(record, dict):
            raise InvalidArgumentError(f"{where}: record must be a map (it is echoed back unchanged)")
        if len(lines) == 1 and speakers is None:  # one face with its line is the one-face request, exactly
            options = replace(options, face=lines[0].face)
            segments, lines = lines[0].dub_audio, ()
        return cls(shot_id, SourceRange(path, start, end, rate), segments, output, options, record, lines, speakers)


MAX_FACES = 16  # faces one shot dubs: a panel, not a crowd


def _lines(raw: Any, where: str, *, mixed: bool, end: int) -> tuple[FaceLine, ...]:
    """``lines`` of a request, checked: a face each (no face twice), with its own line unless ``mixed``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_FACES:
        raise InvalidArgumentError(f"{where}: lines must be a list of at most {MAX_FACES} faces with their lines")
    out, seen = [], set()
    for i, item in enumerate(raw):
        here = f"{where} lines[{i}]"
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{here} must be a map with face and dub_audio")
        _known_keys(item, ("face", "dub_audio", "speaking"), here)
        face = item.get("face")
        parts = face_selector_parts(face, f"{here}: face")
        if parts in seen:
            raise InvalidArgumentError(f"{here}: face {face!r} is listed twice", hint="give each face one line")
        seen.add(parts)
        audio = item.get("dub_audio") or []
        audio = [audio] if isinstance(audio, dict) else audio
        if not isinstance(audio, list):
            raise InvalidArgumentError(f"{here}: dub_audio must be a list of audio segments")
        segments = tuple(_segment(seg, f"{here} dub_audio[{j}]") for j, seg in enumerate(audio))
        if mixed and segments:
            raise InvalidArgumentError(f"{here}: a face has no line of its own when the shot's mixed line is shared out (speakers)",
                                       hint="give its stretches of the mixed line as speaking, or leave them to the rule")
        if not mixed and not segments:
            raise InvalidArgumentError(f"{here}: face {face!r} has no dub line", hint="name its dub_audio")
        speaking = item.get("speaking")
        if speaking is not None:
            if not mixed:
                raise InvalidArgumentError(f"{here}: speaking stretches share out a mixed line; this face has its own",
                                           hint='add "speakers": "auto" and one dub_audio for the shot, or leave speaking out')
            if not isinstance(speaking, list) or not all(
                    isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in r)
                    and 0 <= r[0] < r[1] <= end for r in speaking):
                raise InvalidArgumentError(f"{here}: speaking must be [[start, end], …] half-open frames of the shot (0 to {end})")
            speaking = tuple((int(a), int(b)) for a, b in speaking)
        out.append(FaceLine(face=face, dub_audio=segments, speaking=speaking))
    return tuple(out)


@dataclass(frozen=True)
class PassthroughRange:
    start_frame: int
    end_frame: int
    reason: str  # "no_face", "low_confidence", "cut", "occluded"…


@dataclass(frozen=True)
class RenderedClip:
    """A rendered shot. ``start_frame``/``end_frame`` count the rendered file's own frames (from 0);
    ``timecode`` is its first frame's (the source's timecode at the shot's start), and
    ``qc["source"]`` names the source range it replaces."""

    shot_id: str
    path: str
    start_frame: int
    end_frame: int
    rate: Fraction
    timecode: str
    frames_edited: int
    frames_passed_through: tuple[PassthroughRange, ...] = ()
    qc: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    patch_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate"] = format_rate(self.rate)
        out["frames_passed_through"] = [asdict(r) for r in self.frames_passed_through]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RenderedClip":
        data = dict(data)
        data["rate"] = parse_rate(data["rate"], where=f"rendered clip {data.get('shot_id')!r}")
        data["frames_passed_through"] = tuple(PassthroughRange(**r) for r in data.get("frames_passed_through", ()))
        return cls(**data)


def _require_map(data: dict, key: str, where: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: {key} must be a map")
    return value


def _string(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 4096 or "\x00" in value:
        raise InvalidArgumentError(f"{where}: {key} must be a non-empty path or name")
    return value


def _int(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{where}: {key} must be a whole number of frames, got {value!r}")
    return value


def _segment(seg: Any, where: str) -> AudioSegment:
    if not isinstance(seg, dict):
        raise InvalidArgumentError(f"{where} must be a map with path, start_s, duration_s")
    made = _dataclass_from(AudioSegment, seg, where)
    _string({"path": made.path}, "path", where)
    for name in ("start_s", "offset_s"):
        _within(getattr(made, name), 0.0, MAX_SECONDS, f"{where}: {name}", "seconds from 0 up to a day")
    if made.duration_s is not None:
        _within(made.duration_s, 0.0, MAX_SECONDS, f"{where}: duration_s", "a positive length in seconds, up to a day", open_low=True)
    return made


#: Longest time a request may name (a day): anything longer is a unit mistake, not a dub line.
MAX_SECONDS = 86_400.0
#: A frame number beyond any real media (a day at 10 000 fps): larger ones are overflow, not frames.
MAX_FRAME = 864_000_000
#: The diffusion's training timesteps: no sampler can take more steps than this.
MAX_STEPS = 1000
_FACE_POINT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*")
FACE_HINT = 'use "largest", a face index counted left to right from 0 (e.g. "1"), or a point "x,y" in pixels'


def face_selector_parts(face: Any, where: str = "face selector") -> tuple:
    """The grammar of ``options.face``: ``("largest",)``, ``("index", n)`` or ``("point", x, y)``.

    The one reading of it: requests are checked with it at submit, and
    :meth:`edidub_engine.face.FaceSelector.parse` builds its selector from it.
    """
    if isinstance(face, int) and not isinstance(face, bool) and face >= 0:
        return ("index", face)
    if isinstance(face, str):
        text = face.strip().lower()
        if text == "largest":
            return ("largest",)
        if text.isdigit():
            return ("index", int(text))
        m = _FACE_POINT.fullmatch(text)
        if m:
            return ("point", float(m.group(1)), float(m.group(2)))
    raise InvalidArgumentError(f"{where}: {face!r} is not a face selector", hint=FACE_HINT)


def _known_keys(data: dict, known: tuple[str, ...], where: str) -> None:
    """One rule for every map of a request: a name we do not know is refused (a typo must not be ignored)."""
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown field(s) {', '.join(unknown)}", hint=f"known: {', '.join(known)}")


def _within(value: float, low: float, high: float, what: str, expected: str, *, open_low: bool = False) -> None:
    """A finite number in [low, high] ((low, high] with ``open_low``), else a clear error (NaN and inf included)."""
    ok = math.isfinite(value) and (value > low if open_low else value >= low) and value <= high
    if not ok:
        raise InvalidArgumentError(f"{what} is {value!r}; expected {expected}")


def _check_options(options: "DubOptions", where: str) -> "DubOptions":
    """Every option in its range before a job exists (the worker must never be the first to find out)."""
    for name in ("seed", "face", "strength"):
        if getattr(options, name) is None:
            raise InvalidArgumentError(f"{where}: {name} must not be null", hint="leave it out for the default")
    for name in ("steps", "inversion_steps"):
        value = getattr(options, name)
        if value is not None and not 1 <= value <= MAX_STEPS:
            raise InvalidArgumentError(f"{where}: {name} is {value}; expected 1 to {MAX_STEPS}", hint="the paper uses 50")
    if options.guidance_scale is not None:
        _within(options.guidance_scale, 1.0, 30.0, f"{where}: guidance_scale", "1 (no guidance) to 30; the paper uses 5")
    if not 0 <= options.seed < 2**63:
        raise InvalidArgumentError(f"{where}: seed is {options.seed}; expected 0 to 2^63-1")
    _within(options.strength, 0.0, 1.0, f"{where}: strength", "more than 0 and at most 1", open_low=True)
    if options.model is not None and (not options.model.strip() or len(options.model) > 200):
        raise InvalidArgumentError(f"{where}: model must name a model bundle", hint="list them with the daemon's `models` request")
    face_selector_parts(options.face, f"{where}: face")
    return options


def _dataclass_from(kind: type, data: Any, where: str):
    """Build a flat dataclass from a map, checking names and basic types against the defaults."""
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where} must be a map")
    known = {f.name: f for f in fields(kind)}
    unknown = set(data) - set(known)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}", hint=f"known: {', '.join(known)}")
    for name, value in data.items():
        expected = known[name].type
        if value is None:
            continue
        ok = {
            "str": isinstance(value, str),
            "str | None": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "int | None": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "float | None": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }.get(expected, True)
        if not ok:
            raise InvalidArgumentError(f"{where}: {name} must be {expected.replace(' | None', '')}, got {value!r}")
    return kind(**data)
