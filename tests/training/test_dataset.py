"""LSD and SRD window datasets over the prepared GRID clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.training import LipSyncWindowDataset, SuperResWindowDataset


def crops_as_video(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def low_res_of(video: torch.Tensor, side: int) -> torch.Tensor:
    """§3.2's conditioning: [3, T, 224, 224] reduced to side x side, then bicubic back up."""
    small = F.interpolate(video.transpose(0, 1), size=(side, side), mode="area")
    return F.interpolate(small, size=(224, 224), mode="bicubic", align_corners=False).clamp(-1, 1).transpose(0, 1)


def test_lipsync_windows_shapes_ranges_and_references(prepared):
    ds = LipSyncWindowDataset(prepared.dataset, flip=False)
    assert len(ds) == 2 * (75 - 25 + 1)  # every start of every 75-frame clip
    assert ds.null_unit == 8 and ds.vocabulary_size == 9
    index = len(ds) - 7
    name, start, end = ds.window(index)
    item = ds[index]
    assert item["video"].shape == (3, 25, 64, 64) and item["video"].dtype == torch.float32
    assert item["mask"].shape == (1, 25, 64, 64) and item["mask"].dtype == torch.float32
    assert item["reference"].shape == (3, 25, 64, 64)
    assert item["units"].shape == (25, 2) and item["units"].dtype == torch.int64
    assert -1.0 <= item["video"].min() < 0 < item["video"].max() <= 1.0
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert 0 <= int(item["units"].min()) and int(item["units"].max()) <= ds.null_unit
    # Exactly the shard's crops, and each frame's reference crop.
    shard = load_file(str(prepared.dataset / "shards" / f"{name}.safetensors"))
    assert torch.equal(item["video"], crops_as_video(shard["crops_64"][start:end]))
    assert torch.equal(item["reference"], crops_as_video(shard["crops_64"][shard["reference"][start:end]]))
    assert torch.equal(item["units"], torch.from_numpy(shard["units"][start:end]))
    assert not torch.equal(item["reference"], item["video"])


def test_lipsync_224_and_batches(prepared):
    ds = LipSyncWindowDataset(prepared.dataset, size=224, window_frames=3, stride=10)
    assert ds[0]["video"].shape == (3, 3, 224, 224)
    batch = next(iter(torch.utils.data.DataLoader(LipSyncWindowDataset(prepared.dataset), batch_size=2)))
    assert batch["video"].shape == (2, 3, 25, 64, 64) and batch["units"].shape == (2, 25, 2)
    with pytest.raises(InvalidArgumentError):
        LipSyncWindowDataset(prepared.dataset, size=128)


def test_short_exclusion_window_warns(prepared):
    with pytest.warns(UserWarning, match="exclusion window"):
        LipSyncWindowDataset(prepared.dataset, window_frames=30)


def test_augmentation_is_deterministic_per_seed_epoch_index_and_flips_together(prepared):
    plain = LipSyncWindowDataset(prepared.dataset, flip=False)
    aug = LipSyncWindowDataset(prepared.dataset, flip=True, seed=5)
    again = LipSyncWindowDataset(prepared.dataset, flip=True, seed=5)
    flipped = 0
    for index in range(0, len(plain), 9):
        a, b, p = aug[index], again[index], plain[index]
        for key in a:
            assert torch.equal(a[key], b[key])
        if torch.equal(a["video"], p["video"]):
            assert torch.equal(a["reference"], p["reference"]) and torch.equal(a["mask"], p["mask"])
        else:
            flipped += 1
            for key in ("video", "mask", "reference"):
                assert torch.equal(a[key], p[key].flip(-1))
        assert torch.equal(a["units"], p["units"])
    assert 0 < flipped < len(range(0, len(plain), 9))
    # Another epoch draws again (for some item), the same epoch again gives the same.
    aug.set_epoch(1)
    again.set_epoch(1)
    assert any(not torch.equal(aug[i]["video"], LipSyncWindowDataset(prepared.dataset, seed=5)[i]["video"]) for i in range(0, 40, 3))
    assert torch.equal(aug[3]["video"], again[3]["video"])


def test_superres_windows_low_res_and_predecessor_replacement(prepared):
    ds = SuperResWindowDataset(prepared.dataset, prev_frame_prob=0.0, flip=False, seed=1)
    assert len(ds) == 2 * (75 - 5 + 1)
    index = 20
    item = ds[index]
    assert item["video"].shape == (3, 5, 224, 224) and item["low_res"].shape == (3, 5, 224, 224)
    assert item["mask"].shape == (1, 5, 224, 224)
    assert -1.0 <= item["low_res"].min() and item["low_res"].max() <= 1.0
    side = int(item["low_res_size"])
    assert 32 <= side <= 64
    # low_res = bicubic-up(area-down(video)): blurrier than the video, but close to it.
    assert torch.allclose(item["low_res"], low_res_of(item["video"], side), atol=1e-5)
    assert (item["low_res"] - item["video"]).abs().mean() < 0.1
    sides = {int(ds[i]["low_res_size"]) for i in range(0, len(ds), 5)}
    assert len(sides) > 3 and min(sides) >= 32 and max(sides) <= 64
    # With p = 1 every conditioning frame shows its predecessor (the same draws otherwise).
    always = SuperResWindowDataset(prepared.dataset, prev_frame_prob=1.0, flip=False, seed=1)[index]
    assert int(always["low_res_size"]) == side and torch.equal(always["video"], item["video"])
    assert torch.equal(always["low_res"][:, 1:], item["low_res"][:, :-1])
    name, start, _ = ds.window(index)
    predecessor = crops_as_video(load_file(str(prepared.dataset / "shards" / f"{name}.safetensors"))["crops_224"][start - 1 : start])
    assert torch.allclose(always["low_res"][:, :1], low_res_of(predecessor, side), atol=1e-5)
    # The first window of a clip has no predecessor: its first frame stays its own.
    first = SuperResWindowDataset(prepared.dataset, prev_frame_prob=1.0, flip=False, seed=1)[0]
    plain_first = ds[0]
    if int(first["low_res_size"]) == int(plain_first["low_res_size"]):
        assert torch.equal(first["low_res"][:, 0], plain_first["low_res"][:, 0])


def test_superres_flip_moves_everything_together(prepared):
    plain = SuperResWindowDataset(prepared.dataset, flip=False, prev_frame_prob=0.0, seed=3)
    aug = SuperResWindowDataset(prepared.dataset, flip=True, prev_frame_prob=0.0, seed=3)
    for index in range(0, 40, 4):
        a, p = aug[index], plain[index]
        if not torch.equal(a["video"], p["video"]):
            assert torch.equal(a["video"], p["video"].flip(-1)) and torch.equal(a["mask"], p["mask"].flip(-1))
            # low_res side may differ (the flip draw comes first), so compare against a rebuild.
            side = int(a["low_res_size"])
            assert torch.allclose(a["low_res"], low_res_of(p["video"], side).flip(-1), atol=1e-5)
            return
    pytest.fail("no item was flipped in 10 draws")
