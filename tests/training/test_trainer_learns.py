"""A short CPU training of a tiny SRD on shared GRID clips at least halves its masked loss (eq. 1),
measured on a fixed evaluation set (fixed windows, timesteps and noise) before and after."""

from __future__ import annotations

import torch

from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion
from edidub_engine.models import build_model, load_model
from edidub_engine.training.config import train_config
from edidub_engine.training.trainer import build_dataset, make_denoiser, train


def test_tiny_srd_halves_its_masked_loss(prepared, tmp_path):
    torch.set_num_threads(1)
    config = train_config(
        "srd-tiny", model_overrides={"base_channels": 8, "channel_mults": [1, 2], "time_embed_dim": 32},
        window_frames=3, batch_size=4, steps=80, warmup_steps=10, lr=2e-3, min_lr=2e-4, ema_decay=0.9,
        log_every=20, checkpoint_every=1000,
    )
    dataset = build_dataset(config, prepared.dataset)
    dataset.flip = False
    picks = list(range(0, len(dataset), max(1, len(dataset) // 8)))[:8]
    items = [dataset[i] for i in picks]
    x0 = torch.stack([it["video"] for it in items])
    mask = torch.stack([it["mask"] for it in items])
    cond = {"low_res": torch.stack([it["low_res"] for it in items])}
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, 1000, (len(items),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    process = MaskedDiffusion(config=DiffusionConfig(train_steps=config.train_timesteps, schedule=config.schedule))

    def eval_loss(model) -> float:
        with torch.no_grad():
            return float(process.loss(make_denoiser(model.eval(), "srd"), x0, mask, cond, timesteps=t, noise=noise, cond_drop_prob=0.0))

    before = eval_loss(build_model(config.model_config()))  # zero-initialised output: about E[eps^2] = 1
    result = train(prepared.dataset, tmp_path / "srd", config, progress=False)
    after = eval_loss(load_model(result.export_dir))
    print(f"tiny SRD masked loss {before:.3f} -> {after:.3f} in {result.step} steps, {result.wall_time_s:.0f} s")
    assert after <= 0.5 * before, (before, after)
