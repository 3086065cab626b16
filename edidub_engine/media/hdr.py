"""HDR10 static metadata (SMPTE ST 2086 mastering display, CTA-861.3 content light level), carried over.

A PQ or HLG source usually says which display it was graded on and how bright it gets; players and
NLEs tone-map with it. FFmpeg hands it to us as frame side data (:func:`hdr_from_frame`), but PyAV
cannot attach side data to the streams it encodes, so a ProRes/DNxHR ``.mov`` written through PyAV
loses it. :func:`write_mov_hdr` puts it back afterwards as the QuickTime/ISO boxes ``mdcv`` and
``clli`` in the video track's sample entry, where FFmpeg's mov demuxer reads them back and its
decoders put them on every frame again (checked here; Resolve and Apple players were not).

The file is edited without moving a single sample: only a file whose ``moov`` comes after its media
data (what FFmpeg's mov muxer writes without ``faststart``) can grow its ``moov`` safely, because
the chunk offsets point in front of it. Anything else is refused, and the file is never left
half-written: the new file is written beside it and renamed over it.

Values are exact ``Fraction``s of the units FFmpeg reports (chromaticity in 1/50000, luminance in
1/10000 cd/m²), which are the boxes' units too: what goes in a box comes back out equal.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, MediaNotFoundError

__all__ = [
    "ContentLightLevel",
    "HdrMetadata",
    "MasteringDisplay",
    "MovLayoutError",
    "hdr_from_frame",
    "read_mov_hdr",
    "write_mov_hdr",
]

Chromaticity = tuple[Fraction, Fraction]

_CHROMA_DEN = 50_000  # ST 2086 / mdcv: chromaticity in units of 0.00002
_LUMA_DEN = 10_000  # ST 2086 / mdcv: luminance in units of 0.0001 cd/m²
_UINT16, _UINT32 = 0xFFFF, 0xFFFF_FFFF

# FFmpeg's C structs as side data (libavutil/mastering_display_metadata.h): AVRational
# display_primaries[3][2] (R, G, B; x, y), white_point[2], min_luminance, max_luminance, then int
# has_primaries, has_luminance; AVContentLightMetadata is unsigned MaxCLL, MaxFALL. Native byte order;
# their sizeof is not ABI, so only the known prefix is read.
_AV_MASTERING = struct.Struct("=20i2i")
_AV_CONTENT_LIGHT = struct.Struct("=2I")


class MovLayoutError(MediaDecodeError, ValueError):
    """A file whose box layout :func:`write_mov_hdr` cannot grow safely; it was left unchanged."""


def _fraction(value, name: str) -> Fraction:
    try:
        return value if isinstance(value, Fraction) else Fraction(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name}={value!r} is not a number") from None


@dataclass(frozen=True)
class MasteringDisplay:
    """The grading display's colour volume (SMPTE ST 2086): CIE 1931 xy of its primaries and white, its luminance range.

    ST 2086 and the ``mdcv`` box always carry both halves, so this does too.
    """

    primaries: tuple[Chromaticity, Chromaticity, Chromaticity]  # (R, G, B), each (x, y)
    white_point: Chromaticity
    min_luminance_cd_m2: Fraction
    max_luminance_cd_m2: Fraction

    def __post_init__(self):
        if len(self.primaries) != 3:
            raise InvalidArgumentError(f"mastering display primaries must be (R, G, B), got {len(self.primaries)} of them")
        named = [*zip("RGB", self.primaries), ("white point", self.white_point)]
        xy = []
        for name, point in named:
            if len(point) != 2:
                raise InvalidArgumentError(f"mastering display {name} must be an (x, y) pair, got {point!r}")
            pair = (_fraction(point[0], f"{name} x"), _fraction(point[1], f"{name} y"))
            if not all(0 <= c <= 1 for c in pair):
                raise InvalidArgumentError(f"mastering display {name} ({float(pair[0])}, {float(pair[1])}) is outside CIE xy [0, 1]")
            xy.append(pair)
        low = _fraction(self.min_luminance_cd_m2, "min_luminance_cd_m2")
        high = _fraction(self.max_luminance_cd_m2, "max_luminance_cd_m2")
        if not 0 <= low <= high or high * _LUMA_DEN > _UINT32:
            raise InvalidArgumentError(
                f"mastering display luminance {float(low)}–{float(high)} cd/m² is not a range 0 ≤ min ≤ max ≤ 429496 cd/m²"
            )
        object.__setattr__(self, "primaries", tuple(xy[:3]))
        object.__setattr__(self, "white_point", xy[3])
        object.__setattr__(self, "min_luminance_cd_m2", low)
        object.__setattr__(self, "max_luminance_cd_m2", high)

    @property
    def primaries_name(self) -> str | None:
        """The standard set these primaries and white are ("BT.2020", "P3-D65", …), or None."""
        for name, (primaries, white) in _KNOWN_PRIMARIES.items():
            points = [*zip(self.primaries, primaries), (self.white_point, white)]
            if all(abs(a[0] - b[0]) <= _MATCH and abs(a[1] - b[1]) <= _MATCH for a, b in points):
                return name
        return None

    def describe(self) -> str:
        name = self.primaries_name
        if name is not None:
            where = f"{name} primaries"
        else:
            xy = " ".join(f"{c}({float(x):.4f}, {float(y):.4f})" for c, (x, y) in zip("RGB", self.primaries))
            where = f"primaries {xy} white ({float(self.white_point[0]):.4f}, {float(self.white_point[1]):.4f})"
        high = f"{float(self.max_luminance_cd_m2):.4f}".rstrip("0").rstrip(".")
        return f"mastering {where}, {float(self.min_luminance_cd_m2):.4f}–{high} cd/m²"


@dataclass(frozen=True)
class ContentLightLevel:
    """The content's brightest pixel (MaxCLL) and brightest frame average (MaxFALL), in cd/m²; 0 means unknown."""

    max_cll_cd_m2: int
    max_fall_cd_m2: int

    def __post_init__(self):
        for name in ("max_cll_cd_m2", "max_fall_cd_m2"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or not 0 <= value <= _UINT16:
                raise InvalidArgumentError(f"{name}={value!r} is not a whole number of cd/m² in 0..65535 (the clli box's range)")
            object.__setattr__(self, name, int(value))

    def describe(self) -> str:
        return f"MaxCLL {self.max_cll_cd_m2}, MaxFALL {self.max_fall_cd_m2}"


@dataclass(frozen=True)
class HdrMetadata:
    """A stream's HDR10 static metadata: either part may be absent, not both (no metadata is ``None``)."""

    mastering: MasteringDisplay | None = None
    content_light: ContentLightLevel | None = None

    def __post_init__(self):
        if self.mastering is None and self.content_light is None:
            raise InvalidArgumentError("HdrMetadata needs a mastering display or a content light level; no metadata is None")

    def describe(self) -> str:
        """One line for reports, e.g. "mastering P3-D65 primaries, 0.0050–1000 cd/m², MaxCLL 1000, MaxFALL 400"."""
        parts = [
            self.mastering.describe() if self.mastering else "no mastering display",
            self.content_light.describe() if self.content_light else "no content light level",
        ]
        return ", ".join(parts)


def _xy(x: str, y: str) -> Chromaticity:
    return Fraction(x), Fraction(y)


_D65 = _xy("0.3127", "0.3290")
_P3 = (_xy("0.680", "0.320"), _xy("0.265", "0.690"), _xy("0.150", "0.060"))
_KNOWN_PRIMARIES = {  # (R, G, B), white
    "BT.2020": ((_xy("0.708", "0.292"), _xy("0.170", "0.797"), _xy("0.131", "0.046")), _D65),
    "P3-D65": (_P3, _D65),
    "DCI-P3": (_P3, _xy("0.314", "0.351")),
    "BT.709": ((_xy("0.64", "0.33"), _xy("0.30", "0.60"), _xy("0.15", "0.06")), _D65),
}
_MATCH = Fraction(1, 2000)  # 25 box units: masters round the standard coordinates differently, never by this much


# -- reading frames ------------------------------------------------------------------------------------


def hdr_from_frame(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR10 metadata a decoded frame carries, or None.

    Decoders attach it from the bitstream (HEVC/AV1 SEI/OBUs) or from the container (``mdcv``/``clli``,
    Matroska's MasteringMetadata), usually on every frame. A part whose values are malformed (zero
    denominators, out of range) is treated as absent: it cannot be written back faithfully.
    """
    kinds = av.sidedata.sidedata.Type
    mastering = _mastering_from_side_data(frame.side_data.get(kinds.MASTERING_DISPLAY_METADATA))
    light = _content_light_from_side_data(frame.side_data.get(kinds.CONTENT_LIGHT_LEVEL))
    if mastering is None and light is None:
        return None
    return HdrMetadata(mastering=mastering, content_light=light)


def _mastering_from_side_data(side_data) -> MasteringDisplay | None:
    if side_data is None or len(raw := bytes(side_data)) < _AV_MASTERING.size:
        return None
    *rationals, has_primaries, has_luminance = _AV_MASTERING.unpack_from(raw)
    if not (has_primaries and has_luminance):
        return None  # half a colour volume cannot be written as ST 2086 / mdcv
    pairs = list(zip(rationals[0::2], rationals[1::2]))
    if any(den <= 0 or num < 0 for num, den in pairs):
        return None
    values = [Fraction(num, den) for num, den in pairs]
    xy = list(zip(values[0:8:2], values[1:8:2]))
    try:
        return MasteringDisplay(
            primaries=tuple(xy[:3]), white_point=xy[3], min_luminance_cd_m2=values[8], max_luminance_cd_m2=values[9]
        )
    except InvalidArgumentError:
        return None


def _content_light_from_side_data(side_data) -> ContentLightLevel | None:
    if side_data is None or len(raw := bytes(side_data)) < _AV_CONTENT_LIGHT.size:
        return None
    max_cll, max_fall = _AV_CONTENT_LIGHT.unpack_from(raw)
    try:
        return ContentLightLevel(max_cll_cd_m2=max_cll, max_fall_cd_m2=max_fall)
    except InvalidArgumentError:
        return None


# -- the boxes -------------------------------------------------------------------------------------------


def _box_units(value: Fraction, den: int, limit: int, what: str) -> int:
    units = round(value * den)
    if not 0 <= units <= limit:
        raise InvalidArgumentError(f"{what} {float(value)} does not fit its box field")
    return units


def _mdcv_payload(mastering: MasteringDisplay) -> bytes:
    """mdcv as FFmpeg's movenc writes and mov.c reads it (big-endian, no version/flags).

    Primaries in G, B, R order (x, y each) and the white point, uint16 in 0.00002; then max and min
    luminance, uint32 in 0.0001 cd/m². ST 2086's order, not FFmpeg's in-memory R, G, B.
    """
    red, green, blue = mastering.primaries
    chroma = [_box_units(c, _CHROMA_DEN, _UINT16, "chromaticity") for xy in (green, blue, red, mastering.white_point) for c in xy]
    luma = [_box_units(v, _LUMA_DEN, _UINT32, "luminance") for v in (mastering.max_luminance_cd_m2, mastering.min_luminance_cd_m2)]
    return struct.pack(">8H2I", *chroma, *luma)


def _clli_payload(light: ContentLightLevel) -> bytes:
    return struct.pack(">2H", light.max_cll_cd_m2, light.max_fall_cd_m2)


def _mastering_from_mdcv(payload: bytes) -> MasteringDisplay:
    *chroma, max_units, min_units = struct.unpack_from(">8H2I", payload)
    green, blue, red, white = (tuple(Fraction(c, _CHROMA_DEN) for c in chroma[i : i + 2]) for i in range(0, 8, 2))
    return MasteringDisplay(
        primaries=(red, green, blue),
        white_point=white,
        min_luminance_cd_m2=Fraction(min_units, _LUMA_DEN),
        max_luminance_cd_m2=Fraction(max_units, _LUMA_DEN),
    )


# -- QuickTime / ISO box layout ---------------------------------------------------------------------------

_HEADER = struct.Struct(">I4s")
_LARGE_SIZE = struct.Struct(">Q")
_AFTER_MOOV_OK = {b"free", b"skip", b"wide"}  # nothing points into these, so moving them is harmless
_VISUAL_SAMPLE_ENTRY_FIELDS = 78  # reserved, data ref, version, vendor, quality, size, dpi, frame count, name, depth, clut id
_STSD_FIELDS = 8  # version+flags, entry count


@dataclass(frozen=True)
class _Box:
    kind: bytes
    start: int
    header_size: int
    end: int

    @property
    def payload_start(self) -> int:
        return self.start + self.header_size


class _Layout(Exception):
    """Internal: why a file's structure is not one we edit (becomes a MovLayoutError naming the file)."""


def _parse_header(head: bytes, pos: int, end: int) -> _Box:
    if len(head) < 8:
        raise _Layout(f"a truncated box header at byte {pos}")
    size, kind = _HEADER.unpack_from(head)
    header_size = 8
    if size == 1:
        if len(head) < 16:
            raise _Layout(f"a truncated 64-bit box header at byte {pos}")
        (size,) = _LARGE_SIZE.unpack_from(head, 8)
        header_size = 16
    elif size == 0:
        size = end - pos  # "extends to the end of its parent"
    if not all(32 <= c < 127 for c in kind):
        raise _Layout(f"bytes {kind!r} at byte {pos} are not a box type")
    if size < header_size or pos + size > end:
        raise _Layout(f"box {kind.decode('latin-1')!r} at byte {pos} claims {size} bytes where {end - pos} remain")
    return _Box(kind, pos, header_size, pos + size)


def _children(data: bytes, start: int, end: int, *, allow_zero_tail: bool = False) -> tuple[list[_Box], int]:
    """The boxes in ``data[start:end]`` and where they end (before a trailing zero terminator, if allowed)."""
    boxes, pos = [], start
    while pos < end:
        if allow_zero_tail and end - pos <= 8 and not any(data[pos:end]):
            break  # QuickTime's optional 32-bit zero terminator after a sample entry's extensions
        box = _parse_header(data[pos : pos + 16], pos, end)
        boxes.append(box)
        pos = box.end
    return boxes, pos


def _top_level(handle, file_size: int) -> list[_Box]:
    boxes, pos = [], 0
    while pos < file_size:
        handle.seek(pos)
        box = _parse_header(handle.read(16), pos, file_size)
        boxes.append(box)
        pos = box.end
    return boxes


def _only(boxes: list[_Box], kind: bytes, inside: str) -> _Box:
    found = [b for b in boxes if b.kind == kind]
    if len(found) != 1:
        raise _Layout(f"{inside} holds {len(found)} {kind.decode()!r} boxes where one is expected")
    return found[0]


def _header(kind: bytes, payload_size: int, large: bool) -> bytes:
    """A box header, 64-bit where the original was or where 32 bits no longer suffice."""
    if large or payload_size + 8 > _UINT32:
        return _HEADER.pack(1, kind) + _LARGE_SIZE.pack(payload_size + 16)
    return _HEADER.pack(payload_size + 8, kind)


def _rebuilt(
    data: bytes, box: _Box, replacements: dict[_Box, bytes], *, fields: int = 0, extra: bytes = b"", tail_at: int | None = None
) -> bytes:
    """``box`` with some children replaced (b"" drops one) and ``extra`` appended before any terminator at ``tail_at``."""
    pieces, pos = [data[box.payload_start : box.payload_start + fields]], box.payload_start + fields
    for child in sorted(replacements, key=lambda b: b.start):
        pieces += [data[pos : child.start], replacements[child]]
        pos = child.end
    tail_at = box.end if tail_at is None else tail_at
    pieces += [data[pos:tail_at], extra, data[tail_at : box.end]]
    payload = b"".join(pieces)
    return _header(box.kind, len(payload), box.header_size == 16) + payload


def _video_track(data: bytes, moov: _Box) -> list[_Box]:
    """[trak, mdia, minf, stbl, stsd] of the one video track (``hdlr`` type ``vide``)."""
    found = []
    for trak in (b for b in _children(data, moov.payload_start, moov.end)[0] if b.kind == b"trak"):
        mdia = _only(_children(data, trak.payload_start, trak.end)[0], b"mdia", "a trak")
        hdlr = _only(_children(data, mdia.payload_start, mdia.end)[0], b"hdlr", "a trak's mdia")
        if data[hdlr.payload_start + 8 : min(hdlr.payload_start + 12, hdlr.end)] != b"vide":  # version+flags, type, subtype
            continue
        path = [trak, mdia]
        for kind, inside in ((b"minf", "trak/mdia"), (b"stbl", "trak/mdia/minf"), (b"stsd", "trak/mdia/minf/stbl")):
            path.append(_only(_children(data, path[-1].payload_start, path[-1].end)[0], kind, f"the video {inside}"))
        found.append(path)
    if len(found) != 1:
        raise _Layout(f"it has {len(found)} video tracks where one is expected")
    return found[0]


def _sample_entries(data: bytes, stsd: _Box) -> list[tuple[_Box, list[_Box], int]]:
    """Each video sample entry of ``stsd`` with its extension boxes and where they end (before any terminator)."""
    if stsd.end - stsd.payload_start < _STSD_FIELDS:
        raise _Layout("its stsd box is truncated")
    (count,) = struct.unpack_from(">I", data, stsd.payload_start + 4)
    entries, _ = _children(data, stsd.payload_start + _STSD_FIELDS, stsd.end)
    if count != len(entries) or not entries:
        raise _Layout(f"its stsd box says {count} sample entries and holds {len(entries)}")
    parsed = []
    for entry in entries:
        name = entry.kind.decode("latin-1")
        if entry.end - entry.payload_start < _VISUAL_SAMPLE_ENTRY_FIELDS:
            raise _Layout(f"its {name!r} sample entry is too short to be a video sample entry")
        try:
            children, tail_at = _children(data, entry.payload_start + _VISUAL_SAMPLE_ENTRY_FIELDS, entry.end, allow_zero_tail=True)
        except _Layout as exc:
            raise _Layout(f"the extensions of its {name!r} sample entry do not parse ({exc})") from None
        parsed.append((entry, children, tail_at))
    return parsed


def _patched_moov(data: bytes, moov: _Box, boxes: dict[bytes, bytes]) -> bytes:
    """moov with ``boxes`` (type → payload) in each video sample entry, in place of any boxes of those types."""
    path = _video_track(data, moov)
    new = b"".join(_HEADER.pack(8 + len(payload), kind) + payload for kind, payload in boxes.items())
    entries = {
        entry: _rebuilt(
            data, entry, {c: b"" for c in children if c.kind in boxes}, fields=_VISUAL_SAMPLE_ENTRY_FIELDS, extra=new, tail_at=tail_at
        )
        for entry, children, tail_at in _sample_entries(data, path[-1])
    }
    rebuilt = _rebuilt(data, path[-1], entries, fields=_STSD_FIELDS)
    for parent, child in zip(reversed([moov, *path[:-1]]), reversed(path)):  # stbl ← stsd, …, moov ← trak: every size grows
        rebuilt = _rebuilt(data, parent, {child: rebuilt})
    return rebuilt


def _read_moov(handle) -> tuple[list[_Box], _Box, bytes, _Box]:
    """The file's top-level boxes, its moov, and moov's bytes with moov re-based to offset 0 in them."""
    handle.seek(0, os.SEEK_END)
    boxes = _top_level(handle, handle.tell())
    moov = _only(boxes, b"moov", "the file")
    handle.seek(moov.start)
    data = handle.read(moov.end - moov.start)
    return boxes, moov, data, _Box(moov.kind, 0, moov.header_size, len(data))


def _check_moov_is_last(boxes: list[_Box], moov: _Box, path: Path) -> None:
    """Growing moov moves whatever follows it: refuse unless that is only padding."""
    after = [b.kind for b in boxes if b.start > moov.start]
    if b"mdat" in after:
        raise MovLayoutError(
            f"{path.name}: its moov box comes before its media data (a faststart file); growing it would move every "
            "sample its chunk offsets point at, so the HDR metadata was not written and the file is unchanged",
            hint="add the HDR metadata before moving moov to the front (ClipWriter's .mov files have moov at the end)",
            details={"path": str(path)},
        )
    if any(kind not in _AFTER_MOOV_OK for kind in after):
        raise _Layout(f"boxes {[k.decode('latin-1') for k in after]} follow moov, and moving them may break offsets")


def _refusal(path: Path, exc: _Layout, doing: str) -> MovLayoutError:
    return MovLayoutError(
        f"{path.name} is not a QuickTime/MP4 file whose HDR metadata can be {doing}: {exc}; the file is unchanged",
        hint="HDR metadata boxes go in .mov files as the engine writes them (moov at the end, one video track)",
        details={"path": str(path)},
    )


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise MediaNotFoundError(f"cannot open {path} ({exc.strerror or exc})", details={"path": str(path)}) from None


def _copy_range(source, target, start: int, length: int) -> None:
    source.seek(start)
    while length > 0:
        chunk = source.read(min(length, 1 << 24))
        if not chunk:
            raise OSError(f"the file shrank while it was being copied ({length} bytes missing)")
        target.write(chunk)
        length -= len(chunk)


def write_mov_hdr(path: str | os.PathLike, metadata: HdrMetadata | None) -> None:
    """Give a .mov's video track the ``mdcv`` and ``clli`` boxes of ``metadata``; every sample stays where it is.

    A part that is present replaces any box of its type already there; an absent part leaves the file's
    box (if any) alone; ``None`` leaves the file untouched. The edited file replaces the original
    atomically (same folder, same permissions; a symlink stays a symlink). Raises :class:`MovLayoutError`
    (a ``ValueError``) naming the file, and changes nothing, when the file is not QuickTime/ISO boxes,
    has its ``moov`` before its media data (faststart), or has not exactly one video track.
    """
    if metadata is None:
        return
    path = Path(os.path.realpath(Path(path).expanduser()))
    boxes = {}
    if metadata.mastering is not None:
        boxes[b"mdcv"] = _mdcv_payload(metadata.mastering)
    if metadata.content_light is not None:
        boxes[b"clli"] = _clli_payload(metadata.content_light)
    with _open(path) as source:
        try:
            top, moov, data, local = _read_moov(source)
            _check_moov_is_last(top, moov, path)
            new_moov = _patched_moov(data, local, boxes)
        except _Layout as exc:
            raise _refusal(path, exc, "written safely") from None
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.hdr-", suffix=path.suffix, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as target:
                _copy_range(source, target, 0, moov.start)
                target.write(new_moov)
                _copy_range(source, target, moov.end, top[-1].end - moov.end)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(temp_name, os.stat(path).st_mode & 0o7777)
            os.replace(temp_name, path)
        except BaseException:
            try:
                os.unlink(temp_name)
            except FileNotFoundError:
                pass
            raise


def read_mov_hdr(path: str | os.PathLike) -> HdrMetadata | None:
    """The ``mdcv``/``clli`` boxes of a .mov's video track (its first sample entry), or None; a check without decoding."""
    path = Path(path).expanduser().absolute()
    with _open(path) as source:
        try:
            _, _, data, local = _read_moov(source)
            _, children, _ = _sample_entries(data, _video_track(data, local)[-1])[0]
        except _Layout as exc:
            raise _refusal(path, exc, "read") from None
    found = {box.kind: data[box.payload_start : box.end] for box in children}
    mdcv, clli = found.get(b"mdcv", b""), found.get(b"clli", b"")
    try:
        mastering = _mastering_from_mdcv(mdcv) if len(mdcv) >= 24 else None
    except InvalidArgumentError:
        mastering = None  # chromaticity above 1: not ST 2086, as hdr_from_frame treats it
    light = ContentLightLevel(*struct.unpack_from(">2H", clli)) if len(clli) >= 4 else None
    return None if mastering is None and light is None else HdrMetadata(mastering=mastering, content_light=light)

