"""Image sequences for VFX conforms: EXR and DPX plates in and out, one file per frame.

A plate is named by a printf pattern (``sh010.%04d.exr``), a hash pattern (``sh010.####.exr``)
or the folder holding it when that folder holds one numbered sequence. Its frames are its files'
numbers, which must run without a gap; grid frame 0 is the first file. Files are read and
written with OpenImageIO, so every header attribute a plate carries (compression,
chromaticities, timecode, camera metadata) goes on to the dubbed frame of the same number.

Frames become decoded pictures, as a video's do, so tracking (on RGB) and compositing in the
source's own samples (:mod:`.native`) run unchanged:

- DPX: integer RGB(A), display-referred code values, at its own depth — ``gbrp``,
  ``gbrp10le``, ``gbrp12le``, ``gbrp16le`` (``gbrap…`` with alpha);
- EXR: half or float scene-linear RGB(A) as ``gbrpf32le`` (half is exact in float32); the
  networks see it through :mod:`.linear`'s view transform.

A plate declares its rate in ``framesPerSecond`` (EXR) or its DPX header; one that declares
none runs at :data:`DEFAULT_RATE` unless the shot request names its rate.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, MediaEncodeError, MediaNotFoundError, OutputExistsError
from edidub_engine.media.atomic import _umask
from edidub_engine.timebase import frame_to_timecode, is_drop_frame_rate, normalize_rate, round_half_up, timecode_to_frame

__all__ = ["DEFAULT_RATE", "SEQUENCE_KINDS", "SequenceFiles", "SequenceWriter", "find_sequence", "frame_pixels",
           "iter_sequence_pictures", "plate_header", "probe_sequence", "sequence_identity", "stem", "with_rate"]

#: The rate of a plate whose files declare none (the film and VFX default).
DEFAULT_RATE = Fraction(24)
#: File extension → kind.
SEQUENCE_KINDS = {".exr": "exr", ".dpx": "dpx"}
_PRINTF = re.compile(r"%0?(\d*)d")
_HASHES = re.compile(r"#+")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z]+)$")
# dpx:Transfer → FFmpeg's transfer code (H.273); a log or printing-density scan has none: unspecified.
_DPX_TRANSFER = {"Linear": 8, "ITU-R 709-4": 1, "SMPTE 274M": 1, "ITU-R 601-5 system B or G (625)": 6, "ITU-R 601-5 system M (525)": 6}


@dataclass(frozen=True)
class SequenceFiles:
    """A numbered run of image files: ``pattern % number`` for ``number`` in ``[first, first + count)``."""

    pattern: str  # printf form, absolute: /plates/sh010/sh010.%04d.exr
    first: int
    count: int
    kind: str  # "exr" or "dpx"
    rate_declared: bool = True

    def file(self, index: int) -> Path:
        """The file of grid frame ``index`` (0 = the first file)."""
        return Path(self.pattern % (self.first + index))


def _looks_like_sequence(text: str) -> bool:
    return bool(_PRINTF.search(Path(text).name) or _HASHES.search(Path(text).name))


def find_sequence(path: str | os.PathLike) -> SequenceFiles | None:
    """The sequence ``path`` names (a printf or hash pattern, or a folder of one numbered EXR/DPX run), or None when
    ``path`` names no sequence (an ordinary file). Raises a clear error for a pattern that matches nothing or a run
    with gaps."""
    text = os.fspath(path)
    p = Path(text).expanduser()
    try:
        is_folder = p.is_dir()
    except OSError:  # a name too long for the file system: not a plate (the caller's own checks say what is wrong)
        return None
    if is_folder:
        groups: dict[tuple[str, str, int], list[int]] = {}
        for entry in os.listdir(p):
            m = _NUMBERED.match(entry)
            if m and m.group(3).lower() in SEQUENCE_KINDS and not entry.startswith("."):
                groups.setdefault((m.group(1), m.group(3), len(m.group(2))), []).append(int(m.group(2)))
        if not groups:
            return None
        if len(groups) > 1:
            names = ", ".join(sorted(f"{a}{'#' * n}{b}" for a, b, n in groups))
            raise InvalidArgumentError(f"folder {p} holds more than one image sequence ({names})",
                                       hint="name one of them as a pattern, e.g. " + str(p / "name.%04d.exr"))
        (prefix, ext, pad), numbers = next(iter(groups.items()))
        return _checked(str((p / f"{prefix}%0{pad}d{ext}").resolve()), sorted(numbers), p)
    if not _looks_like_sequence(text) or Path(text).suffix.lower() not in SEQUENCE_KINDS:
        return None
    name = _HASHES.sub(lambda m: f"%0{len(m.group(0))}d", p.name)
    folder = p.parent.resolve()
    match = _PRINTF.search(name)
    prefix, suffix = name[: match.start()], name[match.end():]
    pad = int(match.group(1) or 0)
    wanted = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    numbers = sorted(int(m.group(1)) for entry in (os.listdir(folder) if folder.is_dir() else [])
                     if (m := wanted.match(entry)) and (pad == 0 or len(m.group(1)) >= pad))
    pattern = str(folder / f"{prefix}%0{pad}d{suffix}") if pad else str(folder / f"{prefix}%d{suffix}")
    if not numbers:
        raise MediaNotFoundError(f"no files match the image sequence {p}", hint="check the folder and the pattern (e.g. name.%04d.exr or name.####.exr)",
                                 details={"path": text})
    return _checked(pattern, numbers, p)


def _checked(pattern: str, numbers: list[int], named: Path) -> SequenceFiles:
    first, last = numbers[0], numbers[-1]
    if last - first + 1 != len(numbers):
        have = set(numbers)
        missing = [n for n in range(first, last + 1) if n not in have]
        shown = ", ".join(Path(pattern % n).name for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise MediaDecodeError(f"the image sequence {named} has gaps: {shown} missing between frames {first} and {last}",
                               hint="render or copy the missing frames; a dub needs an unbroken run of frames",
                               details={"path": str(named), "missing": missing[:100]})
    return SequenceFiles(pattern, first, len(numbers), SEQUENCE_KINDS[Path(pattern).suffix.lower()])


def _open(path: Path):
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(str(path))
    if image is None:
        reason = oiio.geterror() or "unreadable"
        if not path.exists():
            raise MediaNotFoundError(f"frame file {path} does not exist", hint="the sequence changed while it was read; check the folder",
                                     details={"path": str(path)})
        raise MediaDecodeError(f"{path.name} cannot be read ({reason.strip()})", hint="re-render the frame", details={"path": str(path)})
    return image


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    pix_fmt: str
    channels: tuple[int, ...]  # indices of R, G, B (and A) in the file
    bits: int  # bits per sample (32 for float)
    pixel_type: str  # OpenImageIO's name of the file's own type: "half", "float", "uint16", "uint8"


def _layout(spec, path: Path) -> _Layout:
    names = [str(n) for n in spec.channelnames]
    upper = [n.upper() for n in names]
    try:
        rgb = tuple(upper.index(c) for c in "RGB")
    except ValueError:
        raise MediaDecodeError(f"{path.name} has no R, G and B channels (it has {', '.join(names) or 'none'})",
                               hint="render the plate's colour as RGB(A) channels", details={"path": str(path)}) from None
    alpha = (upper.index("A"),) if "A" in upper else ()
    if (spec.x, spec.y, spec.width, spec.height) != (spec.full_x, spec.full_y, spec.full_width, spec.full_height):
        raise MediaDecodeError(f"{path.name}'s data window ({spec.width}×{spec.height} at {spec.x},{spec.y}) is not its display "
                               f"window ({spec.full_width}×{spec.full_height})",
                               hint="render the plate with its data window equal to its display window (no overscan or crop)",
                               details={"path": str(path)})
    pixel_type = str(spec.format)
    if pixel_type in ("half", "float", "double"):
        return _Layout(spec.width, spec.height, "gbrapf32le" if alpha else "gbrpf32le", rgb + alpha, 32, pixel_type)
    bits = int(spec.get_int_attribute("oiio:BitsPerSample", 0)) or (8 if pixel_type == "uint8" else 16)
    depth = {8: "", 10: "10le", 12: "12le", 16: "16le"}.get(bits)
    if depth is None:
        raise MediaDecodeError(f"{path.name} stores {bits}-bit samples, which EdiDub cannot composite in",
                               hint="re-render the plate as 8, 10, 12 or 16-bit DPX, or as EXR", details={"path": str(path)})
    return _Layout(spec.width, spec.height, ("gbrap" if alpha else "gbrp") + depth, rgb + alpha, bits, pixel_type)


def _rate(spec) -> Fraction | None:
    for name in ("framesPerSecond", "dpx:FrameRate", "FramesPerSecond"):
        value = spec.getattribute(name)
        if value is None:
            continue
        rate = Fraction(int(value[0]), int(value[1])) if isinstance(value, tuple) else Fraction(float(value)).limit_denominator(1001)
        if 0 < rate <= 480:
            return normalize_rate(rate)
    return None


def _colour(kind: str, spec):
    from edidub_engine.media.info import ColorTags

    if kind == "exr":  # scene-linear; OpenEXR's default chromaticities are BT.709's
        return ColorTags(matrix=0, primaries=1, transfer=8, range=2)
    return ColorTags(matrix=0, primaries=2, transfer=_DPX_TRANSFER.get(spec.get_string_attribute("dpx:Transfer"), 2), range=2)


def probe_sequence(files: SequenceFiles):
    """A plate's :class:`~edidub_engine.media.probe.VideoInfo` (from its first file's header)."""
    from edidub_engine.media.info import VideoInfo

    first = files.file(0)
    image = _open(first)
    try:
        spec = image.spec()
        layout = _layout(spec, first)
        declared = _rate(spec)
        timecode = spec.get_string_attribute("smpte:TimeCode") or None
    finally:
        image.close()
    rate = declared or DEFAULT_RATE
    drop = bool(timecode and ";" in timecode) and is_drop_frame_rate(rate)
    try:
        start_tc = frame_to_timecode(timecode_to_frame(timecode, rate), rate, drop) if timecode else None
    except Exception:  # a malformed header timecode is not worth refusing a plate over
        start_tc = None
    start_tc = start_tc or frame_to_timecode(0, rate, is_drop_frame_rate(rate))
    return VideoInfo(
        path=Path(files.pattern), width=layout.width, height=layout.height, rate=rate, frame_count=files.count,
        start_timecode=start_tc, drop_frame=drop, codec=files.kind, variable_frame_rate=False, video_start_s=0.0,
        has_audio=False, audio_sample_rate_hz=None, audio_start_s=None, duration_s=float(files.count / rate),
        pix_fmt=layout.pix_fmt, codec_profile=layout.pixel_type, color=_colour(files.kind, spec), time_base=1 / rate,
        sequence=dataclasses.replace(files, rate_declared=declared is not None),
    )


def with_rate(info, rate: Fraction):
    """A plate that declares no rate, at ``rate`` (the shot request's); a plate that declares one is returned as it is."""
    if info.sequence is None or info.sequence.rate_declared or rate == info.rate:
        return info
    rate = normalize_rate(rate)
    return dataclasses.replace(info, rate=rate, time_base=1 / rate, duration_s=float(info.frame_count / rate),
                               drop_frame=is_drop_frame_rate(rate), start_timecode=frame_to_timecode(0, rate, is_drop_frame_rate(rate)))


def stem(info) -> str:
    """A source's name for derived outputs: the file's stem, or a plate's name without its frame number (``sh010``)."""
    if info.sequence is None:
        return info.path.stem
    name = _PRINTF.sub("", Path(info.sequence.pattern).stem)
    return name.rstrip("._-") or Path(info.sequence.pattern).parent.name


def plate_header(files: SequenceFiles, start: int) -> Callable[[int], dict]:
    """``header(k)``: the attributes of the plate's file for grid frame ``start + k``, typed, for the dubbed frame of the
    same number (OpenImageIO's own bookkeeping left out; ``oiio:pixel_type`` keeps half or float)."""
    import OpenImageIO as oiio

    def header(k: int) -> dict:
        path = files.file(start + k)
        image = _open(path)
        try:
            spec = image.spec()
            attributes = {p.name: (oiio.TypeDesc(str(p.type)), p.value) for p in spec.extra_attribs
                          if not p.name.startswith("oiio:") and p.name not in _NOT_CARRIED}
            attributes["oiio:pixel_type"] = str(spec.format)
            return attributes
        finally:
            image.close()

    return header


# Attributes that describe the file's own bytes, which the writer sets anew.
_NOT_CARRIED = {"dpx:Packing", "dpx:EndOfLinePadding", "dpx:EndOfImagePadding", "dpx:ImageDescriptor", "openexr:lineOrder",
                "openexr:chunkCount", "tiff:RowsPerStrip"}


def sequence_identity(files: SequenceFiles) -> dict:
    """What the inversion cache keys a plate by: its pattern, frames and the first and last files' sizes and times."""
    stats = [files.file(i).stat() for i in (0, files.count - 1)]
    return {"path": files.pattern, "first": files.first, "count": files.count,
            "size": [s.st_size for s in stats], "mtime_ns": [s.st_mtime_ns for s in stats]}


def _read(path: Path, layout: _Layout) -> np.ndarray:
    """One file's R, G, B(, A) as H×W×C float32 (EXR) or integer codes at the file's own depth (DPX)."""
    image = _open(path)
    try:
        spec = image.spec()
        if (spec.width, spec.height) != (layout.width, layout.height):
            raise MediaDecodeError(f"{path.name} is {spec.width}×{spec.height}, not {layout.width}×{layout.height} as the "
                                   "sequence's first frame", hint="conform the plate to one size", details={"path": str(path)})
        wanted = "float" if layout.bits == 32 else ("uint8" if layout.bits == 8 else "uint16")
        pixels = image.read_image(wanted)
    finally:
        image.close()
    if pixels is None:
        import OpenImageIO as oiio

        raise MediaDecodeError(f"{path.name} cannot be decoded ({(oiio.geterror() or 'truncated?').strip()})", hint="re-render the frame",
                               details={"path": str(path)})
    pixels = np.asarray(pixels).reshape(layout.height, layout.width, -1)[..., list(layout.channels)]
    if layout.bits in (10, 12):  # OpenImageIO widens these to 16 bits by bit replication; that rounds back exactly
        top = (1 << layout.bits) - 1
        pixels = ((pixels.astype(np.uint32) * top + 32767) // 65535).astype(np.uint16)
    return pixels


# gbrp planes are G, B, R(, A); an image's channels are R, G, B(, A)
_PLANE_OF_CHANNEL = (2, 0, 1, 3)


def _to_frame(pixels: np.ndarray, layout: _Layout) -> av.VideoFrame:
    frame = av.VideoFrame(layout.width, layout.height, layout.pix_fmt)
    for channel in range(pixels.shape[2]):
        plane = frame.planes[_PLANE_OF_CHANNEL[channel]]
        words = np.frombuffer(plane, dtype=pixels.dtype).reshape(plane.height, -1)
        words[:, : layout.width] = pixels[..., channel]
    frame.colorspace, frame.color_range = 0, 2  # RGB, full range
    return frame


def frame_pixels(frame: av.VideoFrame) -> np.ndarray:
    """A gbrp-family picture's samples as H×W×C in R, G, B(, A) order (float32 or integer codes)."""
    dtype = np.float32 if "f32" in frame.format.name else (np.uint8 if frame.format.name in ("gbrp", "gbrap") else np.uint16)
    planes = len(frame.planes)
    out = np.empty((frame.height, frame.width, planes), dtype=dtype)
    for channel in range(planes):
        plane = frame.planes[_PLANE_OF_CHANNEL[channel]]
        out[..., channel] = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)[:, : frame.width]
    return out


def iter_sequence_pictures(info, start: int, end: int) -> Iterator[tuple[int, av.VideoFrame]]:
    """Grid frames ``[start, end)`` of a plate as decoded pictures (one file each)."""
    files: SequenceFiles = info.sequence
    first = files.file(0)
    image = _open(first)
    try:
        layout = _layout(image.spec(), first)
    finally:
        image.close()
    for index in range(start, end):
        yield index, _to_frame(_read(files.file(index), layout), layout)


class SequenceWriter:
    """Write pictures as a folder of EXR or DPX frames, published atomically on :meth:`close`.

    ``path`` is the folder to create (it must not exist); frames are ``<folder>/<folder name>.<number>.<ext>``
    numbered from ``first_number``, each with the header attributes ``header(k)`` gives (a plate's own
    frame's, so they go on unchanged), and the sound, when there is any, is ``<folder name>.wav`` beside
    them. Frames are written into a hidden folder beside it that is renamed when complete.
    """

    def __init__(self, path: str | os.PathLike, *, kind: str, width: int, height: int, rate, source_format: str | None,
                 color=None, timecode: str | None = None, first_number: int = 0,
                 header: Callable[[int], dict] | None = None, audio=None, audio_sample_rate_hz: int = 48000):
        from edidub_engine.media.info import ColorTags

        self.kind = kind
        self.path = Path(path).expanduser().absolute()
        if os.path.lexists(self.path):
            raise OutputExistsError(f"output {self.path} already exists; EdiDub never overwrites media",
                                    hint="choose another output name, or move the existing folder away", details={"path": str(self.path)})
        if not self.path.parent.is_dir():
            raise InvalidArgumentError(f"output folder {self.path.parent} does not exist (for {self.path.name})", hint="create it first")
        self.width, self.height, self.rate = int(width), int(height), normalize_rate(rate)
        self.color = color or ColorTags()
        source = source_format or "rgb24"
        is_float = "f32" in source or "f16" in source
        if kind == "exr" and not is_float:
            raise InvalidArgumentError(f"{self.path.name}: EXR frames are written from scene-linear (EXR) plates only",
                                       hint="dub a video or DPX source to dpx, ffv1 or prores_hq; EXR in gives EXR out")
        if kind == "dpx" and is_float:
            raise InvalidArgumentError(f"{self.path.name}: a scene-linear EXR plate is written back as EXR, not DPX", hint="use --codec exr")
        if kind == "exr":
            self.pix_fmt = "gbrapf32le" if "gbrap" in source else "gbrpf32le"
        else:  # integer RGB at the source's depth (at least 10 bits for video, as DPX conforms are)
            from edidub_engine.media.info import pixel_bit_depth

            bits = pixel_bit_depth(source) or 8
            rgb = av.VideoFormat(source).is_rgb if source else False
            bits = bits if rgb else max(10, bits)
            depth = {8: "", 10: "10le", 12: "12le"}.get(bits, "16le")
            self.pix_fmt = ("gbrap" if source.startswith("gbrap") else "gbrp") + depth
        self.bits = 32 if kind == "exr" else {"": 8, "10le": 10, "12le": 12, "16le": 16}[self.pix_fmt.split("gbrap")[-1].split("gbrp")[-1]]
        self.timecode, self.first_number = timecode, int(first_number)
        self.header = header
        self._audio, self._audio_rate = audio, int(audio_sample_rate_hz)
        self.frames_written = 0
        self._closed = False
        self._temp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent))
        self._digits = max(4, len(str(self.first_number)))

    @property
    def pattern(self) -> str:
        """The published frames as a printf pattern (what Nuke and OTIO's image sequences name)."""
        return str(self.path / f"{self.path.name}.%0{self._digits}d.{self.kind}")

    def _file(self, folder: Path, k: int) -> Path:
        return folder / f"{self.path.name}.{self.first_number + k:0{self._digits}d}.{self.kind}"

    # -- the same calls as ClipWriter -------------------------------------------------------------
    def conform(self, picture: av.VideoFrame) -> av.VideoFrame:
        """``picture`` in the frames' own format: as it is for a plate, else converted with the source's matrix and range."""
        if picture.format.name == self.pix_fmt:
            return picture
        matrix = self.color.conversion_matrix(self.width, self.height)
        full = self.color.full_range or picture.format.name.startswith("yuvj") or picture.format.is_rgb
        return picture.reformat(format=self.pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                                src_color_range="JPEG" if full else "MPEG", dst_color_range="JPEG", threads=1)

    def write(self, frame: np.ndarray) -> None:
        """Append one H×W×3 uint8 RGB frame (a source without a planar layout)."""
        if self.kind == "exr":
            raise InvalidArgumentError(f"{self.path.name}: EXR frames are written from the plate's own pictures (write_picture)")
        self.write_picture(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))

    def write_picture(self, picture: av.VideoFrame) -> None:
        """Append one decoded picture as the next numbered file."""
        import OpenImageIO as oiio

        if self._closed:
            raise MediaEncodeError(f"{self.path.name} is already closed; no more frames can be written")
        pixels = frame_pixels(self.conform(picture))
        attributes = dict(self.header(self.frames_written)) if self.header else {}
        pixel_type = attributes.pop("oiio:pixel_type", None) or ("half" if self.kind == "exr" else ("uint8" if self.bits == 8 else "uint16"))
        spec = oiio.ImageSpec(self.width, self.height, pixels.shape[2], pixel_type)
        spec.channelnames = ("R", "G", "B", "A")[: pixels.shape[2]]
        if pixels.shape[2] == 4:
            spec.alpha_channel = 3
        for name, value in attributes.items():
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], oiio.TypeDesc):
                spec.attribute(name, value[0], value[1])
            else:
                spec.attribute(name, value)
        if self.kind == "dpx":
            spec.attribute("oiio:BitsPerSample", self.bits)
            if self.bits in (10, 12):  # OpenImageIO takes 16-bit words and keeps their top bits
                pixels = (pixels.astype(np.uint16) << (16 - self.bits)) | (pixels.astype(np.uint16) >> (2 * self.bits - 16))
        if "smpte:TimeCode" not in attributes and self.timecode:
            start = timecode_to_frame(self.timecode, self.rate)
            text = frame_to_timecode(start + self.frames_written, self.rate, ";" in self.timecode)
            spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (_bcd_timecode(text), 0))
        if self.kind == "exr" and "framesPerSecond" not in attributes:
            spec.attribute("framesPerSecond", oiio.TypeDesc("rational"), (self.rate.numerator, self.rate.denominator))
        if self.kind == "dpx" and "dpx:FrameRate" not in attributes:
            spec.attribute("dpx:FrameRate", float(self.rate))
        target = self._file(self._temp, self.frames_written)
        out = oiio.ImageOutput.create(str(target))
        ok = out is not None and out.open(str(target), spec) and out.write_image(np.ascontiguousarray(pixels)) and out.close()
        if not ok:
            reason = (oiio.geterror() or (out.geterror() if out is not None else "") or "unknown error").strip()
            self.abort()
            raise MediaEncodeError(f"writing {target.name} failed ({reason})", hint="check free space and permissions in the output folder")
        self.frames_written += 1

    def _write_audio(self, folder: Path) -> None:
        """The sound as a 24-bit 48 kHz WAV exactly as long as the frames (cut or padded with silence)."""
        total = round_half_up(Fraction(self.frames_written) / self.rate * 48000)
        if hasattr(self._audio, "read"):  # a 48 kHz reader (the render's mix)
            samples, rate = np.concatenate([np.asarray(self._audio.read(min(48000, total - at)), np.float32).reshape(-1)
                                            for at in range(0, total, 48000)]), 48000
        else:
            samples, rate = np.asarray(self._audio, np.float32).reshape(-1), self._audio_rate
        resampler = av.AudioResampler(format="s32", layout="mono", rate=48000)
        source = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        source.sample_rate, source.pts = rate, 0
        converted = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(source), *resampler.resample(None))]
        fitted = np.zeros(total, np.int32)
        have = np.concatenate(converted)[:total] if converted else np.zeros(0, np.int32)
        fitted[: have.size] = have
        with av.open(str(folder / f"{self.path.name}.wav"), mode="w") as container:
            stream = container.add_stream("pcm_s24le", rate=48000, layout="mono")
            frame = av.AudioFrame.from_ndarray(fitted.reshape(1, -1), format="s32", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))

    def close(self) -> Path:
        """Publish the folder under its final name; returns the frames' printf pattern."""
        if self._closed:
            raise MediaEncodeError(f"{self.path.name} is already closed")
        if self.frames_written == 0:
            self.abort()
            raise InvalidArgumentError(f"no frames were written to {self.path.name}; nothing was published")
        try:
            if self._audio is not None:
                self._write_audio(self._temp)
            os.chmod(self._temp, 0o777 & ~_umask())
            if os.path.lexists(self.path):
                raise OutputExistsError(f"output {self.path} appeared while it was being written; EdiDub never overwrites media",
                                        hint="choose another output name")
            os.rename(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return Path(self.pattern)

    def abort(self) -> None:
        """Remove everything written; nothing appears under the final name."""
        self._closed = True
        shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> SequenceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


def _bcd_timecode(text: str) -> int:
    """``HH:MM:SS:FF`` (``;`` drop frame) as SMPTE 12M's packed BCD word, as EXR and DPX headers hold it."""
    digits = [int(part) for part in re.split(r"[:;.,]", text)]
    word = 0
    for value in digits:
        word = (word << 8) | ((value // 10) << 4) | (value % 10)
    return word | (0x40 if ";" in text else 0)

