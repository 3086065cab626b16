"""The masked diffusion process: DDIM inversion, guided DDIM sampling, MultiDiffusion and sections.

A plain object that holds the schedule; the network comes in as a denoiser
callable on every call (``denoiser(x_t, timestep, cond) -> ε``), so nothing
here imports a model. The DDIM arithmetic is diffusers' (``DDIMScheduler`` and
``DDIMInverseScheduler`` built from one config); what is EdiDub's own is
around it:

* inpainting — outside the mask every step's sample is the original ``x0``,
  re-imposed after each step, so those pixels come out bit for bit;
* MultiDiffusion — each step runs the scheduler on every window and averages
  the windows' updated samples ``x_{t∓1}`` frame by frame (uniform weights).
  That is MultiDiffusion's closed-form fusion; it equals averaging ε only
  when no window's x0 estimate is clipped, and averaging the updates keeps
  each window's clipped estimate what the scheduler made of it;
* sections with carry-over for long shots (:meth:`MaskedDiffusion.iter_edit`).

Every process has a generator form (``iter_*``) that yields a
:class:`DiffusionStep` after each step — progress for free, and stopping the
iteration cancels — and a plain form that takes ``progress(done, total)`` and
``should_cancel()`` callbacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from edidub_engine.errors import CancelledError, InvalidArgumentError

from .conditioning import (
    Cond,
    Denoiser,
    concat_conds,
    guided_epsilon,
    merge_null_cond,
    slice_cond,
    validate_cond,
    with_mask,
)
from .config import DiffusionConfig, Phase
from .noising import blend_outside_mask, masked_add_noise, masked_diffusion_loss, validate_video_and_mask
from .windows import Section, plan_sections, window_starts, window_weights

__all__ = ["DiffusionStep", "MaskedDiffusion"]

Progress = Callable[[int, int], None]
ShouldCancel = Callable[[], bool]


@dataclass(frozen=True, kw_only=True)
class DiffusionStep:
    """What one finished step reports.

    ``sample`` is the section's current ``x`` ``[N, C, T_section, H, W]`` (x0
    outside the mask); after the last inversion step it is the inverted latent,
    after the last sampling step the result. ``done``/``total`` count steps
    over the whole call (all sections, both phases). ``output``, set only on
    the last sampling step of each section of an edit, is the whole shot
    ``[N, C, T, H, W]`` with every section so far finished (later frames still
    the input).
    """

    phase: Phase
    step: int
    steps: int
    timestep: int
    sample: Tensor
    section: Section
    done: int
    total: int
    output: Tensor | None = None


class MaskedDiffusion:
    """Masked (inpainting) DDPM training loss and DDIM inversion/sampling for EdiDub.

    Build once per setting, e.g. ``MaskedDiffusion(config=DiffusionConfig(inference_steps=25))``;
    it holds no network and no per-shot state, so one object serves many shots.
    """

    def __init__(self, *, config: DiffusionConfig | None = None):
        self.config = config if config is not None else DiffusionConfig()
        self.scheduler = DDIMScheduler.from_config(self.config.scheduler_config())
        self.inverse_scheduler = DDIMInverseScheduler.from_config(self.scheduler.config)
        self.scheduler.set_timesteps(self.config.inference_steps)
        self.inverse_scheduler.set_timesteps(self.config.inversion_steps)

    def __repr__(self) -> str:
        return f"MaskedDiffusion(config={self.config!r})"

    @property
    def alphas_cumprod(self) -> Tensor:
        """ᾱ_t for t in [0, train_steps), float32 on the CPU."""
        return self.scheduler.alphas_cumprod

    # ----------------------------------------------------------------- training
    def add_noise(self, x0: Tensor, noise: Tensor, timesteps: Tensor, mask: Tensor) -> Tensor:
        """Inpainting noising ``m·(√ᾱ_t x0 + √(1−ᾱ_t) ε) + (1−m)·x0`` (see :func:`masked_add_noise`)."""
        return masked_add_noise(x0, noise, timesteps, mask, self.alphas_cumprod)

    def loss(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        *,
        timesteps: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        null_cond: Cond | None = None,
        cond_drop_prob: float | None = None,
        max_timestep: int | None = None,
    ) -> Tensor:
        """Eq. 1 for one batch (see :func:`masked_diffusion_loss`); ``cond_drop_prob`` defaults to the config's."""
        return masked_diffusion_loss(
            denoiser,
            x0,
            mask,
            cond,
            timesteps=timesteps,
            noise=noise,
            generator=generator,
            null_cond=null_cond,
            cond_drop_prob=self.config.cond_drop_prob if cond_drop_prob is None else cond_drop_prob,
            alphas_cumprod=self.alphas_cumprod,
            reduction=self.config.loss_reduction,
            mask_key=self.config.mask_key,
            max_timestep=max_timestep,
        )

    def start_index(self, strength: float) -> int:
        """How many of the sampler's timesteps a start at ``strength`` skips (diffusers' img2img rule)."""
        if not 0.0 < strength <= 1.0:
            raise InvalidArgumentError(f"strength={strength} must be in (0, 1]", hint="1 samples from pure noise")
        steps = self.config.inference_steps
        return steps - min(max(int(round(steps * strength)), 1), steps)

    # -------------------------------------------------------------- time layout
    def window_starts(self, num_frames: int) -> list[int]:
        """First frame of each MultiDiffusion window for a clip of ``num_frames``."""
        config = self.config
        return window_starts(num_frames, window_frames=config.window_frames, window_stride=config.window_stride)

    def window_weights(self, num_frames: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
        """Fusion weights ``[num_windows, num_frames]``; every frame's column sums to 1."""
        return window_weights(
            num_frames, window_frames=self.config.window_frames, window_stride=self.config.window_stride, dtype=dtype
        )

    def plan_sections(self, num_frames: int) -> list[Section]:
        """Sections of a shot of ``num_frames`` (see :mod:`edidub_engine.diffusion.windows`)."""
        return plan_sections(
            num_frames,
            section_frames=self.config.section_frames,
            carry_frames=self.config.carry_frames,
            min_frames=self.config.window_frames,
        )

    # ---------------------------------------------------------------- inversion
    def iter_invert(self, denoiser: Denoiser, x0: Tensor, mask: Tensor, cond: Cond) -> Iterator[DiffusionStep]:
        """DDIM inversion of ``x0`` ``[N, C, T, H, W]`` under ``mask`` ``[N, 1, T, H, W]``, step by step.

        Unguided: the conditional prediction with ``cond`` (the original speech
        units), because inversion must retrace the trajectory the model itself
        would take back to this clip; guidance would push it off that
        trajectory and the edit would no longer reproduce the untouched parts.
        """
        self._check_inputs(x0, mask, cond=cond)
        section = Section(index=0, start=0, end=x0.shape[2], carry=0)
        cond = with_mask(cond, mask, self.config.mask_key)
        steps = self.config.inversion_steps
        return self._steps(Phase.INVERT, denoiser, x0, x0, mask, cond, None, 1.0, section, 0, steps)

    def invert(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        *,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> Tensor:
        """The inverted latent ``[N, C, T, H, W]`` (noise inside the mask, ``x0`` outside)."""
        return _drive(self.iter_invert(denoiser, x0, mask, cond), progress, should_cancel).sample

    # ----------------------------------------------------------------- sampling
    def iter_sample(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None = None,
        *,
        latent: Tensor | None = None,
        generator: torch.Generator | None = None,
        init: Tensor | None = None,
        strength: float = 1.0,
    ) -> Iterator[DiffusionStep]:
        """Guided DDIM sampling (eta 0) of the masked region of ``x0``, step by step.

        Starts from ``latent`` (e.g. from :meth:`invert`; x0 is re-imposed
        outside the mask) or, without one, from standard normal noise drawn
        from ``generator``. ``null_cond`` overrides cond's entries in the
        unconditional branch (see :mod:`.conditioning`); it may be ``None`` only
        when ``guidance_scale`` is 1. With different inversion and sampling
        step counts under LEADING spacing the latent's noise level (t = 980
        for 50 steps) differs slightly from the sampler's first step; use
        TRAILING spacing if that matters.

        ``strength`` < 1 starts part-way (SDEdit, diffusers' img2img): ``init``,
        a clean estimate of the result (the bicubic upsample for the SRD), is
        noised to the level of the first step kept and only the remaining steps
        run, with ``latent`` (or drawn noise) as the noise. A restorer then keeps
        the estimate's structure and adds detail, rather than re-inventing the
        region from pure noise.
        """
        self._check_inputs(x0, mask, cond=cond, null_cond=null_cond)
        skip = self.start_index(strength)
        if skip and init is None:
            raise InvalidArgumentError(f"strength={strength} needs init, the clean estimate to start from")
        if init is not None and init.shape != x0.shape:
            raise InvalidArgumentError(f"init has shape {tuple(init.shape)}, video {tuple(x0.shape)}")
        if latent is None:
            latent = randn_tensor(tuple(x0.shape), generator=generator, device=x0.device, dtype=x0.dtype)
        elif latent.shape != x0.shape:
            raise InvalidArgumentError(f"latent has shape {tuple(latent.shape)}, video {tuple(x0.shape)}")
        scale = float(self.config.guidance_scale)
        null = self._null_cond(cond, null_cond, scale)
        cond = with_mask(cond, mask, self.config.mask_key)
        null = None if null is None else with_mask(null, mask, self.config.mask_key)
        section = Section(index=0, start=0, end=x0.shape[2], carry=0)
        latent = latent.to(x0.device, x0.dtype)
        if skip:
            first = torch.full((x0.shape[0],), int(self.scheduler.timesteps[skip]), dtype=torch.long)
            latent = masked_add_noise(init.to(x0.device, x0.dtype), latent, first, mask, self.alphas_cumprod)
        x = blend_outside_mask(latent, x0, mask)
        steps = self.config.inference_steps - skip
        return self._steps(Phase.SAMPLE, denoiser, x, x0, mask, cond, null, scale, section, 0, steps, skip=skip)

    def sample(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None = None,
        *,
        latent: Tensor | None = None,
        generator: torch.Generator | None = None,
        init: Tensor | None = None,
        strength: float = 1.0,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> Tensor:
        """The generated clip ``[N, C, T, H, W]``: new pixels inside the mask, ``x0`` bit for bit outside."""
        steps = self.iter_sample(denoiser, x0, mask, cond, null_cond, latent=latent, generator=generator, init=init, strength=strength)
        return _drive(steps, progress, should_cancel).sample

    # --------------------------------------------------------------------- edit
    def iter_edit(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None = None,
        *,
        original_cond: Cond,
        latents: MutableMapping[int, Tensor] | None = None,
    ) -> Iterator[DiffusionStep]:
        """A whole shot, section by section: DDIM inversion with ``original_cond``, then guided sampling with ``cond``.

        ``x0`` ``[N, C, T, H, W]`` is the original crop, ``mask``
        ``[N, 1, T, H, W]`` the region to re-generate. A section after the
        first takes its leading ``carry`` frames from the output so far under a
        zero mask, so they come out unchanged and the new frames continue them.
        Inversion runs on the ORIGINAL section (the same zero mask on the carry
        frames): the latent then depends only on the source and its own speech,
        never on the dub, so ``latents`` (section index → latent) can cache it
        across dubs of one shot — sections found there skip inversion, the
        others are inverted and stored.  The last step of each section carries
        the shot so far in ``output``.
        """
        self._check_inputs(x0, mask, cond=cond, null_cond=null_cond)
        validate_cond(original_cond, batch=x0.shape[0], frames=x0.shape[2], what="original_cond")
        null = self._null_cond(cond, null_cond, float(self.config.guidance_scale))
        return self._edit_steps(denoiser, x0, mask, cond, null, original_cond, latents)

    @torch.no_grad()
    def _edit_steps(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null: Cond | None,
        original_cond: Cond,
        latents: MutableMapping[int, Tensor] | None,
    ) -> Iterator[DiffusionStep]:
        sections = self.plan_sections(x0.shape[2])
        cached = {sec.index for sec in sections if latents is not None and sec.index in latents}
        total = len(sections) * self.config.inference_steps + (len(sections) - len(cached)) * self.config.inversion_steps
        done = 0
        output = x0.clone()
        for section in sections:
            s, e, c = section.start, section.end, section.carry
            latent = latents[section.index] if section.index in cached else None
            for step in self._section_steps(
                denoiser, x0[:, :, s:e], mask[:, :, s:e], slice_cond(cond, s, e),
                None if null is None else slice_cond(null, s, e), slice_cond(original_cond, s, e),
                section, output[:, :, s : s + c], latent, done, total,
            ):
                if step.phase is Phase.INVERT and step.step == step.steps and latents is not None:
                    latents[section.index] = step.sample.detach().clone()
                if step.phase is Phase.SAMPLE and step.step == step.steps:
                    output[:, :, s + c : e] = step.sample[:, :, c:]
                    step = dataclasses.replace(step, output=output.clone())
                yield step
                done = step.done

    def iter_edit_section(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None = None,
        *,
        original_cond: Cond,
        section: Section,
        carried: Tensor | None = None,
        latent: Tensor | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> Iterator[DiffusionStep]:
        """One section of :meth:`iter_edit`, for callers that stream a shot section by section.

        ``x0``/``mask``/conds hold the section's own frames (``section.frames``
        of them, the original ones); ``carried`` ``[N, C, section.carry, H, W]``
        is the output already made for its first ``carry`` frames (the previous
        section's result, unrounded, so a streamed shot equals a whole one).
        ``latent`` is a cached inversion of this section; without it the
        inversion steps come first and the last of them carries the latent to
        cache. Sections come from :func:`~.windows.next_section`.
        """
        self._check_inputs(x0, mask, cond=cond, null_cond=null_cond)
        validate_cond(original_cond, batch=x0.shape[0], frames=x0.shape[2], what="original_cond")
        if x0.shape[2] != section.frames:
            raise InvalidArgumentError(f"section {section.index} has {section.frames} frames but x0 has {x0.shape[2]}")
        if section.carry and (carried is None or carried.shape[2] != section.carry):
            raise InvalidArgumentError(f"section {section.index} needs the {section.carry} carried output frames")
        null = self._null_cond(cond, null_cond, float(self.config.guidance_scale))
        if total is None:
            total = done + self.config.inference_steps + (0 if latent is not None else self.config.inversion_steps)
        carried = x0[:, :, :0] if carried is None else carried
        return self._section_steps(denoiser, x0, mask, cond, null, original_cond, section, carried, latent, done, total)

    @torch.no_grad()
    def _section_steps(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null: Cond | None,
        original_cond: Cond,
        section: Section,
        carried: Tensor,
        latent: Tensor | None,
        done: int,
        total: int,
    ) -> Iterator[DiffusionStep]:
        """Invert (unless ``latent`` is given) and sample one section whose tensors are already cut to it."""
        key, c = self.config.mask_key, section.carry
        ms = mask.clone()
        ms[:, :, :c] = 0
        if latent is not None:
            latent = latent.to(x0.device, x0.dtype)
            if latent.shape != x0.shape:
                raise InvalidArgumentError(f"cached latent of section {section.index} has shape {tuple(latent.shape)}")
        else:
            inv_cond = with_mask(original_cond, ms, key)
            latent = x0
            for step in self._steps(Phase.INVERT, denoiser, x0, x0, ms, inv_cond, None, 1.0, section, done, total):
                latent = step.sample
                yield step
            done += self.config.inversion_steps
        xs = x0.clone()
        xs[:, :, :c] = carried.to(x0.device, x0.dtype)
        sec_cond = with_mask(cond, ms, key)
        sec_null = None if null is None else with_mask(null, ms, key)
        scale = float(self.config.guidance_scale)
        # The latent holds the ORIGINAL carry frames (inversion never sees the dub); the first sampling
        # step must already see the carried output, not only the steps after it.
        start = blend_outside_mask(latent, xs, ms)
        yield from self._steps(Phase.SAMPLE, denoiser, start, xs, ms, sec_cond, sec_null, scale, section, done, total)

    def edit(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None = None,
        *,
        original_cond: Cond,
        latents: MutableMapping[int, Tensor] | None = None,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> Tensor:
        """The dubbed shot ``[N, C, T, H, W]``: arrays in, arrays out (see :meth:`iter_edit`)."""
        steps = self.iter_edit(denoiser, x0, mask, cond, null_cond, original_cond=original_cond, latents=latents)
        return _drive(steps, progress, should_cancel).output

    # ---------------------------------------------------------------- internals
    def _check_inputs(self, x0: Tensor, mask: Tensor, *, cond: Cond, null_cond: Cond | None = None) -> None:
        validate_video_and_mask(x0, mask)
        validate_cond(cond, batch=x0.shape[0], frames=x0.shape[2])
        if null_cond is not None:
            validate_cond(null_cond, batch=x0.shape[0], frames=x0.shape[2], what="null_cond")

    @staticmethod
    def _null_cond(cond: Cond, null_cond: Cond | None, scale: float) -> dict[str, Tensor] | None:
        if scale == 1.0:
            return None  # the null branch is never evaluated at scale 1
        if null_cond is None:
            raise InvalidArgumentError(
                f"guidance_scale={scale} needs a null_cond",
                hint="pass null_cond={'units': <units filled with the null unit>} or set guidance_scale=1",
            )
        return merge_null_cond(cond, null_cond)

    @torch.no_grad()
    def _steps(
        self,
        phase: Phase,
        denoiser: Denoiser,
        x: Tensor,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None,
        scale: float,
        section: Section,
        done: int,
        total: int,
        *,
        skip: int = 0,
    ) -> Iterator[DiffusionStep]:
        scheduler = self.inverse_scheduler if phase is Phase.INVERT else self.scheduler
        timesteps = [int(t) for t in scheduler.timesteps][skip:]
        if phase is Phase.INVERT:
            # The inverse scheduler's step at t moves x from level t − ratio to t (its own arithmetic); the
            # network is told the level its input is at, t − ratio (0 for the clean start), as in
            # guided-diffusion's ddim_reverse_sample. Labelling it t instead (diffusers' pipelines) evaluates
            # ε at the wrong noise level and makes inversion inexact even for an exact model.
            ratio = self.config.train_steps // len(timesteps)
            labels = [max(t - ratio, 0) for t in timesteps]
        else:
            labels = timesteps
        frames = x.shape[2]
        starts = self.window_starts(frames)
        weights = self.window_weights(frames, dtype=x.dtype).to(x.device)
        for index, (t, label) in enumerate(zip(timesteps, labels)):
            x = self._step(scheduler, denoiser, x, t, label, x0, mask, cond, null_cond, scale, starts, weights)
            yield DiffusionStep(
                phase=phase,
                step=index + 1,
                steps=len(timesteps),
                timestep=t,
                sample=x,
                section=section,
                done=done + index + 1,
                total=total,
            )

    def _step(
        self,
        scheduler: DDIMScheduler | DDIMInverseScheduler,
        denoiser: Denoiser,
        x: Tensor,
        t: int,
        label: int,
        x0: Tensor,
        mask: Tensor,
        cond: Cond,
        null_cond: Cond | None,
        scale: float,
        starts: list[int],
        weights: Tensor,
    ) -> Tensor:
        """One scheduler step at ``t`` on every window (network told ``label``), fused by weighted average."""
        n, frames = x.shape[0], x.shape[2]
        length = min(self.config.window_frames, frames)
        rows_per_window = n if scale == 1.0 or not self.config.batch_guidance else 2 * n
        per_call = max(1, self.config.max_batch // rows_per_window)
        fused = torch.zeros_like(x) if len(starts) > 1 else None
        for first in range(0, len(starts), per_call):
            chunk = starts[first : first + per_call]
            xw = torch.cat([x.narrow(2, s, length) for s in chunk], 0)
            cw = concat_conds([slice_cond(cond, s, s + length) for s in chunk])
            nw = None if null_cond is None else concat_conds([slice_cond(null_cond, s, s + length) for s in chunk])
            timestep = torch.full((xw.shape[0],), label, device=x.device, dtype=torch.long)
            eps = guided_epsilon(denoiser, xw, timestep, cw, nw, scale, batched=self.config.batch_guidance)
            if eps.shape != xw.shape:
                raise InvalidArgumentError(f"denoiser returned shape {tuple(eps.shape)} for input {tuple(xw.shape)}")
            prev = scheduler.step(eps, t, xw).prev_sample.to(x.dtype)
            if fused is None:
                return blend_outside_mask(prev, x0, mask)
            for j, s in enumerate(chunk, start=first):
                w = weights[j, s : s + length].view(1, 1, length, 1, 1)
                fused[:, :, s : s + length] += w * prev[(j - first) * n : (j - first + 1) * n]
        return blend_outside_mask(fused, x0, mask)


def _drive(
    steps: Iterator[DiffusionStep], progress: Progress | None, should_cancel: ShouldCancel | None
) -> DiffusionStep:
    """Run a step generator to the end, reporting each step and checking for cancellation before each one."""
    last: DiffusionStep | None = None
    try:
        while True:
            if should_cancel is not None and (last is None or last.done < last.total) and should_cancel():
                done = 0 if last is None else last.done
                total = None if last is None else last.total
                when = "before its first step" if last is None else f"after {done} of {total} steps"
                raise CancelledError(f"diffusion cancelled {when}", details={"steps_done": done, "steps_total": total})
            try:
                step = next(steps)
            except StopIteration:
                break
            last = step
            if progress is not None:
                progress(step.done, step.total)
    finally:
        steps.close()
    if last is None:
        raise InvalidArgumentError("the diffusion process ran no step")
    return last
