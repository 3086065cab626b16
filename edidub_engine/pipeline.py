"""DubbingPipeline: arrays in, arrays out — no paths, no sockets, no files.

Two stages, as in the paper:

* LSD at the lip-sync model's resolution: DDIM inversion of the original crops
  with the original speech units, then guided DDIM sampling with the dub's
  units (MultiDiffusion windows, 120-frame sections with carry-over); the
  output keeps the source's tone under the mask (:mod:`edidub_engine.tone`).
* SRD at the super-resolution model's resolution: the masked high-resolution
  crops plus the bicubic-upsampled LSD output, sampled from noise.

How the networks run (bf16 autocast, channels-last, ``torch.compile``, how
rows are batched) is an :class:`~edidub_engine.acceleration.Acceleration`;
the arithmetic is the same on every path.

Both report progress after every diffusion step and stop between steps when
``should_cancel()`` says so (raising :class:`~edidub_engine.errors.CancelledError`).
The diffusion process is the one in :mod:`edidub_engine.diffusion`; this module
only builds the denoiser closures around the networks and converts arrays.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, MutableMapping
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from .acceleration import AGREEMENT_DB, Acceleration, FastPathCheck, agreement_db
from .config import DubSettings
from .diffusion import DiffusionConfig, MaskedDiffusion, Phase, Section, from_residual, null_cond_for, to_residual
from .errors import CancelledError, InvalidArgumentError
from .tone import match_tone

log = logging.getLogger("edidub.pipeline")

Progress = Callable[[str, int, int], None]  # (stage, done, total)
ShouldCancel = Callable[[], bool]


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """``[T x H x W x 3]`` uint8 → ``[1 x 3 x T x H x W]`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(3, 0, 1, 2).unsqueeze(0).float().div(127.5).sub(1.0)


def to_crops(video: torch.Tensor) -> np.ndarray:
    """``[1 x 3 x T x H x W]`` in [-1, 1] → ``[T x H x W x 3]`` uint8 (rounded, clipped)."""
    return video[0].permute(1, 2, 3, 0).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def mask_tensor(masks: np.ndarray) -> torch.Tensor:
    """``[T x H x W]`` {0,1} → ``[1 x 1 x T x H x W]`` float32."""
    return torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)).unsqueeze(0).unsqueeze(0)


class DubbingPipeline:
    """The two diffusion stages around a loaded LSD and SRD (keep one per worker: models stay loaded)."""

    def __init__(self, *, lsd: torch.nn.Module, srd: torch.nn.Module, settings: DubSettings | None = None,
                 acceleration: Acceleration | None = None, check_fast_path: bool = True):
        """``acceleration`` is the path asked for; unless ``check_fast_path`` is False, one LSD and one SRD
        call on a fixed input are compared with the reference first, and the pipeline runs the fastest
        of :meth:`Acceleration.fallbacks` that agrees (``self.fast_path`` says which, and why)."""
        if lsd.null_unit is None:
            raise InvalidArgumentError("the LSD model has no speech-unit table; is it an SRD?")
        self.lsd, self.srd = lsd.eval(), srd.eval()
        self.settings = settings or DubSettings()
        self.lsd_size = int(lsd.config.sample_size)
        self.srd_size = int(srd.config.sample_size)
        self.null_unit = int(lsd.null_unit)
        self.fast_path = self._choose_path(acceleration or Acceleration.auto(self.device), check=check_fast_path)
        self.acceleration = self.fast_path.used
        if (message := self.fast_path.message()) is not None:
            log.warning(message)

    # ------------------------------------------------------------ the fast path
    @torch.no_grad()
    def _choose_path(self, requested: Acceleration, *, check: bool) -> FastPathCheck:
        """Prepare the networks on the fastest path of ``requested.fallbacks()`` that agrees with the reference."""
        if not check or requested.is_reference_arithmetic:
            self._lsd_call, self._srd_call = requested.prepare(self.lsd), requested.prepare(self.srd)
            return FastPathCheck(requested=requested, used=requested, checked=False)
        probes = self._probes(requested)
        reference = Acceleration.reference()
        expected = {name: self._run(reference.prepare(net), *probes[name], acceleration=reference)
                    for name, net in (("lsd", self.lsd), ("srd", self.srd))}
        tried = []
        for candidate in requested.fallbacks():
            self._lsd_call, self._srd_call = candidate.prepare(self.lsd), candidate.prepare(self.srd)
            if candidate.is_reference_arithmetic:
                tried.append({"path": candidate.describe(), "agreement_db": {}, "ok": True})
                return FastPathCheck(requested=requested, used=candidate, checked=True, tried=tried)
            agreement, failure = {}, None
            for name, call in (("lsd", self._lsd_call), ("srd", self._srd_call)):
                try:
                    agreement[name] = agreement_db(self._run(call, *probes[name], acceleration=candidate), expected[name])
                except Exception as exc:  # noqa: BLE001 - a compiler or kernel that fails is a path that disagrees
                    agreement[name], failure = -math.inf, f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    break
            ok = failure is None and all(value >= AGREEMENT_DB for value in agreement.values())
            tried.append({"path": candidate.describe(), "agreement_db": agreement, "ok": ok, **({"error": failure} if failure else {})})
            if ok:
                return FastPathCheck(requested=requested, used=candidate, checked=True, tried=tried)
        raise AssertionError("the last fallback is the reference arithmetic")  # pragma: no cover

    def _srd_window(self) -> int:
        return self.settings.srd_window_frames

    def _probes(self, acceleration: Acceleration) -> dict[str, tuple]:
        """A fixed input per network in the shape of its largest real call on ``acceleration``'s grouping:
        ``(sample, timestep, kwargs)``. The LSD's is a full section's guided sampling step, the SRD's a
        chunk's step (with the context frames it is given ahead), so the check runs the graphs a dub runs."""
        from .diffusion import window_starts

        generator = torch.Generator(device="cpu").manual_seed(1234)
        device, settings = self.device, self.settings

        def sample(rows: int, frames: int, size: int) -> torch.Tensor:
            x_t = torch.randn(rows, 3, frames, size, size, generator=generator)
            condition = torch.rand(rows, 3, frames, size, size, generator=generator).mul(2).sub(1)
            mask = torch.zeros(rows, 1, frames, size, size)
            mask[..., size // 2 :, :] = 1.0
            return torch.cat([x_t, condition, mask], dim=1).to(device)

        def timesteps(rows: int) -> torch.Tensor:
            return torch.tensor([900, 100], device=device).repeat(rows)[:rows]

        frames = min(settings.window_frames, settings.section_frames)
        lsd_rows = acceleration.rows_per_call(len(window_starts(settings.section_frames, window_frames=settings.window_frames,
                                                                window_stride=settings.window_stride)),
                                              guided=settings.guidance_scale != 1.0)
        srd_chunk = settings.srd_chunk_frames + max(0, settings.srd_window_frames - settings.srd_window_stride)  # render's context
        srd_rows = acceleration.rows_per_call(len(window_starts(srd_chunk, window_frames=settings.srd_window_frames,
                                                                window_stride=settings.srd_window_stride)), guided=False)
        units = torch.randint(0, self.null_unit + 1, (lsd_rows, frames, int(self.lsd.config.units_per_frame)), generator=generator)
        return {
            "lsd": (sample(lsd_rows, frames, self.lsd_size), timesteps(lsd_rows), {"units": units.to(device)}),
            "srd": (sample(srd_rows, min(self._srd_window(), srd_chunk), self.srd_size), timesteps(srd_rows), {}),
        }

    @property
    def device(self) -> torch.device:
        return next(self.lsd.parameters()).device

    def _process(self, settings: DubSettings, *, steps: int, guidance: float) -> MaskedDiffusion:
        return MaskedDiffusion(
            config=DiffusionConfig(
                inference_steps=steps,
                inversion_steps=settings.inversion_steps,
                guidance_scale=guidance,
                window_frames=settings.window_frames,
                window_stride=settings.window_stride,
                section_frames=settings.section_frames,
                carry_frames=settings.carry_frames,
                **self.acceleration.diffusion_overrides(),
            )
        )

    def _run(self, network, sample: torch.Tensor, timestep: torch.Tensor, kwargs: dict | None = None, *,
             acceleration: Acceleration | None = None) -> torch.Tensor:
        """One network call on the fast path: layout, autocast, and ε back in float32 for the scheduler."""
        acc = acceleration or self.acceleration
        kwargs = kwargs or {}
        with acc.autocast(sample.device):
            eps = network(acc.layout(sample), timestep, **kwargs).sample
        return eps.float().contiguous()

    def _lsd_denoiser(self):
        def denoise(x_t: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
            sample = torch.cat([x_t, cond["reference"], cond["mask"]], dim=1)
            return self._run(self._lsd_call, sample, timestep, {"units": cond["units"]})

        return denoise

    def _units(self, array: np.ndarray) -> torch.Tensor:
        if array.size and (array.min() < 0 or array.max() > self.null_unit):
            raise InvalidArgumentError(f"speech units range over [{array.min()}, {array.max()}]; this LSD knows 0..{self.null_unit}",
                                       hint="use the codebook the model bundle was trained with")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).unsqueeze(0).to(self.device)

    def _check_lsd_inputs(self, crops: np.ndarray, masks: np.ndarray, original_units: np.ndarray, dub_units: np.ndarray) -> None:
        frames = len(crops)
        if crops.shape[1:] != (self.lsd_size, self.lsd_size, 3) or masks.shape != crops.shape[:3]:
            raise InvalidArgumentError(f"LSD crops must be [T, {self.lsd_size}, {self.lsd_size}, 3] with matching masks")
        if original_units.shape != (frames, 2) or dub_units.shape != (frames, 2):
            raise InvalidArgumentError(f"units must be [{frames}, 2] for {frames} frames")

    # ------------------------------------------------------------------ LSD
    @torch.no_grad()
    def lip_sync(
        self,
        crops: np.ndarray,
        masks: np.ndarray,
        original_units: np.ndarray,
        dub_units: np.ndarray,
        *,
        settings: DubSettings | None = None,
        latents: MutableMapping[int, torch.Tensor] | None = None,
        tone_reference: np.ndarray | None = None,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> np.ndarray:
        """Edited crops ``[T x s x s x 3]`` uint8 at the LSD size.

        ``crops`` ``[T x s x s x 3]`` uint8, ``masks`` ``[T x s x s]``, units ``[T x 2]``.
        ``latents`` (section → inverted latent) is filled and reused: the inversion
        depends only on the source and its own speech, so a second dub skips it.
        The shot goes section by section through :meth:`lip_sync_section`, each carrying the previous one's
        tone-matched frames, exactly as the renderer streams it (render/lane.py): ``edidub check`` and
        adaptation's validation measure the computation a dub runs. ``tone_reference`` ``[T x s x s]``: where
        inside the masks the tone is measured (the part the edit is not meant to change; default: the whole mask).
        """
        settings = settings or self.settings
        self._check_lsd_inputs(crops, masks, original_units, dub_units)
        sections = self._process(settings, steps=settings.steps, guidance=settings.guidance_scale).plan_sections(len(crops))
        inverting = [latents is None or sec.index not in latents for sec in sections]
        total = len(sections) * settings.steps + sum(inverting) * settings.inversion_steps
        report, done = _stage(progress, "lip-sync"), 0
        output = None
        for section, inverts in zip(sections, inverting):
            a, b, c = section.start, section.end, section.carry
            sample, latent = self.lip_sync_section(
                crops[a:b], masks[a:b], original_units[a:b], dub_units[a:b], section=section,
                carried=None if output is None else output[:, :, a : a + c],
                latent=None if inverts else latents[section.index], settings=settings,
                tone_reference=None if tone_reference is None else tone_reference[a:b],
                progress=None if report is None else (lambda d, _t, base=done: report(base + d, total)),
                should_cancel=should_cancel,
            )
            if latents is not None:
                latents[section.index] = latent.detach().clone()
            output = sample if output is None else torch.cat([output[:, :, : a + c], sample[:, :, c:]], dim=2)
            done += settings.steps + (settings.inversion_steps if inverts else 0)
        return to_crops(output)

    def _lsd_inputs(self, crops, masks, original_units, dub_units, settings: DubSettings | None, reference: np.ndarray | None = None):
        """The process and ``(x0, mask, cond, null_cond, original_cond)`` tensors of an LSD edit."""
        settings = settings or self.settings
        self._check_lsd_inputs(crops, masks, original_units, dub_units)
        x0 = to_tensor(crops).to(self.device)
        mask = mask_tensor(masks).to(self.device)
        # At inference the reference is the clip being edited itself (section 3.1), unless another is given.
        if reference is not None and reference.shape != crops.shape:
            raise InvalidArgumentError(f"the LSD reference has shape {reference.shape}, the crops {crops.shape}")
        ref = x0 if reference is None else to_tensor(reference).to(self.device)
        cond = {"reference": ref, "mask": mask, "units": self._units(dub_units)}
        original = {"reference": ref, "mask": mask, "units": self._units(original_units)}
        process = self._process(settings, steps=settings.steps, guidance=settings.guidance_scale)
        return process, (x0, mask, cond, null_cond_for(cond, null_unit=self.null_unit), original)

    @torch.no_grad()
    def lip_sync_section(
        self,
        crops: np.ndarray,
        masks: np.ndarray,
        original_units: np.ndarray,
        dub_units: np.ndarray,
        *,
        section: Section,
        carried: torch.Tensor | None,
        latent: torch.Tensor | None = None,
        settings: DubSettings | None = None,
        reference: np.ndarray | None = None,
        tone_reference: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One section of :meth:`lip_sync` for streaming callers: ``(output, latent)``.

        Arrays hold the section's own frames; ``carried`` is the previous
        section's output tensor for the first ``section.carry`` frames.
        ``output`` is ``[1, 3, T, s, s]`` float in [-1, 1] (unrounded, to carry
        into the next section; :func:`to_crops` makes crops of it), ``latent``
        the section's inversion (cache it). ``progress(steps done, steps)``. ``reference``: what the network
        is conditioned on (default: ``crops`` themselves); ``tone_reference``: see :meth:`lip_sync`.

        A lone section shorter than the LSD's window (a shot of a few frames) is
        reflected in time up to one window, so the network sees the length it was
        trained on; only the section's own frames come back.
        """
        window = (settings or self.settings).window_frames
        frames = len(crops)
        if section.carry == 0 and frames < window:
            order = reflect_indices(frames, window)
            crops, masks = crops[order], masks[order]
            original_units, dub_units = original_units[order], dub_units[order]
            reference = None if reference is None else reference[order]
            tone_reference = None if tone_reference is None else tone_reference[order]
            section = Section(index=section.index, start=section.start, end=section.start + window, carry=0)
        process, (x0, mask, cond, null, original) = self._lsd_inputs(crops, masks, original_units, dub_units, settings, reference)
        steps = process.iter_edit_section(
            self._lsd_denoiser(), x0, mask, cond, null, original_cond=original, section=section, carried=carried, latent=latent,
        )
        sample = None
        try:
            for step in steps:
                if step.phase is Phase.INVERT and step.step == step.steps:
                    latent = step.sample
                sample = step.sample
                if progress is not None:
                    progress(step.done, step.total)
                if should_cancel is not None and step.done < step.total and should_cancel():
                    raise CancelledError(f"lip-sync cancelled in section {section.index} after {step.done} of {step.total} steps")
        finally:
            steps.close()
        assert sample is not None and latent is not None
        if (settings or self.settings).keep_tone:  # the section's new frames; the carried ones were matched before
            c = section.carry
            measured = None if tone_reference is None else mask_tensor(tone_reference).to(self.device)[:, :, c:]
            sample = torch.cat([sample[:, :, :c], match_tone(sample[:, :, c:], x0[:, :, c:], mask[:, :, c:], measured)], dim=2)
        return sample[:, :, :frames], latent

    # ------------------------------------------------------------------ SRD
    @torch.no_grad()
    def restore(
        self,
        crops: np.ndarray,
        masks: np.ndarray,
        low_res: np.ndarray,
        *,
        seed: int,
        low_source: np.ndarray | None = None,
        context: tuple[np.ndarray, np.ndarray] | None = None,
        first_frame: int = 0,
        mode: str = "srd",
        settings: DubSettings | None = None,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> np.ndarray:
        """Detail-restored crops ``[T x S x S x 3]`` uint8 at the SRD size; outside the masks, ``crops`` bit for bit.

        ``crops``/``masks``: the original high-resolution crops and their masks;
        ``low_res``: the LSD output ``[T x s x s x 3]`` for the same frames,
        upsampled here with bicubic interpolation (section 3.2).

        ``mode="srd"`` samples the SRD over its own windows (``settings.srd_window_*``),
        from the bicubic upsample noised part-way when ``settings.srd_strength`` < 1.
        Its noise is drawn per frame from ``seed`` and the frame's index in the source
        (``first_frame`` + i), and ``context`` — the previous chunk's last restored
        crops and their LSD outputs — is given to it unmasked ahead of the chunk, so
        windows straddle chunk borders and a shot restored chunk by chunk has no seams.
        An SRD trained on the residual over bicubic (``settings.srd_target``) samples that
        residual from a zero start and adds it to the upsample; ``settings.srd_start_noise``
        scales the start's noise (0: the deterministic estimate from the start itself).

        ``mode="bicubic"`` runs no network: the source crop plus the bicubic-upsampled
        LSD *change* (``low_res − low_source``), so wherever the mouth did not change
        the source's own detail is kept; without ``low_source``, plain bicubic. With
        ``low_source``, ``mode="srd"`` likewise adds only the SRD's change (its restoration
        of ``low_res`` minus its restoration of ``low_source``) to the source crop.
        """
        settings = settings or self.settings
        if crops.shape[1:] != (self.srd_size, self.srd_size, 3) or masks.shape != crops.shape[:3]:
            raise InvalidArgumentError(f"SRD crops must be [T, {self.srd_size}, {self.srd_size}, 3] with matching masks")
        if mode not in ("srd", "bicubic"):
            raise InvalidArgumentError(f"restore mode {mode!r} is not 'srd' or 'bicubic'")
        device = self.device
        x0 = to_tensor(crops).to(device)
        mask = mask_tensor(masks).to(device)
        up = self._upsample(to_tensor(low_res).to(device))
        if mode == "bicubic":
            if low_source is not None:
                up = (x0 + up - self._upsample(to_tensor(low_source).to(device))).clamp(-1.0, 1.0)
            return to_crops(torch.where(mask.bool(), up, x0))

        given = 0
        if context is not None and len(context[0]):
            given = len(context[0])
            x0 = torch.cat([to_tensor(context[0]).to(device), x0], dim=2)
            context_up = self._upsample(to_tensor(context[1]).to(device))
            up = torch.cat([context_up, up], dim=2)
            mask = torch.cat([torch.zeros_like(mask[:, :, :given]), mask], dim=2)
        frames = x0.shape[2]

        def denoise(x_t: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
            return self._run(self._srd_call, torch.cat([x_t, cond["low_res"], cond["mask"]], dim=1), timestep)

        srd_settings = replace(settings, window_frames=settings.srd_window_frames, window_stride=settings.srd_window_stride,
                               section_frames=max(settings.section_frames, frames + 1))
        process = self._process(srd_settings, steps=settings.srd_steps or settings.steps, guidance=1.0)
        noise = frame_noise(seed, first_frame - given, frames, self.srd_size).to(device) * settings.srd_start_noise
        residual, scale = settings.srd_target == "residual", settings.srd_residual_scale

        def sample(cond_up: torch.Tensor, report) -> torch.Tensor:
            target = to_residual(x0, cond_up, scale) if residual else x0
            out = process.sample(
                denoise, target, mask, {"low_res": cond_up, "mask": mask}, latent=noise,
                init=torch.zeros_like(cond_up) if residual else cond_up, strength=settings.srd_strength,
                progress=report, should_cancel=should_cancel,
            )
            return torch.where(mask.bool(), from_residual(out, cond_up, scale), x0) if residual else out

        out = sample(up, _stage(progress, "restore"))
        if low_source is not None:  # only the SRD's change goes onto the source crop, as in bicubic mode
            source_up = self._upsample(to_tensor(low_source).to(device))
            if given:
                source_up = torch.cat([context_up, source_up], dim=2)
            out = torch.where(mask.bool(), (x0 + out - sample(source_up, None)).clamp(-1.0, 1.0), x0)
        return to_crops(out[:, :, given:])

    def _upsample(self, low: torch.Tensor) -> torch.Tensor:
        """``[1, 3, T, s, s]`` → ``[1, 3, T, S, S]`` bicubic, clipped to [-1, 1]."""
        up = F.interpolate(low[0].transpose(0, 1), size=(self.srd_size, self.srd_size), mode="bicubic", align_corners=False)
        return up.clamp(-1.0, 1.0).transpose(0, 1).unsqueeze(0)


def reflect_indices(frames: int, length: int) -> np.ndarray:
    """``length`` indices into ``frames`` frames that run forward, back and forward again (0 1 2 1 0 1 …)."""
    if frames == 1:
        return np.zeros(length, dtype=np.int64)
    period = 2 * (frames - 1)
    phase = np.arange(length) % period
    return np.where(phase < frames, phase, period - phase).astype(np.int64)


def frame_noise(seed: int, first_frame: int, frames: int, size: int) -> torch.Tensor:
    """Standard normal noise ``[1, 3, frames, size, size]``, each frame's drawn from ``(seed, its index)`` alone.

    A frame gets the same noise whichever chunk it is restored in, so chunk borders do not reseed the picture.
    """
    out = torch.empty(1, 3, frames, size, size)
    for j in range(frames):
        generator = torch.Generator(device="cpu").manual_seed((int(seed) * 1_000_003 + first_frame + j) % 2**63)
        out[0, :, j] = torch.randn(3, size, size, generator=generator)
    return out


def _stage(progress: Progress | None, stage: str):
    """Adapt the diffusion's per-step callback to ``progress(stage, done, total)``."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(stage, int(done), int(total))

    return report
