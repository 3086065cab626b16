"""The picture itself: a dub returns the actor's face, not noise, and each stage is measured against its baseline.

A suite that only checked mechanics once passed while the main job painted coloured noise
over every face. These tests dub real shared clips the shipped starter never saw in
training (it was trained on four GRID clips) with the bundle's own settings and assert
figures that noise fails (noise gives about 15-18 dB on the lower face and a face that
the tracker no longer finds).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edidub_engine.config import DubSettings
from edidub_engine.media import iter_frames, probe_video
from edidub_engine.models.bundle import DEFAULT_BUNDLE, SHIPPED_DIR, read_bundle
from edidub_engine.pipeline import frame_noise
from edidub_engine.qc import ShotQC
from edidub_engine.render import SRD_MARGIN_DB, LoadedModels, ShotRenderer, srd_verdict
from edidub_engine.shot import ShotRequest


@pytest.fixture(scope="module")
def shipped():
    """The starter exactly as it ships: its own steps, windows and check figures."""
    return LoadedModels.load(SHIPPED_DIR / DEFAULT_BUNDLE)


def _dub(models, source, audio, out_dir, start, end, *, audio_start=0.0, restore="auto", lsd="auto"):
    settings = DubSettings().with_overrides(**models.info.dub_defaults(), restore=restore, lsd=lsd)
    request = ShotRequest.from_dict({
        "shot_id": "pic", "source": {"path": str(source), "start_frame": start, "end_frame": end},
        "dub_audio": [{"path": str(audio), "start_s": audio_start}], "output": {"dir": str(out_dir), "codec": "ffv1"},
    })
    return ShotRenderer(models, settings=settings).dub_shot(request)


def _lower_face_psnr(source_path, out_path, start, end):
    """PSNR of the lower face (below the eyes, as the renderer's mask) in the native frame, over frames with a face."""
    from edidub_engine.evaluation.check import _native_lower_face
    from edidub_engine.face import FaceSelector
    from edidub_engine.render import track_shot

    info = probe_video(source_path)
    track = track_shot(info, start, end, selector=FaceSelector.largest(), lsd_size=32, progress=None, should_cancel=None)
    source = [f for _, f in iter_frames(info, start, end)]
    out = [f for _, f in iter_frames(probe_video(out_path), 0, end - start)]
    err, n = 0.0, 0
    for k, status in enumerate(track.status):
        if status != "ok":
            continue
        region = _native_lower_face(track.landmarks[k], info.height, info.width)
        d = out[k][region].astype(np.float64) - source[k][region]
        err, n = err + float((d**2).sum()), n + d.size
    return 10 * np.log10(255.0**2 / (err / n)), track


def test_the_readme_main_job_gives_back_a_face_in_every_frame_that_had_one(shipped, footage_path, tmp_path):
    from edidub_engine.face import FaceTracker

    source, dub = footage_path("retalking_face2.mp4"), footage_path("dub_fr_french1.wav")
    clip = _dub(shipped, source, dub, tmp_path, 0, 40)
    assert clip.qc["restore"]["mode"] == ("srd" if srd_verdict(shipped.info.card)["runs_srd"] else "bicubic")  # as its check decided
    found = {"source": 0, "output": 0}
    with FaceTracker() as tracker:
        for name, path, first in (("source", source, 0), ("output", clip.path, 0)):
            for index, frame in iter_frames(probe_video(path), first, first + 40):
                tracker.reset()
                found[name] += int(tracker.process(frame, index).ok)
    assert found["source"] >= 38
    assert found["output"] >= 0.95 * found["source"], found
    psnr_db, _ = _lower_face_psnr(source, clip.path, 0, 40)
    assert psnr_db >= 24.0, f"another line changes the lips, not the whole lower face: {psnr_db:.1f} dB"
    assert clip.qc["quality"]["verdict"] == "ok", clip.qc["quality"]


def test_an_own_speech_round_trip_keeps_the_lower_face(shipped, footage_path, tmp_path):
    """The network path (the LSD forced on: a line that is the source's own sound moves no mouth, and `auto` would leave
    the picture as it is) gives the lower face back."""
    source = footage_path("real3d_may_5s.mp4")
    clip = _dub(shipped, source, source, tmp_path, 0, 32, lsd="on")
    assert clip.qc["mouths"]["own_speech"] and clip.qc["mouths"]["frames_moved"] == 0 and clip.qc["lsd"]["runs"]
    psnr_db, _ = _lower_face_psnr(source, clip.path, 0, 32)
    # 35.7 dB over frames 0-47 with the tone kept; 27.1 dB with the colour cast the guided LSD put over it, noise 15-18 dB
    assert psnr_db >= 31.0, f"own-speech round trip: {psnr_db:.1f} dB inside the lower face"


def test_the_actors_own_mouths_moved_from_other_frames_give_the_lower_face_back(starter_bundle, footage_path):
    """The mouth stage's round trip: every frame given the mouth of another frame of its clip (at least six frames
    away) with its own opening — the picture a dub starts from — against the truth, at the LSD size: above the
    mean-colour fill by far and above 26 dB (the moved mouths do not depend on the LSD's steps: the tests' few)."""
    from edidub_engine.evaluation.check import _mean_fill, _track, mouth_figures
    from edidub_engine.evaluation.metrics import psnr

    renderer = ShotRenderer(LoadedModels.load(starter_bundle))
    tracked = _track(renderer.pipeline, footage_path("real3d_may_5s.mp4"), 0, 48)
    figures = mouth_figures(renderer, tracked)
    crops, masks = tracked.track.crops[tracked.ok], tracked.track.masks[tracked.ok]
    fill = psnr(_mean_fill(crops, masks), crops, np.repeat(masks.astype(bool)[..., None], 3, axis=-1))
    assert figures["mouths_moved_db"] >= 26.0 and figures["mouths_moved_db"] >= fill + 8, (figures, fill)


def test_the_lsd_keeps_the_sources_tone_under_the_mask(shipped, footage_path):
    """Guidance 5 casts the starter's whole lower face blue, green or purple; the tone match takes it back to the
    source's (measured at the LSD size on an own-speech round trip, where the source is the truth)."""
    from edidub_engine.evaluation.metrics import psnr
    from edidub_engine.face import FaceSelector
    from edidub_engine.render import track_shot

    renderer = ShotRenderer(shipped)
    info = probe_video(footage_path("real3d_may_5s.mp4"))
    track = track_shot(info, 0, 32, selector=FaceSelector.largest(), lsd_size=renderer.pipeline.lsd_size, progress=None,
                       should_cancel=None)
    units = renderer._units(renderer._source_audio(info, 0, 32), info.rate, 32).shot
    inside = np.repeat(track.masks.astype(bool)[..., None], 3, axis=-1)
    figures, casts = {}, {}
    for keep in (False, True):
        settings = DubSettings().with_overrides(**shipped.info.dub_defaults(), keep_tone=keep)
        out = renderer.pipeline.lip_sync(track.crops, track.masks, units, units, settings=settings)
        figures[keep] = psnr(out, track.crops, inside)
        d = out.astype(np.float64) - track.crops
        casts[keep] = max(float(np.abs(np.median(d[k][track.masks[k] > 0.5], axis=0)).max()) for k in range(len(out)))
    assert figures[True] >= figures[False] + 3.0 and figures[True] >= 30.0, figures
    assert casts[True] <= 1.0 < casts[False], casts  # the worst frame's median offset, in 8-bit levels


def test_a_broken_srd_is_caught_by_the_check_and_not_run(footage_path, tmp_path):
    """Random SRD weights (a broken export) do not beat bicubic in `edidub check`; `auto` then never runs them."""
    from edidub_engine.evaluation.check import check_bundle, write_check_into_card
    from edidub_engine.models import load_model

    bundle = tmp_path / "broken"
    shutil.copytree(SHIPPED_DIR / DEFAULT_BUNDLE, bundle)
    card = json.loads((bundle / "model_card.json").read_text(encoding="utf-8"))
    card.pop("check", None)
    (bundle / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    srd = load_model(bundle / "srd")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in srd.parameters():
            p.normal_(0.0, 0.05)
    srd.save_pretrained(bundle / "srd")
    assert srd_verdict(read_bundle(bundle).card)["runs_srd"] is None  # unchecked

    summary = check_bundle(bundle, [str(footage_path("real3d_may_5s.mp4"))], frames=12)
    # a random residual SRD is harmless (its prior is bicubic itself) but adds nothing: the gate's margin keeps it off
    assert summary["srd"]["srd_db"] < summary["srd"]["bicubic_db"] + SRD_MARGIN_DB and not summary["srd"]["beats_bicubic"]
    assert summary["lsd"]["round_trip_db"] > summary["lsd"]["baseline_db"] + 3.0
    assert summary["end_to_end"]["restore"] == "bicubic"
    assert summary["end_to_end"]["lower_face_db"] > summary["end_to_end"]["baseline_db"]
    write_check_into_card(bundle, summary)
    models = LoadedModels.load(bundle)
    verdict = srd_verdict(models.info.card)
    assert verdict["runs_srd"] is False and "bicubic" in verdict["reason"]
    renderer = ShotRenderer(models)
    assert renderer.restore_mode(renderer.pipeline.settings) == "bicubic"
    assert renderer.restore_mode(DubSettings(restore="srd")) == "srd"  # forced by the user


def test_an_srd_runs_only_where_it_gains_at_its_stage_and_end_to_end():
    def card(srd_db, bicubic_db, **whole):
        return {"check": {"srd": {"srd_db": srd_db, "bicubic_db": bicubic_db}, "end_to_end": whole}}

    assert srd_verdict(card(29.0, 28.9, restore="srd", with_srd_db=27.5, with_bicubic_db=27.2))["runs_srd"] is True
    tie = srd_verdict(card(29.0, 28.9, restore="bicubic", with_srd_db=27.19, with_bicubic_db=27.17))
    assert tie["runs_srd"] is False and "not the whole render" in tie["reason"]
    assert srd_verdict(card(28.92, 28.9, restore="bicubic"))["runs_srd"] is False  # within the margin: a tie
    assert srd_verdict({})["runs_srd"] is None


def test_each_network_runs_with_its_own_windows(shipped):
    info = shipped.info
    lsd, srd = info.sampling("lsd"), info.sampling("srd")
    assert (srd.window_frames, srd.window_stride) == (5, 2)  # the SRD is trained on 5-frame windows
    assert lsd.window_frames == info.card["lsd"]["training"]["config"]["window_frames"]
    settings = ShotRenderer(shipped).pipeline.settings
    assert (settings.window_frames, settings.srd_window_frames, settings.srd_window_stride) == (lsd.window_frames, 5, 2)


def test_bicubic_restore_keeps_the_source_where_the_mouth_did_not_change(shipped):
    from edidub_engine.pipeline import DubbingPipeline

    pipeline = DubbingPipeline(lsd=shipped.lsd, srd=shipped.srd, settings=DubSettings())
    rng = np.random.default_rng(0)
    size, low = pipeline.srd_size, pipeline.lsd_size
    crops = rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    masks = np.zeros((3, size, size), bool)
    masks[:, size // 2 :] = True
    source_low = rng.integers(0, 256, (3, low, low, 3), dtype=np.uint8)
    same = pipeline.restore(crops, masks, source_low, seed=0, low_source=source_low, mode="bicubic")
    assert np.array_equal(same, crops)  # no change at the LSD size: the source's own detail, bit for bit
    edited = source_low.copy()
    edited[:, low // 2 :] = 255 - edited[:, low // 2 :]
    out = pipeline.restore(crops, masks, edited, seed=0, low_source=source_low, mode="bicubic")
    assert np.array_equal(out[~masks], crops[~masks]) and not np.array_equal(out[masks], crops[masks])


class _OracleSRD:
    """A denoiser that knows the answer: ε of ``x_t`` for a known clean ``x0`` (here the residual over bicubic),
    the same in every frame so that it holds for any window. It takes the SRD's input (``[x_t, low_res, mask]``) as the network does, so the sampling, the
    zero start, the residual's scale and the paste onto the upsample are what is tested.
    """

    def __init__(self, clean: torch.Tensor):
        from edidub_engine.diffusion import MaskedDiffusion

        self.clean, self.alphas = clean[:, :, :1], MaskedDiffusion().alphas_cumprod

    def __call__(self, sample, timestep, **_):
        from types import SimpleNamespace

        a = self.alphas[timestep.long()].view(-1, 1, 1, 1, 1).to(sample)
        x_t = sample[:, :3]
        return SimpleNamespace(sample=(x_t - a.sqrt() * self.clean) / (1 - a).sqrt())


def test_a_residual_srd_adds_its_residual_to_bicubic(shipped):
    """An SRD trained on the residual over bicubic (``srd_target="residual"``): a zero residual gives bicubic,
    the true residual gives the high-resolution crop back, and outside the mask the source stays bit for bit."""
    from edidub_engine.diffusion import to_residual
    from edidub_engine.evaluation.metrics import psnr
    from edidub_engine.pipeline import DubbingPipeline, to_tensor

    settings = DubSettings(srd_target="residual", srd_residual_scale=4.0, srd_strength=0.5, srd_steps=10)
    pipeline = DubbingPipeline(lsd=shipped.lsd, srd=shipped.srd, settings=settings)
    size, low = pipeline.srd_size, pipeline.lsd_size
    yy, xx = np.mgrid[:size, :size]
    still = np.stack([127 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0)] * 3, -1)
    crops = np.stack([still] * 6).astype(np.uint8)  # detail that a 32 px version loses, the same in every frame
    masks = np.zeros((6, size, size), bool)
    masks[:, size // 2 :] = True
    small = torch.nn.functional.interpolate(to_tensor(crops)[0].transpose(0, 1), size=(low, low), mode="area")
    low_res = ((small.transpose(0, 1)[None].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 3, 0).numpy()
    inside = np.repeat(masks[..., None], 3, axis=-1)
    bicubic = pipeline.restore(crops, masks, low_res, seed=0, mode="bicubic")

    up = pipeline._upsample(to_tensor(low_res))
    pipeline._srd_call = _OracleSRD(torch.zeros_like(up))
    zero = pipeline.restore(crops, masks, low_res, seed=0, mode="srd")
    assert np.abs(zero.astype(int) - bicubic.astype(int)).max() <= 1
    pipeline._srd_call = _OracleSRD(to_residual(to_tensor(crops), up, 4.0))
    true = pipeline.restore(crops, masks, low_res, seed=0, mode="srd")
    assert np.array_equal(true[~masks], crops[~masks])
    # with the source's own low-res crop, only the SRD's change goes onto the source: none where nothing changed
    unchanged = pipeline.restore(crops, masks, low_res, seed=0, mode="srd", low_source=low_res)
    assert np.abs(unchanged.astype(int) - crops.astype(int)).max() <= 1
    print(f"true residual {psnr(true, crops, inside):.1f} dB, bicubic {psnr(bicubic, crops, inside):.1f} dB")
    assert psnr(true, crops, inside) > psnr(bicubic, crops, inside) + 10


def test_srd_noise_belongs_to_the_frame_not_the_chunk():
    whole = frame_noise(7, 100, 10, 8)
    assert torch.equal(whole[:, :, 4:], frame_noise(7, 104, 6, 8))
    assert not torch.equal(frame_noise(7, 100, 1, 8), frame_noise(8, 100, 1, 8))


def test_qc_passes_the_source_and_flags_noise():
    from edidub_engine.face.alignment import FaceAlignment

    rng = np.random.default_rng(1)
    size = 64
    yy, xx = np.mgrid[:size, :size]
    face = np.stack([128 + 40 * np.sin(xx / 5.0), 100 + 30 * np.cos(yy / 7.0), 90 + 0 * xx], -1).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[size // 2 :, 8:-8] = True
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[:, 0], landmarks[:, 1] = size / 2, size * 0.75  # lips at the centre of the lower face
    matrix = FaceAlignment(frame_index=0, valid=True, matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]])).matrix
    good, bad = ShotQC(), ShotQC()
    for _ in range(4):
        good.add_crop(face, face, mask, landmarks, matrix)
        good.add_texture(face, face, mask)
        noisy = np.clip(face + rng.normal(0, 40, face.shape), 0, 255).astype(np.uint8)
        bad.add_crop(noisy, face, mask, landmarks, matrix)
        bad.add_texture(noisy, face, mask)
    assert good.result()["verdict"] == "ok"
    result = bad.result()
    assert result["verdict"] == "review" and result["cheek_psnr_db"] < 24 and result["texture_ratio"] > 2.5
    assert any("noise" in r for r in result["reasons"])


def test_the_lsd_edits_moved_mouths_only_where_its_check_found_it_gains():
    from edidub_engine.render import lsd_verdict

    assert lsd_verdict({})["runs_lsd"] is None  # unchecked: it runs, as trained
    assert lsd_verdict({"check": {"mouths": {"moved_db": 32.0, "lsd_db": 33.0}}})["runs_lsd"] is True
    losing = lsd_verdict({"check": {"mouths": {"moved_db": 35.5, "lsd_db": 31.7}}})
    assert losing["runs_lsd"] is False and "--lsd on" in losing["reason"]
