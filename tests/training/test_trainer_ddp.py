"""Multi-process training: ``torchrun --nproc_per_node 2`` on the CPU (gloo) trains a tiny SRD for a
few steps, splits the global batch over the two ranks, and writes one checkpoint and one export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from edidub_engine.models import load_model


def test_torchrun_two_processes_on_cpu(prepared, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "edidub_engine.training.commands", "train", "srd", "--data", str(prepared.dataset), "-o", str(run),
        "--config", "srd-tiny", "--device", "cpu", "-q",
        "--set", "model.base_channels=8", "--set", "model.channel_mults=[1, 2]", "--set", "window_frames=3",
        "--set", "batch_size=4", "--set", "steps=3", "--set", "log_every=1", "--set", "checkpoint_every=100",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["latest", "step-00000003"]
    log = (run / "train.log").read_text()
    assert "device cpu x2" in log
    card = json.loads((run / "model" / "model_card.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["steps"] == 3
    assert load_model(run / "model").config.sample_size == 64
    assert done.stdout.count("trained 3 steps") == 1  # only rank 0 reports
