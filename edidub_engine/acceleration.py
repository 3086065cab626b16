"""The fast path: how the U-Nets run on a device, kept apart from what they compute.

Everything here is an execution choice that must not change the picture beyond
a stated tolerance (``tests/test_acceleration.py`` measures it against the
reference path on CPU):

* ``precision`` — ``bf16`` runs the networks under autocast (matmuls and
  convolutions in bfloat16, norms and the diffusion arithmetic in float32);
  ``fp32`` is the reference;
* ``channels_last`` — the 3-D convolutions see ``channels_last_3d`` tensors,
  the layout cuDNN's fastest kernels want;
* ``compile`` — ``torch.compile`` of each U-Net (``"default"``, or
  ``"reduce-overhead"`` which captures CUDA graphs and removes per-kernel
  launch costs; ``"off"`` for the eager reference, and for debugging).

* ``batch_guidance`` — classifier-free guidance's conditional and
  unconditional rows in one forward instead of two;
* ``batch_windows`` — every MultiDiffusion window of a step in one forward
  (up to ``max_batch`` rows) instead of one window per call.

The last two are on by default everywhere: they only change how rows are
grouped, so they agree with the reference to kernel rounding.

Trust, then verify: a fast path is a promise of the kernels underneath, and
one broke it — inductor's AVX-512 C++ kernels turn a bf16 graph of the whole
U-Net into NaN on an Intel Xeon with AMX (each block compiled alone, the same
graph at AVX2 width, or uncompiled, all agree). So a CPU compile at bf16 asks
inductor for 256-bit vectors, and every pipeline checks its path once against
the reference (:class:`FastPathCheck`, ``DubbingPipeline``) and falls back
along :meth:`Acceleration.fallbacks` when they disagree.
``Acceleration.auto(device)`` adds bf16, channels-last and compilation on
CUDA; on CPU it is the fp32 eager reference. There ``--precision bf16`` pays
only on CPUs with bf16 instructions (AVX512-BF16/AMX: about x4 per step on this
project's EPYC machines, ``benchmarks/suite.py``), and compiling costs minutes
of start-up and ran slower than eager on 2 cores.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from .errors import InvalidArgumentError

__all__ = ["AGREEMENT_DB", "Acceleration", "COMPILE_MODES", "FastPathCheck", "PRECISIONS", "agreement_db"]

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
# One network call on the fast path must match the reference's ε to this many dB (signal over error).
# bf16 autocast measures 45-50 dB on the starter; a broken kernel gives NaN or a few dB, and a 10 %
# perturbation of the output 20 dB.
AGREEMENT_DB = 30.0


@dataclass(frozen=True, kw_only=True)
class Acceleration:
    """How a worker runs its networks (one per device; part of the inversion cache key through ``precision``)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: str = "off"
    batch_guidance: bool = True
    batch_windows: bool = True
    max_batch: int = 32  # rows of one network call when windows are batched

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InvalidArgumentError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}",
                                       hint="bf16 is the fast path on GPUs, fp32 the reference")
        if self.compile not in COMPILE_MODES:
            raise InvalidArgumentError(f"compile mode {self.compile!r} is not one of {', '.join(COMPILE_MODES)}",
                                       hint="'off' runs the networks eagerly")
        if self.max_batch < 1:
            raise InvalidArgumentError(f"max_batch={self.max_batch} must be at least 1")

    @classmethod
    def reference(cls) -> "Acceleration":
        """The plain path every optimisation is measured against: fp32, eager, one window and one guidance branch per call."""
        return cls(batch_guidance=False, batch_windows=False)

    @classmethod
    def auto(cls, device: torch.device | str) -> "Acceleration":
        """The fast path on CUDA, the reference path elsewhere."""
        if torch.device(device).type == "cuda":
            return cls(precision="bf16", channels_last=True, compile="default")
        return cls()

    @classmethod
    def parse(cls, precision: str | None, compile: str | None, device: torch.device | str) -> "Acceleration":
        """``auto`` defaults for the device, with the command line's choices (``None`` = keep) on top."""
        base = cls.auto(device)
        fields = asdict(base)
        if precision is not None:
            fields["precision"] = precision
        if compile is not None:
            fields["compile"] = compile
        return cls(**fields)

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    @property
    def is_reference_arithmetic(self) -> bool:
        """fp32, contiguous, eager: the reference's arithmetic (batching only regroups rows)."""
        return self.precision == "fp32" and not self.channels_last and self.compile == "off"

    def fallbacks(self) -> list["Acceleration"]:
        """This path, then ever safer ones, ending with the reference arithmetic (batching kept)."""
        chain = [self, replace(self, compile="off"), replace(self, precision="fp32", channels_last=False, compile="off")]
        return [c for i, c in enumerate(chain) if c not in chain[:i]]

    def describe(self) -> str:
        """A short name of the path, e.g. ``bf16 + channels-last + compile(default)``."""
        parts = [self.precision] + (["channels-last"] if self.channels_last else [])
        parts += [] if self.compile == "off" else [f"compile({self.compile})"]
        return " + ".join(parts)

    def prepare(self, model: torch.nn.Module) -> Any:
        """The module to call: laid out and compiled as asked (weights stay float32; autocast casts them)."""
        model = model.eval().to(memory_format=torch.channels_last_3d if self.channels_last else torch.contiguous_format)
        if self.compile != "off":
            # dynamic=False: one graph per input shape. LSD and SRD share the U-Net's forward, so with
            # automatic dynamic shapes the second network's call recompiled with symbolic H and W, which
            # inductor failed to lower ("Invalid ranges [0:-1]" on the strided convolution).
            options = None
            if self.precision == "bf16" and next(model.parameters()).device.type == "cpu":
                # Inductor's 512-bit C++ kernels give NaN for this bf16 graph on AMX Xeons; 256-bit agree.
                options = {"cpp.simdlen": 256}
            mode = None if self.compile == "default" else self.compile
            if options is not None:
                return torch.compile(model, dynamic=False, options={**options, **_mode_options(mode)})
            return torch.compile(model, mode=mode, dynamic=False)
        return model

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """An input tensor in the layout the prepared network expects."""
        if self.channels_last and x.dim() == 5:
            return x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The autocast region for one network call (a no-op at fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    def diffusion_overrides(self) -> dict[str, Any]:
        """The :class:`~edidub_engine.diffusion.DiffusionConfig` fields these choices set."""
        return {"batch_guidance": self.batch_guidance, "max_batch": self.max_batch if self.batch_windows else 1}

    def rows_per_call(self, windows: int, *, guided: bool) -> int:
        """Rows of the largest network call over ``windows`` MultiDiffusion windows of one clip, grouped as the
        diffusion process groups them on this path (``MaskedDiffusion._step``: both guidance branches of a window
        together when batched, whole windows up to ``max_batch`` rows). The self-check probes this shape: with
        ``dynamic=False`` each shape is its own compiled graph, and a 2-row probe vouched for none that runs."""
        overrides = self.diffusion_overrides()
        per_window = 2 if guided and overrides["batch_guidance"] else 1
        return min(windows, max(1, overrides["max_batch"] // per_window)) * per_window

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mode_options(mode: str | None) -> dict[str, Any]:
    """``torch.compile`` takes a mode or options, not both: the mode as its options."""
    if mode is None:
        return {}
    from torch._inductor import list_mode_options

    return dict(list_mode_options(mode))


def agreement_db(output: torch.Tensor, reference: torch.Tensor) -> float:
    """Signal over error of ``output`` against ``reference``, in dB (``-inf`` for NaN/inf; ``inf`` when equal)."""
    output, reference = output.detach().double().cpu(), reference.detach().double().cpu()
    if not torch.isfinite(output).all():
        return -math.inf
    error = float(((output - reference) ** 2).mean())
    signal = float((reference**2).mean())
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / error)


@dataclass(frozen=True, kw_only=True)
class FastPathCheck:
    """What a pipeline's self-check found: the path asked for, the one that runs, and why.

    ``agreement_db`` maps each network tried on each path (``"lsd"``, ``"srd"``)
    to its signal-over-error against the reference; ``checked`` is False when
    the requested path is the reference arithmetic (nothing to compare).
    """

    requested: Acceleration
    used: Acceleration
    checked: bool
    bound_db: float = AGREEMENT_DB
    tried: list[dict[str, Any]] = field(default_factory=list)  # [{"path": ..., "agreement_db": {...}, "ok": bool}]

    @property
    def fell_back(self) -> bool:
        return self.used != self.requested

    def message(self) -> str | None:
        """The one log line a fallback deserves, else None."""
        if not self.fell_back:
            return None
        first = self.tried[0] if self.tried else {}
        figures = first.get("error") or ", ".join(f"{k} {_db(v)}" for k, v in first.get("agreement_db", {}).items())
        return (f"fast path {self.requested.describe()} disagrees with the reference ({figures}; needs {self.bound_db:.0f} dB); "
                f"running {self.used.describe()} instead")

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested.describe(),
            "used": self.used.describe(),
            "checked": self.checked,
            "fell_back": self.fell_back,
            "bound_db": self.bound_db,
            "tried": [{**t, "agreement_db": {k: _json_db(v) for k, v in t["agreement_db"].items()}} for t in self.tried],
        }


def _db(value: float) -> str:
    return "NaN/inf output" if value == -math.inf else ("exact" if value == math.inf else f"{value:.1f} dB")


def _json_db(value: float) -> float | str:
    """JSON has no infinities: exact and non-finite agreement as words."""
    return "exact" if value == math.inf else ("non-finite" if value == -math.inf else round(value, 2))
