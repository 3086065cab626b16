"""The shipped starter bundle: found with no configuration, complete, loadable, honest about itself,
and its card's figures are the ones its training runs logged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from edidub_engine.audio import Codebook
from edidub_engine.models import load_model
from edidub_engine.models.bundle import DEFAULT_BUNDLE, SHIPPED_DIR, read_bundle, resolve_bundle

REPO = Path(__file__).resolve().parents[2]
SHIPPED = SHIPPED_DIR / DEFAULT_BUNDLE


@pytest.fixture
def no_model_env(monkeypatch, tmp_path):
    monkeypatch.delenv("EDIDUB_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty-data-home"))


def test_starter_bundle_resolves_and_loads(no_model_env):
    path = resolve_bundle()
    assert path == SHIPPED
    info = read_bundle(path)
    assert info.name == "edidub-starter" and info.frontend == "mel"
    lsd, srd = load_model(info.lsd_dir), load_model(info.srd_dir)
    codebook = Codebook.load(info.codebook_path)
    assert codebook.frontend == "mel" and lsd.config.num_units == codebook.vocabulary_size
    assert lsd.config.sample_size == 32 and srd.config.sample_size == 128 and srd.config.num_units is None
    # both run on a window: [x_t, condition, mask] in, epsilon out
    x = torch.zeros(1, 7, 5, 32, 32)
    units = torch.full((1, 5, 2), codebook.null_unit)
    with torch.no_grad():
        assert lsd(x, torch.tensor([10]), units=units).sample.shape == (1, 3, 5, 32, 32)
        assert srd(torch.zeros(1, 7, 5, 128, 128), torch.tensor([10])).sample.shape == (1, 3, 5, 128, 128)
    # the SRD diffuses the residual over bicubic below timestep 500 and starts from its prior mean: its sampling settings say so
    srd_sampling = info.sampling("srd")
    assert (srd_sampling.strength, srd_sampling.target, srd_sampling.start_noise) == (0.4, "residual", 0.0)
    assert info.card["srd"]["training"]["config"]["max_timestep"] == 500 and info.card["srd"]["training"]["config"]["srd_target"] == "residual"
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total < 30 * 2**20, total


def test_starter_card_is_honest_and_recorded(no_model_env):
    card = read_bundle(SHIPPED).card
    assert "not production quality" in card["notes"].lower() and "edidub train" in card["notes"]
    assert card["codebook"]["clusters"] == 32
    for task in ("lsd", "srd"):
        part = card[task]
        assert part["task"] == task and part["model"]["weights"]["dtype"] == "fp16"
        assert all(name.startswith("grid_") for name in part["data"]["clips"])  # GRID only: CC BY 4.0
        assert len(part["data"]["clips"]) == {"lsd": 4, "srd": 108}[task]
        assert "CC BY 4.0" in part["data"]["licence"] and "GRID" in part["data"]["licence"]
        assert part["command"].startswith(f"edidub train {task} ") and f"--config {task}-starter" in part["command"]
        training = part["training"]
        assert training["steps"] == training["config"]["steps"] and training["final_loss"] < 0.5 * training["first_loss"]
        assert training["threads"] == 1 and training["device"] == "cpu"
        # the same figures as the model folder's own card (written by the trainer at the end of the run)
        own = json.loads((SHIPPED / task / "model_card.json").read_text())
        assert own["training"]["final_loss"] == training["final_loss"]
    assert (REPO / "scripts" / "train_starter.sh").is_file()


def test_srd_psnr_benchmark_runs(no_model_env, footage_path):
    spec = importlib.util.spec_from_file_location("srd_psnr", REPO / "benchmarks" / "srd_psnr.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.run(clip=footage_path("real3d_may_5s.mp4"), frames=5, steps=3)
    assert r["bundle"] == "edidub-starter" and r["frames"] == 5 and r["size"] == 128 and r["low_res"] == 64 and r["strength"] == 0.4
    assert 5.0 < r["psnr_bicubic_db"] < 60.0 and 0.0 < r["psnr_srd_db"] < 60.0
