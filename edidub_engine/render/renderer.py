"""ShotRenderer: one shot from file to file with one loaded bundle — the request checked, the dub line laid on the
shot's clock, the job streamed (:mod:`.job`), the output published only when complete."""

from __future__ import annotations

import contextlib
import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..acceleration import Acceleration
from ..cache import InversionCache, source_identity
from ..config import DubSettings
from ..errors import InvalidArgumentError, NoFaceError, OutputExistsError, RangeOutsideMediaError
from ..shot import OUTPUT_EXTENSIONS, SEQUENCE_CODECS, RenderedClip, ShotRequest
from ..media.mix import AudioMix
from ..mouth import loudness_db
from ..qc import ShotQC
from ..timebase import timecode_to_frame
from .job import ShotJob, passthrough_summary
from .models import LoadedModels, lsd_verdict, srd_verdict
from .faces import plan_faces
from .mouths import MouthStage
from .track import TRACK_BLOCK_FRAMES

log = logging.getLogger("edidub.render")

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]


class ShotRenderer:
    """Dubs shots with one loaded bundle (a daemon worker keeps one of these)."""

    def __init__(self, models: LoadedModels, *, settings: DubSettings | None = None, cache: InversionCache | None = None,
                 acceleration: Acceleration | None = None):
        from ..heap import return_large_blocks
        from ..pipeline import DubbingPipeline

        return_large_blocks()  # memory that follows the shot in flight, not every stage's high-water mark
        self.models = models
        defaults = settings or DubSettings().with_overrides(**models.info.dub_defaults())
        self.pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=defaults, acceleration=acceleration)
        self.cache = cache
        self.srd_verdict = srd_verdict(models.info.card)
        if self.srd_verdict["runs_srd"] is False and defaults.restore == "auto":
            log.warning("%s: %s", models.info.name, self.srd_verdict["reason"])
        self.lsd_verdict = lsd_verdict(models.info.card)
        if self.lsd_verdict["runs_lsd"] is False and defaults.lsd == "auto":
            log.warning("%s: %s", models.info.name, self.lsd_verdict["reason"])

    def restore_mode(self, settings: DubSettings) -> str:
        """``"srd"`` or ``"bicubic"``: the user's choice, or on ``auto`` what the bundle's check measured."""
        if settings.restore != "auto":
            return settings.restore
        return "bicubic" if self.srd_verdict["runs_srd"] is False else "srd"

    def runs_lsd(self, settings: DubSettings) -> bool:
        """Whether the lip-sync network edits the shot: the user's choice, or on ``auto`` what the bundle's check measured
        (an unchecked LSD runs, as trained)."""
        if settings.lsd != "auto":
            return settings.lsd == "on"
        return self.lsd_verdict["runs_lsd"] is not False

    def dub_shot(self, request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None,
                 output_path: str | Path | None = None, version_up: bool = False) -> RenderedClip:
        """Render one shot to a new file (never over an existing one).

        ``version_up``: where the derived output name is taken, write the next free
        ``_v002``, ``_v003``… beside it, as post houses version renders (an explicit
        ``output_path`` or ``output.name`` that exists is still refused).
        """
        from ..background import Prefetch, Sink
        from ..face import FaceSelector
        from ..media import ClipWriter, Codec, planar_format, probe_video
        from ..media.decode import source_hdr
        from ..media.probe import ColorTags

        t0 = time.perf_counter()
        shot = f"shot {request.shot_id!r}"
        info = probe_video(request.source.path)
        if request.source.rate is not None:  # an image sequence that declares no rate runs at the request's
            from ..media.sequence import with_rate

            info = with_rate(info, request.source.rate)
        start, end = request.source.start_frame, request.source.end_frame
        if end > info.frame_count:
            raise RangeOutsideMediaError(
                f"{shot}: frames [{start}, {end}) run past the end of {info.path.name}, which has {info.frame_count} frames",
                hint=f"end the range at {info.frame_count} or earlier",
            )
        if request.source.rate is not None and request.source.rate != info.rate:
            raise InvalidArgumentError(
                f"{shot}: the request says {request.source.rate} fps but {info.path.name} runs at {info.rate} fps",
                hint="send frames counted at the media's own rate",
            )
        out = self._output_path(request, info, output_path, version_up=version_up)
        settings = self.pipeline.settings.with_overrides(
            steps=request.options.steps, inversion_steps=request.options.inversion_steps,
            guidance_scale=request.options.guidance_scale, seed=request.options.seed, strength=request.options.strength,
        )
        n = end - start
        several = bool(request.lines) or request.speakers is not None
        key_of = lambda face: InversionCache.key(  # noqa: E731 - one face's cache entries (its track and inversions)
            source=source_identity(info.path), start=start, end=end, model=self.models.identity["sha256"], face=face,
            lsd_size=self.pipeline.lsd_size, precision=self.pipeline.acceleration.precision,
            settings={k: getattr(settings, k) for k in ("inversion_steps", "window_frames", "window_stride", "section_frames", "carry_frames", "min_run_frames")})
        key = key_of(str(FaceSelector.parse(str(request.options.face))))
        manifest = self.cache.get(key) if self.cache is not None else None
        cache_hit = manifest is not None
        if cache_hit and "source_db" in manifest:
            original_units, source_db = manifest["original_units"].numpy(), manifest["source_db"].numpy()
        else:
            source16 = self._source_audio(info, start, end)
            original_units = manifest["original_units"].numpy() if cache_hit else self._units(source16, info.rate, n).shot
            source_db = loudness_db(source16, info.rate, n)
            del source16

        plans, pieces = plan_faces(request, info, start, end, source_db)
        dub48 = AudioMix(pieces, length_s=Fraction(n) / info.rate, sample_rate_hz=48000)
        selectors = [plan.face for plan in plans]
        job = ShotJob(self.pipeline, self.cache, self.restore_mode(settings), info, start, n, settings, original_units,
                      progress, should_cancel, runs_lsd=self.runs_lsd(settings))
        units = []
        for plan in plans:
            dub = self._units(plan.audio16, info.rate, n, dub_end_s=plan.dub_end_s)
            dub_db = loudness_db(plan.audio16, info.rate, n)
            plan.audio16 = None  # units and loudness are all a face keeps of its line
            mouths = MouthStage(frames=n, dub_db=dub_db, source_db=source_db, strength=settings.strength, lsd_size=self.pipeline.lsd_size,
                                capacity=2 * TRACK_BLOCK_FRAMES + 2 * settings.section_frames)
            # one face keeps the key of a one-face dub; several are tracked together, so their keys say with whom
            job.add_lane(face=plan.face, key=key if not several else key_of(f"{plan.face} of {','.join(selectors)}"),
                         dub_units=dub.shot, mouths=mouths, qc=ShotQC(dub_db=dub_db, source_db=source_db))
            units.append(dub)
        lost: dict[int, list] = {}
        patch_path = out.with_name(out.stem + "_patch.mov") if request.output.patch else None
        if patch_path is not None and patch_path.exists():
            raise OutputExistsError(f"{shot}: {patch_path} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        # The source's own pixel format where it has a planar layout (every common camera and mezzanine format):
        # outside the matte the output is the source sample for sample. Else (palette, grey) through 8-bit RGB.
        job.native = planar_format(info.pix_fmt or "") is not None
        with contextlib.ExitStack() as stack:
            hdr = source_hdr(info, start)
            writer = stack.enter_context(self._writer(request, info, out, start, audio=dub48 if request.output.audio else None,
                                                      native=job.native, hdr=hdr))
            if patch_path is not None:
                # the patch holds the composited RGB the networks saw: a linear plate's through its view transform (sRGB)
                patch_color = info.color if "f32" not in (info.pix_fmt or "") else ColorTags(primaries=info.color.primaries, transfer=13)
                job.patch = stack.enter_context(ClipWriter(patch_path, width=info.width, height=info.height, rate=info.rate,
                                                           codec=Codec.PRORES_4444, timecode=info.timecode_at(start), color=patch_color,
                                                           hdr=hdr))
            job.writer = writer
            # Stages on their own threads, stopped (LIFO) before the writers abort on an error.
            for each in job.lanes:
                stack.callback(each.qc.close)
            sink = Sink(job.write, depth=2, name=f"edidub-encode-{request.shot_id}")
            stack.callback(sink.close)
            tracked = Prefetch(job.records(self._tracker(info, start, end, selectors, several=several, lost=lost), cache_hit),
                               depth=2 * TRACK_BLOCK_FRAMES, name=f"edidub-track-{request.shot_id}")
            stack.callback(tracked.close)
            job.run(tracked, sink)
            # The encoder thread writes the last chunks after the loop: its count goes out from here (progress
            # callbacks run on this thread only), instead of a render bar at 0 that jumps to done.
            sink.finish(while_waiting=job.report_render)
            job.finish_progress()
            if job.frames_edited == 0:  # the writers abort: nothing is published
                raise NoFaceError(
                    f"{shot}: no usable face in {info.path.name} frames {start}-{end - 1} ({passthrough_summary(job.passthrough)})",
                    hint="check the range and the faces (--face, --line); faces smaller than about 20 px, in profile or covered cannot be dubbed",
                    details={"passthrough": [r.__dict__ for r in job.passthrough]},
                )
            path = writer.close()
            if job.patch is not None:
                job.patch.close()
        if self.cache is not None and not cache_hit:
            self.cache.put(key, {"original_units": torch.from_numpy(original_units), "source_db": torch.from_numpy(source_db), "frames": n})
        timings = {**job.timings, "total_s": time.perf_counter() - t0}
        faces = [{"index": lane.index, "face": lane.face, "given_by": plan.given_by,
                  **({} if plan.speaking is None else {"speaking": plan.speaking}),
                  "frames_edited": lane.frames_edited, "frames_passed_through": [r.__dict__ for r in lane.passthrough],
                  "lost": lost.get(lane.index, []), "quality": lane.qc.result(), "mouths": lane.mouths.figures()}
                 for lane, plan in zip(job.lanes, plans)]
        return RenderedClip(
            shot_id=request.shot_id, path=str(path), start_frame=0, end_frame=n, rate=info.rate,
            timecode=info.timecode_at(start), frames_edited=job.frames_edited, frames_passed_through=tuple(job.passthrough),
            qc={"dub_padded_frames": max(int(u.padded_frames) for u in units), "dub_cut_s": max(float(u.cut_s) for u in units),
                "cache_hit": cache_hit, "timings": {k: round(v, 3) for k, v in timings.items()}, "settings": settings.to_dict(),
                "acceleration": self.pipeline.acceleration.to_dict(), "fast_path": self.pipeline.fast_path.to_dict(),
                **(_several_faces(faces) if several else {"quality": faces[0]["quality"], "mouths": faces[0]["mouths"]}),
                "restore": {"mode": job.restore_mode, "why": (f"--restore {settings.restore}" if settings.restore != "auto"
                                                              else self.srd_verdict["reason"])},
                "lsd": {"runs": job.runs_lsd, "why": f"--lsd {settings.lsd}" if settings.lsd != "auto" else self.lsd_verdict["reason"]},
                "source": {"path": str(info.path), "start_frame": start, "end_frame": end}},
            model=dict(self.models.identity), record=dict(request.record),
            patch_path=None if patch_path is None else str(patch_path),
        )

    # -- pieces --------------------------------------------------------------------------
    def _tracker(self, info, start: int, end: int, selectors: list[str], *, several: bool, lost: dict):
        """``track(first, donors)``: per-frame lists of records of every face wanted, tracked from shot frame ``first``
        (one face as ever; several on one decode, with stable identities, their lost ranges into ``lost``)."""
        from ..face import FaceSelector
        from .track import iter_track, iter_tracks

        def track(first: int, donors: bool):
            if several:
                yield from iter_tracks(info, start, end, selectors=selectors, lsd_size=self.pipeline.lsd_size, first=first,
                                       donors=donors, lost=lost)
                return
            for record in iter_track(info, start, end, selector=FaceSelector.parse(selectors[0]), lsd_size=self.pipeline.lsd_size,
                                     first=first, donors=donors):
                yield [record]

        return track

    @staticmethod
    def _writer(request: ShotRequest, info, out: Path, start: int, *, audio, native: bool, hdr=None):
        """The shot's writer: a video file (ClipWriter), or for ``exr``/``dpx`` a folder of numbered frames whose
        numbers are the plate's own (a video source: its timecode's frame count), with each plate frame's header."""
        from ..media import ClipWriter, Codec
        from ..media.sequence import SequenceWriter, plate_header

        shot = f"shot {request.shot_id!r}"
        codec = request.output.codec
        source_format = info.pix_fmt if native else None
        if codec not in SEQUENCE_CODECS:
            if info.sequence is not None and "f32" in (info.pix_fmt or ""):
                raise InvalidArgumentError(f"{shot}: {info.path.name} is a scene-linear EXR plate; it is written back as EXR",
                                           hint="use --codec exr (the frames keep the plate's numbers and headers)")
            return ClipWriter(out, width=info.width, height=info.height, rate=info.rate, codec=Codec(codec),
                              timecode=info.timecode_at(start), audio=audio, audio_sample_rate_hz=48000, color=info.color,
                              source_format=source_format, hdr=hdr)
        plate = info.sequence
        first = plate.first + start if plate is not None else timecode_to_frame(info.timecode_at(start), info.rate)
        header = plate_header(plate, start) if plate is not None and plate.kind == codec else None
        try:
            return SequenceWriter(out, kind=codec, width=info.width, height=info.height, rate=info.rate,
                                  source_format=source_format, color=info.color, timecode=info.timecode_at(start),
                                  first_number=first, header=header, audio=audio, audio_sample_rate_hz=48000)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{shot}: {exc.message}", hint=exc.hint) from None

    def _output_path(self, request: ShotRequest, info, explicit: str | Path | None, *, version_up: bool = False) -> Path:
        ext = OUTPUT_EXTENSIONS[request.output.codec]
        if explicit is not None:
            out = Path(explicit).expanduser()
            if ext == "" and out.suffix.lower() in (".exr", ".dpx"):
                raise InvalidArgumentError(f"shot {request.shot_id!r}: {request.output.codec} frames are written into a new folder; "
                                           f"{out.name} names a file", hint=f"name the folder, e.g. {out.with_suffix('')}")
            if ext and out.suffix.lower() != ext:
                raise InvalidArgumentError(f"shot {request.shot_id!r}: {out.name} must end in {ext} for {request.output.codec}",
                                           hint=f"name it {out.stem}{ext}, or choose the codec that writes {out.suffix}")
        else:
            folder = Path(request.output.dir or ".").expanduser()
            from ..media.sequence import stem

            name = request.output.name or f"{stem(info)}_{request.shot_id}_dub"
            out = folder / (name if name.endswith(ext) else name + ext)
            if version_up and request.output.name is None:
                out = next_version(out)
        if out.exists():
            raise OutputExistsError(f"shot {request.shot_id!r}: {out} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        if not out.parent.is_dir():
            raise InvalidArgumentError(f"shot {request.shot_id!r}: output folder {out.parent} does not exist", hint="create it first")
        return out

    def _source_audio(self, info, start: int, end: int) -> np.ndarray:
        from ..media import load_audio_for_frames

        if not info.has_audio:  # a silent source: inversion runs with the null unit throughout
            return np.zeros(int(round(float(Fraction(end - start) / info.rate) * 16000)), np.float32)
        return load_audio_for_frames(info, start, end)

    def _units(self, audio: np.ndarray, rate: Fraction, n: int, *, dub_end_s: float | None = None):
        from ..audio import units_for_shot

        units = units_for_shot(self.models.encoder, audio, rate=rate, start_frame=0, end_frame=n, dub_end_s=dub_end_s, context_frames=0)
        if not np.isfinite(units.units).all():  # pragma: no cover - defensive
            raise InvalidArgumentError("speech units came out invalid")
        return units


def _several_faces(faces: list[dict]) -> dict:
    """A shot of several faces: each face's figures, and one verdict (``review`` if any face needs it, its reasons
    named by face) where every surface looks for the shot's."""
    reasons = [f"face {f['face']}: {reason}" for f in faces for reason in f["quality"]["reasons"]]
    return {"faces": faces, "quality": {"verdict": "review" if reasons else "ok", "reasons": reasons,
                                        "faces": [{"face": f["face"], "verdict": f["quality"]["verdict"]} for f in faces]}}


def next_version(path: Path, *, limit: int = 999) -> Path:
    """``path`` if it is free, else the first free ``<stem>_v002<ext>`` … ``_v999``."""
    if not path.exists():
        return path
    for n in range(2, limit + 1):
        candidate = path.with_name(f"{path.stem}_v{n:03d}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputExistsError(f"{path} and its versions up to _v{limit:03d} already exist; EdiDub never overwrites media",
                            hint="move older versions away or name the output with -o")


__all__ = ["ShotRenderer", "next_version"]
