"""The GPU fast path, run on CPU (same code, the CPU's kernels): its frames agree with the reference path's.

Reference: fp32, eager, classifier-free guidance as two forwards, one MultiDiffusion
window per call. Bounds (PSNR inside the lower-face mask, 8-bit crops, the shipped
starter LSD on real GRID crops, 2 inversion + 2 guided steps at guidance 5):

* batching alone only regroups rows: ≥ 60 dB (measured 88.6 dB, at most 1 level apart);
* the whole fast path (bf16 autocast + channels-last-3d + torch.compile + batching):
  ≥ 40 dB (measured 50.9 dB on an AMD EPYC; on an Intel Xeon with AMX it gave
  4.6 dB until CPU compiles at bf16 were held to 256-bit vectors).

Whatever the CPU, the pipeline checks its path against the reference when it is
built and falls back to one that agrees. So the tests assert which path ran (a
fallback to fp32 would otherwise compare fp32 with fp32 and pass), that the check
probes the shape of the calls a dub makes, and that it catches a path that is
deliberately wrong.

Outside the mask every path gives the original pixels bit for bit.
"""

from __future__ import annotations

import os
import shutil

import cv2
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


# one section and short SRD chunks: the self-check's probes are then the shapes of this test's own calls
SETTINGS = DubSettings(steps=2, inversion_steps=2, srd_steps=1, section_frames=FRAMES, srd_chunk_frames=4)


