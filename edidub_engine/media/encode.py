"""Write a clip: RGB frames in, an atomically published file out.

Deliverables: ProRes 422 HQ in .mov (the conform/online format, 10-bit 4:2:2,
24-bit PCM), ProRes 4444 XQ and DNxHR HQX in .mov (10-bit masters), H.264 in
.mp4 (a review copy) and FFV1 in .mkv (lossless, the check format: given ``source_format`` it stores the source's own planar
pixel format, else RGB; decode(encode(frames)) equals the frames bit for bit).
Frames come as RGB (:meth:`ClipWriter.write`) or as decoded pictures in the
source's own format (:meth:`ClipWriter.write_picture`, converted only where the
codec needs another format). Outputs carry the source's colour tags
(``color``; BT.709 limited range where none is given).

Frames are encoded as they arrive (bounded memory). The audio track is given
up front — an array, resampled to 48 kHz, or for long shots a reader of 48 kHz
samples (``read(count)``, e.g. :class:`~edidub_engine.media.mix.AudioMix`)
pulled as frames arrive — and interleaved with the frames, cut or padded with
silence to exactly the video's duration. The start timecode is
written so that :func:`probe_video` reads it back (a tmcd track in .mov/.mp4,
a TIMECODE tag in .mkv).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import weakref
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, MediaEncodeError
from edidub_engine.media.atomic import AtomicOutput
from edidub_engine.media.probe import ColorTags
from edidub_engine.timebase import RateLike, frame_to_timecode, normalize_rate, round_half_up, timecode_to_frame

__all__ = ["Codec", "ClipWriter", "OUTPUT_AUDIO_SAMPLE_RATE_HZ"]

OUTPUT_AUDIO_SAMPLE_RATE_HZ = 48000
_AUDIO_CHUNK_SAMPLES = 1024


class Codec(str, Enum):
    """Output formats; each implies its container (see :attr:`extension`)."""

    PRORES_HQ = "prores_hq"
    H264 = "h264"
    FFV1 = "ffv1"
    PRORES_4444 = "prores_4444"  # RGBA: the compositor's patch (edited region + feathered matte as alpha)
    PRORES_4444XQ = "prores_4444xq"  # 10-bit 4:4:4 masters of 4:4:4 and 12-bit sources
    DNXHR_HQX = "dnxhr_hqx"  # 10-bit 4:2:2 DNxHR, for Avid and Resolve houses

    @property
    def extension(self) -> str:
        return _SPECS[self].extension


@dataclass(frozen=True)
class _CodecSpec:
    extension: str
    video_codec: str
    pix_fmt: str
    video_options: dict[str, str]
    audio_codec: str
    audio_format: str  # the encoder's sample format
    yuv: bool
    even_width: bool
    even_height: bool
    channels: int = 3  # 4: frames carry an alpha channel (RGBA)


# ProRes: FFmpeg's prores_aw, not prores_ks. At the HQ profile both gave the same PSNR on a
# 1080p MEAD clip (41.58 dB, limited by the 4:2:2 conversion itself) and similar sizes, and
# prores_aw encodes about 4x faster on 2 cores (65 vs 17 fps): the encoder must not be what
# a GPU waits on.
_SPECS = {
    Codec.PRORES_HQ: _CodecSpec(".mov", "prores_aw", "yuv422p10le", {"profile": "3", "vendor": "apl0"}, "pcm_s24le", "s32", True, True, False),
    Codec.H264: _CodecSpec(".mp4", "libx264", "yuv420p", {"crf": "18", "preset": "medium"}, "aac", "fltp", True, True, True),
    Codec.FFV1: _CodecSpec(".mkv", "ffv1", "bgr0", {"level": "3", "slicecrc": "1", "g": "1"}, "flac", "s16", False, False, False),
    # FFmpeg's ProRes and DNxHR encoders store at most 10 bits: a 12-bit source keeps its top 10 in these.
    Codec.PRORES_4444XQ: _CodecSpec(".mov", "prores_ks", "yuv444p10le", {"profile": "5", "vendor": "apl0"}, "pcm_s24le", "s32", True, False, False),
    Codec.DNXHR_HQX: _CodecSpec(".mov", "dnxhd", "yuv422p10le", {"profile": "dnxhr_hqx"}, "pcm_s24le", "s32", True, True, False),
    # Alpha needs prores_ks (prores_aw writes no alpha plane); profile 4 = 4444, 10-bit with a 16-bit alpha plane.
    Codec.PRORES_4444: _CodecSpec(".mov", "prores_ks", "yuva444p10le", {"profile": "4", "vendor": "apl0", "alpha_bits": "16"}, "pcm_s24le", "s32", True, False, False, 4),
}
_BT709 = 1
_LIMITED_RANGE = 1
_SWS_MATRIX_CODES = {"ITU709": 1, "ITU601": 6, "BT2020": 9, "SMPTE240M": 7, "FCC": 4}
_FFV1_FORMATS = frozenset(f.name for f in av.codec.Codec("ffv1", "w").video_formats)


def _lossless_format(source_format: str) -> str:
    """The pixel format FFV1 stores a source's pictures in without loss: the source's planar layout where
    FFV1 has it (``yuvj*`` as its ``yuv*`` twin, tagged full range), 8-bit RGB as ``bgr0``; else ``bgr0``."""
    from edidub_engine.media.native import planar_format

    planar = planar_format(source_format) or "bgr0"
    planar = planar.replace("yuvj", "yuv")
    if planar == "gbrp":
        return "bgr0"
    return planar if planar in _FFV1_FORMATS else "bgr0"


def _resample_mono(audio: np.ndarray, from_hz: int, to_hz: int, sample_format: str) -> np.ndarray:
    """Mono float audio → ``[1, N]`` samples in the encoder's format at ``to_hz``."""
    if audio.size == 0:
        return np.zeros((1, 0), dtype=_NUMPY_DTYPES[sample_format])
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, :], dtype=np.float32), format="flt", layout="mono")
    frame.sample_rate = from_hz
    frame.pts = 0
    resampler = av.AudioResampler(format=sample_format, layout="mono", rate=to_hz)
    blocks = [out.to_ndarray() for out in resampler.resample(frame)]
    blocks += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((1, 0), dtype=_NUMPY_DTYPES[sample_format])


