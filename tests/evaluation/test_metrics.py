"""The paper's metrics against answers computed by hand (section 4.1, appendix A)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edidub_engine.errors import ModelMissingError
from edidub_engine.evaluation import metrics as M
from edidub_engine.evaluation.networks import SyncExpert, SyncNet, load_face_embedder, load_sync_expert


def test_softmax_weighted_mean_matches_a_direct_computation():
    scores = [0.1, 0.5, 0.2]
    # by hand: weights e^s / (e^0.1 + e^0.5 + e^0.2), then the weighted sum of the scores
    e = [math.exp(0.1), math.exp(0.5), math.exp(0.2)]
    direct = sum(w * s for w, s in zip(e, scores)) / sum(e)
    assert M.softmax_weighted_mean(scores) == pytest.approx(direct, abs=1e-12)
    assert direct == pytest.approx(1.179159 / 3.975291, abs=1e-6)  # = 0.29662
    # bad frames weigh more than their share: above the plain mean
    assert M.softmax_weighted_mean(scores) > np.mean(scores)
    assert M.softmax_weighted_mean([0.3] * 5) == pytest.approx(0.3)


def test_id_p_and_id_tc_on_hand_made_embeddings():
    e1, e2 = np.eye(4)[0], np.eye(4)[1]
    original = np.stack([e1, e1, e1])
    assert M.id_preservation(original, original).value == 0.0
    dubbed = np.stack([e1, (e1 + e2) / math.sqrt(2), e2])
    idp = M.id_preservation(original, dubbed)
    per = [0.0, 1 - 1 / math.sqrt(2), 1.0]
    np.testing.assert_allclose(idp.per_frame, per, atol=1e-12)
    w = np.exp(per) / np.exp(per).sum()
    assert idp.value == pytest.approx(float((w * per).sum()))
    tc = M.id_temporal_consistency(dubbed)
    assert np.isnan(tc.per_frame[0])
    np.testing.assert_allclose(tc.per_frame[1:], [1 - 1 / math.sqrt(2)] * 2, atol=1e-12)
    assert tc.value == pytest.approx(1 - 1 / math.sqrt(2))
    # a frame without a face (NaN embedding) is left out, not counted as 0
    holed = dubbed.copy()
    holed[2] = np.nan
    assert M.id_preservation(original, holed).value == pytest.approx(M.softmax_weighted_mean(per[:2]))


def test_lse_on_constructed_embeddings_finds_the_shift_and_its_confidence():
    rng = np.random.default_rng(0)
    k, n = 4, 60
    base = rng.normal(size=(n + k, 16))
    video = base[:n]
    audio = np.concatenate([rng.normal(size=(k, 16)), base[: n]])  # the sound arrives k frames late
    score = M.lse(video, audio[:n])
    assert score.offset == k
    assert score.lse_d == pytest.approx(0.0, abs=1e-12)
    # confidence = median over the 31 offsets minus the minimum, computed directly
    direct = [np.mean([1 - (video[t] @ audio[t + o]) / np.linalg.norm(video[t]) / np.linalg.norm(audio[t + o])
                       for t in range(max(0, -o), min(n, n - o))]) for o in range(-15, 16)]
    assert score.lse_c == pytest.approx(np.median(direct) - min(direct), abs=1e-9)
    assert score.lse_c > 0.5  # random directions sit near distance 1


def test_lse_c_of_a_sync_network_peaks_at_the_shift_of_the_audio():
    """A tiny SyncNet with random convolutional towers whose two final projections are solved (least squares) so
    that, in sync, the lip window t and the audio window t both embed to a code c_t we chose (random directions).
    Delaying the audio by k frames must then move the best offset to k, with LSE-D ~ 0 and a clear LSE-C."""
    torch.manual_seed(0)
    net = SyncNet.tiny().eval()
    expert = SyncExpert(net)
    rng = np.random.default_rng(0)
    n, fps, k = 20, 25.0, 3  # 16 windows: fewer than the live hidden units, so the projection can be solved exactly
    frames = rng.integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    audio = rng.normal(scale=0.1, size=int(n / fps * 16000)).astype(np.float32)
    codes = rng.normal(size=(n - 4, net.embedding))
    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float()
    with torch.no_grad():
        lip_hidden = net.lip_features(torch.stack([x[:, t : t + 5] for t in range(n - 4)])).double().numpy()
        aud_hidden = net.audio_features(expert.mfcc_windows(audio, n, fps)).double().numpy()
    for layer, hidden in ((net.netfclip[-1], lip_hidden), (net.netfcaud[-1], aud_hidden)):
        design = np.concatenate([hidden, np.ones((len(hidden), 1))], axis=1)  # weight and bias together
        solution, *_ = np.linalg.lstsq(design, codes, rcond=None)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(solution[:-1].T))
            layer.bias.copy_(torch.from_numpy(solution[-1]))

    video_emb = expert.embed_video(frames)
    in_sync = M.lse(video_emb, expert.embed_audio(audio, n, fps))
    assert in_sync.offset == 0 and in_sync.lse_d < 0.01

    late = np.concatenate([np.zeros(int(k * 16000 / fps), np.float32), audio])[: len(audio)]
    shifted = M.lse(video_emb, expert.embed_audio(late, n, fps))
    assert shifted.offset == k
    assert shifted.lse_d < 0.05  # not 0: the delayed track loses its last k frames of sound, so the last window differs
    assert shifted.lse_c > 0.5
    assert shifted.mean_distance[15 + k] == shifted.mean_distance.min()


def test_wilcoxon_one_sided_and_stars():
    ours = [0.10, 0.12, 0.09, 0.11, 0.10, 0.13, 0.08, 0.10, 0.12, 0.11]
    theirs = [o + d for o, d in zip(ours, [0.05, 0.02, 0.04, 0.03, 0.06, 0.01, 0.05, 0.02, 0.03, 0.04])]
    p = M.wilcoxon_one_sided(ours, theirs, lower_is_better=True)
    assert p == pytest.approx(1 / 2**10)  # all ten differences favour us: exact p = 2^-10
    assert M.significance_stars(p) == "***"  # 2^-10 = 0.00098 < 0.001
    assert M.wilcoxon_one_sided(ours, theirs, lower_is_better=False) > 0.99
    assert [M.significance_stars(v) for v in (0.2, 0.04, 0.004, 0.0004)] == ["ns", "*", "**", "***"]
    mean, se = M.mean_and_standard_error([1.0, 2.0, 3.0, float("nan")])
    assert (mean, se) == (2.0, pytest.approx(1 / math.sqrt(3)))


def test_masked_psnr_and_ssim():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    b = a.copy()
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    b[mask] = np.clip(a[mask].astype(int) + 10, 0, 255)
    assert M.psnr(a, b, ~mask) == float("inf")
    exact = ((a[mask].astype(float) - b[mask]) ** 2).mean()
    assert M.psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / exact))
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim(a, b, mask) < 1.0


def test_missing_weights_name_the_file(tmp_path):
    missing = tmp_path / "20180402-114759-vggface2.pt"
    with pytest.raises(ModelMissingError, match="20180402-114759-vggface2.pt"):
        load_face_embedder(missing)
    with pytest.raises(ModelMissingError, match="syncnet_v2.model"):
        load_sync_expert(tmp_path / "syncnet_v2.model")


def test_published_layouts_load(random_weights):
    id_weights, sync_weights = random_weights
    # facenet-pytorch state dicts carry a classifier ('logits.*'); it is ignored
    state = torch.load(id_weights, weights_only=True)
    state["logits.weight"], state["logits.bias"] = torch.zeros(3, 512), torch.zeros(3)
    torch.save(state, id_weights.with_name("with_logits.pt"))
    embedder = load_face_embedder(id_weights.with_name("with_logits.pt"))
    assert embedder.embed(np.zeros((1, 160, 160, 3), np.uint8)).shape == (1, 512)
    assert load_sync_expert(sync_weights).net.embedding == 64