class _Rows:
    """The batch rows of every call of an eager network (a forward pre-hook: the real module, only watched)."""

    def __init__(self, module):
        self.rows: list[int] = []
        self.frames: set[int] = set()
        self._handle = module.register_forward_pre_hook(self._see)

    def _see(self, _module, args):
        self.rows.append(int(args[0].shape[0]))
        self.frames.add(int(args[0].shape[2]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def _lip_sync(shot, acceleration, used=None, rows=None):
    models, track, original, dub = shot
    pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=SETTINGS, acceleration=acceleration)
    if used is not None:
        used.append(pipeline)
    try:
        if rows is None:
            return pipeline.lip_sync(track.crops, track.masks, original, dub)
        with _Rows(models.lsd) as seen:
            out = pipeline.lip_sync(track.crops, track.masks, original, dub)
        rows.extend(seen.rows)
        return out
    finally:
        models.lsd.to(memory_format=torch.contiguous_format)  # the models are shared with other tests


def _psnr_inside(a, b, masks):
    d = (a.astype(np.float64) - b.astype(np.float64))[masks.astype(bool)]
    return 10 * np.log10(255.0**2 / max(float((d**2).mean()), 1e-12))


def _agree(shot, fast, bound_db, *, reference_rows=None, fast_rows=None):
    """The fast path's lip-sync against the reference's; returns the fast pipeline (its path says what ran)."""
    _, track, _, _ = shot
    reference = _lip_sync(shot, Acceleration.reference(), rows=reference_rows)
    pipelines = []
    out = _lip_sync(shot, fast, pipelines, rows=fast_rows)
    outside = ~track.masks.astype(bool)
    assert np.array_equal(out[outside], reference[outside]) and np.array_equal(out[outside], track.crops[outside])
    assert np.abs(out.astype(int) - track.crops).max() > 10, "the edit changed the mouth (else agreement is trivial)"
    psnr = _psnr_inside(out, reference, track.masks)
    assert psnr >= bound_db, f"fast path {pipelines[0].fast_path.to_dict()} is {psnr:.1f} dB from the reference"
    return pipelines[0]


def test_batched_guidance_and_windows_only_regroup_rows(shot):
    reference_rows, fast_rows = [], []
    pipeline = _agree(shot, Acceleration(), 60.0, reference_rows=reference_rows, fast_rows=fast_rows)
    assert pipeline.acceleration == Acceleration() and not pipeline.fast_path.fell_back
    # what ran: the reference one window and one guidance branch per call, the batched path a step's two
    # windows per call, both branches together when guided (4 rows) and alone when inverting (2)
    windows = len(pipeline._process(SETTINGS, steps=1, guidance=5.0).window_starts(FRAMES))
    assert windows == 2 and set(reference_rows) == {1} and set(fast_rows) == {2 * windows, windows}, (reference_rows, fast_rows)


def _cannot_compile_here() -> str | None:
    """Why torch.compile cannot run on this machine's CPU, or None: inductor builds its CPU kernels with a C++ compiler."""
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        return f"torch.compile's CPU kernels are C++ that inductor builds, and this machine has no C++ compiler ({compiler})"
    return None


def test_full_fast_path_agrees_with_the_reference(shot):
    if (reason := _cannot_compile_here()) is not None:
        pytest.skip(f"the full fast path (bf16 + channels-last + compile) cannot run here: {reason}")
    requested = Acceleration(precision="bf16", channels_last=True, compile="default")
    torch._dynamo.utils.counters.clear()  # count only this test's graphs
    pipeline = _agree(shot, requested, 40.0)
    check = pipeline.fast_path
    # The path asked for is the path that ran: a fallback to fp32 would compare fp32 with fp32 and pass.
    assert not check.fell_back and pipeline.acceleration == requested, check.message()
    assert [t["path"] for t in check.tried] == ["bf16 + channels-last + compile(default)"] and check.tried[0]["ok"]
    assert all(v >= 30.0 for v in check.tried[0]["agreement_db"].values()), check.to_dict()
    assert isinstance(pipeline._lsd_call, torch._dynamo.eval_frame.OptimizedModule)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2, "the lip-sync ran compiled graphs"


def test_the_self_check_probes_the_shape_of_a_dubs_calls(shot):
    """The probe is a real call's shape: a full section's guided step for the LSD, a chunk's step (with its context
    frames) for the SRD, grouped as the path groups rows; a 2-row probe compiled and vouched for graphs no dub runs."""
    models, track, original, dub = shot
    settings = DubSettings(steps=1, inversion_steps=1, srd_steps=1, section_frames=FRAMES, srd_chunk_frames=8)
    for acceleration in (Acceleration(), Acceleration(max_batch=3), Acceleration(batch_guidance=False), Acceleration.reference()):
        pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=settings, acceleration=acceleration)
        probes = pipeline._probes(acceleration)
        with _Rows(models.lsd) as lsd:
            pipeline.lip_sync(track.crops, track.masks, original, dub)
        assert (probes["lsd"][0].shape[0], probes["lsd"][0].shape[2]) == (max(lsd.rows), *lsd.frames), (acceleration, lsd.rows)
        size = pipeline.srd_size
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in track.crops[:11]])
        masks = np.stack([cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) for m in track.masks[:11]]) > 0
        with _Rows(models.srd) as srd:  # a chunk of 8 frames after the 3 the last chunk hands on, as the render gives it
            pipeline.restore(crops[3:], masks[3:], track.crops[3:11], seed=0, context=(crops[:3], track.crops[:3]), settings=settings)
        assert (probes["srd"][0].shape[0], probes["srd"][0].shape[2]) == (max(srd.rows), *srd.frames), (acceleration, srd.rows)


SHORT_WINDOWS = DubSettings(window_frames=8, window_stride=4, section_frames=FRAMES, srd_chunk_frames=4)


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
    """A bf16 path whose outputs carry 10 % noise is caught by the check and not run."""
    models = shot[0]
    with caplog.at_level("WARNING", logger="edidub.pipeline"):
        pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=SHORT_WINDOWS,
                                   acceleration=_Perturbed(precision="bf16"))
    check = pipeline.fast_path
    assert check.fell_back and pipeline.acceleration.precision == "fp32" and not pipeline.acceleration.channels_last
    bad = check.tried[0]["agreement_db"]
    assert set(bad) == {"lsd", "srd"} and all(v < 25.0 for v in bad.values()), bad
    assert "disagrees with the reference" in caplog.text and "running fp32 instead" in caplog.text
    record = check.to_dict()
    assert record["requested"] == "bf16" and record["used"] == "fp32" and record["fell_back"]
    # The same path unperturbed (bf16 eager) passes the same check: the bound is not what failed.
    honest = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=SHORT_WINDOWS,
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