_NUMPY_DTYPES = {"s16": np.int16, "s32": np.int32, "fltp": np.float32, "flt": np.float32}


class AudioReader(Protocol):
    """Samples pulled in order: ``read(count)`` gives the next ``count`` mono float32 samples."""

    sample_rate_hz: int

    def read(self, count: int) -> np.ndarray: ...


def _to_sample_format(samples: np.ndarray, sample_format: str) -> np.ndarray:
    """Float samples → ``[1, N]`` in the encoder's format, as libswresample converts them (scale, round, clip)."""
    x = np.asarray(samples, dtype=np.float32)[None, :]
    if sample_format in ("flt", "fltp"):
        return x
    bits = {"s16": 15, "s32": 31}[sample_format]
    info = np.iinfo(_NUMPY_DTYPES[sample_format])
    return np.clip(np.rint(x.astype(np.float64) * float(1 << bits)), info.min, info.max).astype(_NUMPY_DTYPES[sample_format])


def _close_quietly(container, atomic: AtomicOutput) -> None:
    """Finalizer for a writer dropped without close/abort: never leave the temp file."""
    try:
        container.close()
    except Exception:
        pass
    atomic.discard()


class ClipWriter:
    """Encode RGB frames to a new file, published atomically on :meth:`close`.

    ``ClipWriter(path, width=…, height=…, rate=Fraction(25))`` is a context
    manager: leaving the block normally publishes, an exception aborts (no file
    under ``path``, no temp file left). ``audio`` is mono float32 at
    ``audio_sample_rate_hz``; it is fitted to exactly the video's duration.
    ``hdr`` (:class:`~edidub_engine.media.hdr.HdrMetadata`): the source's mastering display and
    light levels, written into a ``.mov``'s sample entry.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        rate: RateLike,
        codec: Codec | str = Codec.PRORES_HQ,
        timecode: str | None = None,
        audio: np.ndarray | AudioReader | None = None,
        audio_sample_rate_hz: int = 16000,
        color: ColorTags | None = None,
        source_format: str | None = None,
        hdr=None,
    ):
        try:
            self.codec = Codec(codec)
        except ValueError:
            raise InvalidArgumentError(
                f"unknown codec {codec!r}", hint=f"choose one of {', '.join(c.value for c in Codec)}"
            ) from None
        spec = _SPECS[self.codec]
        self._spec = spec
        self.path = Path(path).expanduser().absolute()
        if self.path.suffix.lower() != spec.extension:
            raise InvalidArgumentError(
                f"{self.path.name} does not end in {spec.extension}, the extension for {self.codec.value}",
                hint=f"name the output …{spec.extension}",
            )
        if int(width) != width or int(height) != height or width <= 0 or height <= 0:
            raise InvalidArgumentError(f"frame size {width}×{height} for {self.path.name} is not positive whole pixels")
        self.width, self.height = int(width), int(height)
        if (spec.even_width and self.width % 2) or (spec.even_height and self.height % 2):
            raise InvalidArgumentError(
                f"{self.codec.value} cannot store {self.width}×{self.height} ({self.path.name}): its chroma needs an even "
                f"{'width and height' if spec.even_height else 'width'}",
                hint="pad or crop the frames by one pixel, or write FFV1",
            )
        # The source's colour tags, carried over; RGB frames are converted back to YUV with the matrix and range
        # they were decoded with (decode.iter_frames), so colours and sample values stay put. None: BT.709 limited.
        self.color = color if color is not None else ColorTags(matrix=_BT709, primaries=_BT709, transfer=_BT709, range=_LIMITED_RANGE)
        if self.color.matrix == 0 and spec.yuv:  # an RGB source (a DPX plate) stored as Y'CbCr: the stated matrix, limited range
            self.color = dataclasses.replace(self.color, matrix=2, range=_LIMITED_RANGE)
        self._matrix = self.color.conversion_matrix(self.width, self.height)
        if self.color.matrix == 2 and spec.video_codec in ("prores_aw", "prores_ks", "dnxhd"):
            # These bitstreams always name a matrix (DNxHR says BT.709 even for SD): name the one the samples are in.
            self.color = dataclasses.replace(self.color, matrix=_SWS_MATRIX_CODES.get(self._matrix, 1))
        # FFV1 stores the source's own pixel format where it can, so that its pictures go in and come out sample for sample.
        self.pix_fmt = _lossless_format(source_format) if (self.codec is Codec.FFV1 and source_format) else spec.pix_fmt
        self.rate = normalize_rate(rate)
        self.timecode = None
        if timecode is not None:
            start = timecode_to_frame(timecode, self.rate)  # validates it for this rate
            self.timecode = frame_to_timecode(start, self.rate, any(sep in timecode for sep in ";.,"))
        self._audio: np.ndarray | None = None
        self._reader: AudioReader | None = None
        if hasattr(audio, "read"):
            if getattr(audio, "sample_rate_hz", None) != OUTPUT_AUDIO_SAMPLE_RATE_HZ:
                raise InvalidArgumentError(f"an audio reader for {self.path.name} must give {OUTPUT_AUDIO_SAMPLE_RATE_HZ} Hz samples")
            self._reader = audio
        elif audio is not None:
            samples = np.asarray(audio)
            if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
                raise InvalidArgumentError(
                    f"audio for {self.path.name} must be mono float samples (shape [N]), got {samples.dtype} {samples.shape}",
                    hint="downmix to mono float32 (load_audio does) before writing",
                )
            if int(audio_sample_rate_hz) != audio_sample_rate_hz or audio_sample_rate_hz <= 0:
                raise InvalidArgumentError(f"audio_sample_rate_hz={audio_sample_rate_hz} is not a positive whole number")
            self._audio = _resample_mono(samples, int(audio_sample_rate_hz), OUTPUT_AUDIO_SAMPLE_RATE_HZ, spec.audio_format)

        # HDR10 mastering / content light metadata (media.hdr): PyAV cannot attach it, so it goes into the .mov's
        # sample entry after muxing, before the file is published. Matroska (FFV1) and MP4 outputs go without.
        self.hdr = hdr if spec.extension == ".mov" else None
        self._atomic = AtomicOutput(self.path)
        self.frames_written = 0
        self._audio_sent = 0
        self._closed = False
        try:
            # .mov: always write the colour atom. Without it a DNxHR stream reads back as BT.709 whatever it was
            # tagged with (its bitstream names a matrix where the container names none).
            options = {"movflags": "write_colr"} if spec.extension == ".mov" else {}
            self._container = av.open(str(self._atomic.temp_path), mode="w", format="mov" if options else None, options=options)
            self._video = self._add_video_stream()
            has_audio = self._audio is not None or self._reader is not None
            self._audio_stream = self._add_audio_stream() if has_audio else None
        except BaseException as exc:
            container = getattr(self, "_container", None)
            if container is not None:
                _close_quietly(container, self._atomic)
            else:
                self._atomic.discard()
            if isinstance(exc, av.FFmpegError):
                raise MediaEncodeError(f"cannot start writing {self.path.name} ({exc})", hint="check the codec is available") from None
            raise
        self._finalizer = weakref.finalize(self, _close_quietly, self._container, self._atomic)

    # -- setup -------------------------------------------------------------------------------
    def _add_video_stream(self):
        spec = self._spec
        stream = self._container.add_stream(spec.video_codec, rate=self.rate, options=dict(spec.video_options))
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
        self._frame_time_base = Fraction(1) / self.rate
        stream.time_base = self._frame_time_base
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc = self.color.primaries, self.color.transfer
        if spec.yuv or self.pix_fmt.startswith("yuv"):
            ctx.colorspace, ctx.color_range = self.color.matrix, self.color.range
        if self.timecode is not None:
            stream.metadata["timecode"] = self.timecode
        return stream

    def _add_audio_stream(self):
        stream = self._container.add_stream(self._spec.audio_codec, rate=OUTPUT_AUDIO_SAMPLE_RATE_HZ, layout="mono")
        stream.format = self._spec.audio_format
        if self._spec.audio_codec == "aac":
            stream.bit_rate = 192_000
        return stream

    # -- writing -----------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Append one H×W×3 uint8 RGB frame (H×W×4 RGBA for codecs with alpha)."""
        if self._closed:
            raise MediaEncodeError(f"{self.path.name} is already closed; no more frames can be written")
        channels = self._spec.channels
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != (self.height, self.width, channels):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise InvalidArgumentError(
                f"frame {self.frames_written} for {self.path.name} must be uint8 of shape "
                f"({self.height}, {self.width}, {channels}) {'RGBA' if channels == 4 else 'RGB'}, got {got}",
                hint="pass frames at the clip's native size as decoded by iter_frames",
            )
        with self._failures():
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba" if channels == 4 else "rgb24")
            if self._spec.yuv:
                # threads=1: swscale's sliced RGB->YUV conversion gives slightly different pixels
                # from run to run (measured: a few levels on ~1e-5 of pixels), and the same
                # request must give the same frames.
                picture = picture.reformat(
                    format=self._spec.pix_fmt,
                    src_colorspace=self._matrix,
                    dst_colorspace=self._matrix,
                    src_color_range="JPEG",
                    dst_color_range="JPEG" if self.color.full_range else "MPEG",
                    threads=1,
                )
            elif self.pix_fmt != "bgr0":
                raise InvalidArgumentError(f"{self.path.name} stores the source's {self.pix_fmt}: give it decoded pictures (write_picture)")
            else:
                picture = picture.reformat(format=self.pix_fmt, threads=1)
            self._encode(picture)

    def write_picture(self, picture: av.VideoFrame) -> None:
        """Append one decoded picture (e.g. from :func:`~edidub_engine.media.decode.iter_pictures` or
        :meth:`NativePicture.to_frame`), through :meth:`conform`."""
        if self._closed:
            raise MediaEncodeError(f"{self.path.name} is already closed; no more frames can be written")
        if (picture.width, picture.height) != (self.width, self.height):
            raise InvalidArgumentError(f"picture {self.frames_written} for {self.path.name} is {picture.width}×{picture.height}, "
                                       f"not {self.width}×{self.height}", hint="pass pictures at the clip's native size")
        with self._failures():
            self._encode(self.conform(picture))

    def conform(self, picture: av.VideoFrame) -> av.VideoFrame:
        """``picture`` in the stream's pixel format: as it is when it already is, else converted by swscale with the
        source's matrix and range (for Y'CbCr to Y'CbCr only chroma resampling and bit depth, no trip through RGB).
        A change composited into the conformed picture keeps the codec's own chroma resolution and depth."""
        name = picture.format.name
        if name == self.pix_fmt:
            return picture
        yuv_full = self.color.full_range or name.startswith("yuvj")  # the source's Y'CbCr range, kept
        target_rgb = not self.pix_fmt.startswith("yuv")
        return picture.reformat(
            format=self.pix_fmt,
            src_colorspace=self._matrix,
            dst_colorspace=self._matrix,
            src_color_range="JPEG" if (picture.format.is_rgb or yuv_full) else "MPEG",
            dst_color_range="JPEG" if (target_rgb or yuv_full) else "MPEG",
            threads=1,
        )

    @contextlib.contextmanager
    def _failures(self):
        """An encoder or disk failure aborts the file (nothing is published) and says which frame it was."""
        try:
            yield
        except av.FFmpegError as exc:
            self.abort()
            raise MediaEncodeError(f"encoding {self.path.name} failed at frame {self.frames_written} ({exc})") from None
        except OSError as exc:
            self.abort()
            raise MediaEncodeError(
                f"writing {self.path.name} failed at frame {self.frames_written} ({exc.strerror or exc})",
                hint="check free space and permissions in the output folder",
            ) from None

    def _encode(self, picture: av.VideoFrame) -> None:
        picture.pts = self.frames_written
        picture.time_base = self._frame_time_base  # the muxer may change the stream's own
        self._container.mux(self._video.encode(picture))
        self.frames_written += 1
        self._write_audio_until(self.frames_written)

    def _write_audio_until(self, frame_count: int, final: bool = False) -> None:
        if self._audio_stream is None:
            return
        target = round_half_up(Fraction(frame_count) / self.rate * OUTPUT_AUDIO_SAMPLE_RATE_HZ)
        while self._audio_sent + (_AUDIO_CHUNK_SAMPLES if not final else 1) <= target:
            size = min(_AUDIO_CHUNK_SAMPLES, target - self._audio_sent)
            if self._reader is not None:
                chunk = _to_sample_format(self._reader.read(size), self._spec.audio_format)
            else:
                chunk = np.zeros((1, size), dtype=self._audio.dtype)
                have = self._audio[:, self._audio_sent : self._audio_sent + size]
                chunk[:, : have.shape[1]] = have
            audio_frame = av.AudioFrame.from_ndarray(chunk, format=self._spec.audio_format, layout="mono")
            audio_frame.sample_rate = OUTPUT_AUDIO_SAMPLE_RATE_HZ
            audio_frame.pts = self._audio_sent
            audio_frame.time_base = Fraction(1, OUTPUT_AUDIO_SAMPLE_RATE_HZ)
            self._container.mux(self._audio_stream.encode(audio_frame))
            self._audio_sent += size

    # -- finishing ---------------------------------------------------------------------------
    def close(self) -> Path:
        """Finish the file and publish it under its final name; returns that path."""
        if self._closed:
            raise MediaEncodeError(f"{self.path.name} is already closed")
        if self.frames_written == 0:
            self.abort()
            raise InvalidArgumentError(f"no frames were written to {self.path.name}; nothing was published")
        try:
            self._container.mux(self._video.encode(None))
            if self._audio_stream is not None:
                self._write_audio_until(self.frames_written, final=True)
                self._container.mux(self._audio_stream.encode(None))
            self._container.close()
            if self.hdr is not None:
                from edidub_engine.media.hdr import write_mov_hdr

                write_mov_hdr(self._atomic.temp_path, self.hdr)
        except (av.FFmpegError, OSError, MediaDecodeError) as exc:
            self.abort()
            raise MediaEncodeError(
                f"finishing {self.path.name} failed ({exc})", hint="check free space and permissions in the output folder"
            ) from None
        self._closed = True
        self._finalizer.detach()
        return self._atomic.publish()

    def abort(self) -> None:
        """Stop and remove everything written; nothing appears under the final name."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _close_quietly(self._container, self._atomic)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()
