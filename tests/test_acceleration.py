"""The GPU fast path, run on CPU (same code, the CPU's kernels): its frames agree with the reference path's.

Reference: fp32, eager, classifier-free guidance as two forwards, one MultiDiffusion
window per call. Bounds (PSNR inside the lower-face mask, 8-bit crops, the shipped
starter LSD on real GRID crops, 2 inversion + 2 guided steps at guidance 5):

* batching alone only regroups rows: ≥ 60 dB (measured 88.6 dB, at most 1 level apart);
* the whole fast path (bf16 autocast + channels-last-3d + torch.compile + batching):
  ≥ 40 dB (measured 50.9 dB on an AMD EPYC; on an Intel Xeon with AMX it gave
  4.6 dB until CPU compiles at bf16 were held to 256-bit vectors).

Whatever the CPU, the pipeline checks its path against the reference when it is
built and falls back to one that agrees; the tests assert on the path it runs,
and that the check catches a path that is deliberately wrong.

Outside the mask every path gives the original pixels bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


def _lip_sync(shot, acceleration, used=None):
    models, track, original, dub = shot
    settings = DubSettings(steps=2, inversion_steps=2, srd_steps=1)
    pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=settings, acceleration=acceleration)
    if used is not None:
        used.append(pipeline.fast_path)
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
    checks = []
    out = _lip_sync(shot, fast, checks)
    outside = ~track.masks.astype(bool)
    assert np.array_equal(out[outside], reference[outside]) and np.array_equal(out[outside], track.crops[outside])
    assert np.abs(out.astype(int) - track.crops).max() > 10, "the edit changed the mouth (else agreement is trivial)"
    psnr = _psnr_inside(out, reference, track.masks)
    assert psnr >= bound_db, f"fast path {checks[0].to_dict()} is {psnr:.1f} dB from the reference"
    return checks[0]


def test_batched_guidance_and_windows_only_regroup_rows(shot):
    _agree(shot, Acceleration(), 60.0)


def test_full_fast_path_agrees_with_the_reference(shot):
    check = _agree(shot, Acceleration(precision="bf16", channels_last=True, compile="default"), 40.0)
    assert check.checked and check.tried[0]["path"] == "bf16 + channels-last + compile(default)"
    # Whichever path ran, its single-call agreement was measured and met the bound.
    assert check.tried[-1]["ok"] and check.used.describe() == check.tried[-1]["path"]


class _Perturbed(Acceleration):
    """A deliberately wrong fast path: at bf16 the network's output gets 10 % noise (what a bad kernel might do)."""

    def prepare(self, model):
        prepared = super().prepare(model)
        if self.precision == "fp32":
            return prepared

        def call(*args, **kwargs):
            out = prepared(*args, **kwargs)
            noise = torch.randn(out.sample.shape, generator=torch.Generator().manual_seed(0)).to(out.sample)
            return type(out)(sample=out.sample + 0.1 * out.sample.std() * noise)

        return call


def test_self_check_falls_back_from_a_wrong_fast_path_and_records_it(shot, caplog):
    models = shot[0]
    with caplog.at_level("WARNING", logger="edidub.pipeline"):
        pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=DubSettings(window_frames=8, window_stride=4),
                                   acceleration=_Perturbed(precision="bf16"))
    check = pipeline.fast_path
    assert check.fell_back and pipeline.acceleration.precision == "fp32" and not pipeline.acceleration.channels_last
    bad = check.tried[0]["agreement_db"]
    assert set(bad) == {"lsd", "srd"} and all(v < 25.0 for v in bad.values()), bad
    assert "disagrees with the reference" in caplog.text and "running fp32 instead" in caplog.text
    record = check.to_dict()
    assert record["requested"] == "bf16" and record["used"] == "fp32" and record["fell_back"]
    # The same path unperturbed (bf16 eager) passes the same check: the bound is not what failed.
    honest = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=DubSettings(window_frames=8, window_stride=4),
                             acceleration=Acceleration(precision="bf16")).fast_path
    assert not honest.fell_back and all(v >= 30.0 for v in honest.tried[0]["agreement_db"].values()), honest.to_dict()


def test_fallbacks_end_at_the_reference_arithmetic():
    chain = Acceleration(precision="bf16", channels_last=True, compile="default").fallbacks()
    assert [c.describe() for c in chain] == ["bf16 + channels-last + compile(default)", "bf16 + channels-last", "fp32"]
    assert chain[-1].is_reference_arithmetic and Acceleration().fallbacks() == [Acceleration()]


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
