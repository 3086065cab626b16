"""The GPU fast path, run on CPU (same code, the CPU's kernels): its frames agree with the reference path's.

Reference: fp32, eager, classifier-free guidance as two forwards, one MultiDiffusion
window per call. Bounds (PSNR inside the lower-face mask, 8-bit crops, the shipped
starter LSD on real GRID crops, 2 inversion + 2 guided steps at guidance 5):

* batching alone only regroups rows: ≥ 60 dB (measured 88.6 dB, at most 1 level apart);
* the whole fast path (bf16 autocast + channels-last-3d + torch.compile + batching):
  ≥ 40 dB (measured 50.9 dB, at most 3 levels apart).

Outside the mask every path gives the original pixels bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from edidub_engine.acceleration import Acceleration
from edidub_engine.config import DubSettings
from edidub_engine.errors import InvalidArgumentError
from edidub_engine.pipeline import DubbingPipeline
from edidub_engine.render import LoadedModels, track_shot

FRAMES = 30  # two MultiDiffusion windows, so batching windows changes the grouping


@pytest.fixture(scope="module")
def shot(starter_bundle, footage_path):
    from edidub_engine.face import FaceSelector
    from edidub_engine.media import probe_video

    models = LoadedModels.load(starter_bundle)
    track = track_shot(probe_video(footage_path("grid_bbaf2n.mpg")), 0, FRAMES, selector=FaceSelector.largest(),
                       lsd_size=int(models.lsd.config.sample_size), progress=None, should_cancel=None)
    rng = np.random.default_rng(0)
    units = rng.integers(0, models.lsd.null_unit, (2, FRAMES, 2))
    return models, track, units[0], units[1]


def _lip_sync(shot, acceleration):
    models, track, original, dub = shot
    settings = DubSettings(steps=2, inversion_steps=2, srd_steps=1)
    pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=settings, acceleration=acceleration)
    try:
        return pipeline.lip_sync(track.crops, track.masks, original, dub)
    finally:
        import torch

        models.lsd.to(memory_format=torch.contiguous_format)  # the models are shared with other tests


def _psnr_inside(a, b, masks):
    d = (a.astype(np.float64) - b.astype(np.float64))[masks.astype(bool)]
    return 10 * np.log10(255.0**2 / max(float((d**2).mean()), 1e-12))


def _agree(shot, fast, bound_db):
    _, track, _, _ = shot
    reference = _lip_sync(shot, Acceleration.reference())
    out = _lip_sync(shot, fast)
    outside = ~track.masks.astype(bool)
    assert np.array_equal(out[outside], reference[outside]) and np.array_equal(out[outside], track.crops[outside])
    assert np.abs(out.astype(int) - track.crops).max() > 10, "the edit changed the mouth (else agreement is trivial)"
    psnr = _psnr_inside(out, reference, track.masks)
    assert psnr >= bound_db, f"fast path {fast} is {psnr:.1f} dB from the reference"


def test_batched_guidance_and_windows_only_regroup_rows(shot):
    _agree(shot, Acceleration(), 60.0)


def test_full_fast_path_agrees_with_the_reference(shot):
    _agree(shot, Acceleration(precision="bf16", channels_last=True, compile="default"), 40.0)


def test_auto_is_the_reference_arithmetic_on_cpu_and_the_fast_path_on_cuda():
    assert Acceleration.auto("cpu") == Acceleration()
    fast = Acceleration.auto("cuda")
    assert (fast.precision, fast.channels_last, fast.compile) == ("bf16", True, "default")
    assert Acceleration.parse("fp32", "off", "cuda").precision == "fp32"
    assert Acceleration.reference().diffusion_overrides() == {"batch_guidance": False, "max_batch": 1}
    with pytest.raises(InvalidArgumentError, match="precision"):
        Acceleration(precision="fp8")
    with pytest.raises(InvalidArgumentError, match="compile"):
        Acceleration(compile="fast")
