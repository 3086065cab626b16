"""The trainer's contract: N steps straight == N/2 + resume + N/2 (bit for bit on a CPU), the run
folder's files, atomic checkpoints, the exported model folder and its card, the config round trip."""

from __future__ import annotations

import json

import pytest
import torch

from edidub_engine.errors import InvalidArgumentError, OutputExistsError
from edidub_engine.models import load_model
from edidub_engine.training.config import TrainConfig, load_train_config, parse_override, train_config
from edidub_engine.training.trainer import WindowBatchSampler, latest_checkpoint, lr_at, train

TINY_LSD = dict(
    model_overrides={"base_channels": 8, "channel_mults": [1, 2], "attention_resolutions": [16], "norm_num_groups": 4,
                     "time_embed_dim": 32, "unit_embed_dim": 8},
    window_frames=4, size=32, batch_size=2, steps=4, warmup_steps=2, checkpoint_every=2, log_every=1,
    export_dtype="fp16", stride=4,
)


def _weights(state):
    return {k: v.clone() for k, v in state.items()}


def test_resume_gives_identical_weights(prepared, tmp_path):
    torch.set_num_threads(1)
    config = train_config("lsd-tiny", **TINY_LSD)
    straight = train(prepared.dataset, tmp_path / "straight", config, progress=False, command=["edidub", "train", "lsd"])
    half = train(prepared.dataset, tmp_path / "split", config, until_step=2, progress=False)
    assert half.step == 2 and half.export_dir is None and latest_checkpoint(tmp_path / "split").name == "step-00000002"
    with open(tmp_path / "split" / "metrics.jsonl", "a") as f:  # as if killed after logging step 3, before its checkpoint
        f.write('{"step": 3, "loss": 9.0}\n')
    resumed = train(None, tmp_path / "split", resume=True, progress=False)
    assert (tmp_path / "split" / "metrics.jsonl").read_text().count('"step": 3,') == 1
    assert straight.step == resumed.step == 4
    a = torch.load(straight.checkpoint / "state.pt", weights_only=False)
    b = torch.load(resumed.checkpoint / "state.pt", weights_only=False)
    for key in ("model",):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), name
    for name in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][name], b["ema"]["shadow"][name]), name
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for i in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][i]["exp_avg_sq"], b["optimizer"]["state"][i]["exp_avg_sq"])
    assert a["scheduler"] == b["scheduler"]
    assert straight.final_loss == resumed.final_loss

    # the export: diffusers layout, fp16 EMA weights, a card with the run's figures
    model = load_model(straight.export_dir)
    assert model.config.sample_size == 32 and model.config.num_units == 9  # 8 clusters + the null unit
    from safetensors.torch import load_file

    stored = load_file(straight.export_dir / "diffusion_pytorch_model.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16}  # shipped small; load_model gives float32
    assert next(model.parameters()).dtype == torch.float32
    card = json.loads((straight.export_dir / "model_card.json").read_text())
    assert card["task"] == "lsd" and card["frontend"] == "mel" and card["training"]["steps"] == 4
    assert card["data"]["clips"] == sorted(prepared.clips) and card["command"] == "edidub train lsd"
    assert card["training"]["final_loss"] == pytest.approx(straight.final_loss)
    lines = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    assert "step 4 loss" in (tmp_path / "straight" / "train.log").read_text()
    # checkpoints: the newest `keep_checkpoints`, no temp folders left
    names = sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir())
    assert names == ["latest", "step-00000002", "step-00000004"]
    assert load_train_config(tmp_path / "split") == config

    with pytest.raises(OutputExistsError):
        train(prepared.dataset, tmp_path / "straight", config, progress=False)
    with pytest.raises(InvalidArgumentError):
        train(None, tmp_path / "split", config.__class__(**{**config.__dict__, "lr": 5e-4}), resume=True, progress=False)


def test_config_presets_and_schedule(tmp_path):
    paper = train_config("lsd-paper")
    assert (paper.lr, paper.min_lr, paper.warmup_steps, paper.weight_decay, paper.batch_size, paper.steps) == (1e-4, 1e-5, 10_000, 0.01, 28, 500_000)
    srd = train_config("srd-paper")
    assert srd.window_frames == 5 and srd.size == 224 and srd.low_res_range == (32, 64) and srd.cond_drop_prob == 0.0
    assert lr_at(paper, 0) == pytest.approx(1e-8) and lr_at(paper, 9_999) == pytest.approx(1e-4)
    assert lr_at(paper, 500_000) == pytest.approx(1e-5)
    assert lr_at(paper, 255_000) == pytest.approx(0.5 * (1e-4 + 1e-5))
    config = train_config("srd-tiny", **dict([parse_override("steps=7"), parse_override("model.channel_mults=[1, 2]")]))
    assert config.steps == 7 and config.model_config().channel_mults == (1, 2) and config.model_config().sample_size == 64
    config.save(tmp_path / "c.json")
    assert train_config(tmp_path / "c.json") == config
    with pytest.raises(InvalidArgumentError):
        train_config("srd-tiny", learning_rate=1.0)
    with pytest.raises(InvalidArgumentError):
        TrainConfig(task="lsd", model_preset="lsd-tiny", ema_decay=1.0)


def test_batch_sampler_shards_the_same_stream():
    whole = WindowBatchSampler(10, batch_size=4, seed=3, steps=6)
    parts = [WindowBatchSampler(10, batch_size=4, seed=3, steps=6, rank=r, world_size=2) for r in range(2)]
    for step in range(6):
        assert whole.batch(step) == parts[0].batch(step) + parts[1].batch(step)
    stream = [i for s in range(5) for _, i in whole.batch(s)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))  # every window once per epoch
    assert list(WindowBatchSampler(10, batch_size=4, seed=3, steps=6, start_step=4)) == [whole.batch(4), whole.batch(5)]


def test_datasets_resample_stored_crops(prepared):
    from edidub_engine.training.dataset import LipSyncWindowDataset, SuperResWindowDataset

    lsd = LipSyncWindowDataset(prepared.dataset, size=32, source_size=64, window_frames=4, stride=20, flip=False)
    full = LipSyncWindowDataset(prepared.dataset, size=64, window_frames=4, stride=20, flip=False)
    item, big = lsd[1], full[1]
    assert item["video"].shape == (3, 4, 32, 32) and item["reference"].shape == (3, 4, 32, 32)
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0} and item["mask"].shape == (1, 4, 32, 32)
    assert torch.allclose(item["video"], torch.nn.functional.avg_pool3d(big["video"], (1, 2, 2)), atol=1e-6)
    srd = SuperResWindowDataset(prepared.dataset, size=64, source_size=224, low_res_range=(16, 32), window_frames=5, stride=20)
    item = srd[0]
    assert item["video"].shape == item["low_res"].shape == (3, 5, 64, 64) and 16 <= int(item["low_res_size"]) <= 32
    with pytest.raises(InvalidArgumentError):
        LipSyncWindowDataset(prepared.dataset, size=128, source_size=64)
