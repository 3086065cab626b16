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
``Acceleration.auto(device)`` adds bf16, channels-last and compilation on
CUDA; on CPU it is the fp32 eager reference. There ``--precision bf16`` pays
only on CPUs with bf16 instructions (AVX512-BF16/AMX: about x4 per step on this
project's EPYC machines, ``benchmarks/suite.py``), and compiling costs minutes
of start-up and ran slower than eager on 2 cores.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .errors import InvalidArgumentError

__all__ = ["Acceleration", "COMPILE_MODES", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


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

    def prepare(self, model: torch.nn.Module) -> Any:
        """The module to call: laid out and compiled as asked (weights stay float32; autocast casts them)."""
        model = model.eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        if self.compile != "off":
            # dynamic=None: the first new shape (a shorter last window, a smaller batch) recompiles once
            # with symbolic sizes instead of once per shape.
            return torch.compile(model, mode=None if self.compile == "default" else self.compile, dynamic=None)
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
