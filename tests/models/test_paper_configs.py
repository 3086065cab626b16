"""The paper's LSD and SRD networks (appendix B.1, table 4) build, have the size we measured, and run on CPU.

Parameter counts are exact: the architecture is deterministic, so any change
to it must change these numbers on purpose. Our LSD count (118.8 M) is above
the ~92 M quoted in shared/README.md; the layout here is guided-diffusion's
``UNetModel`` (dims=3, use_scale_shift_norm) block for block with table 4's
numbers, and the bulk sits in the 8×8 level's true 3×3×3 convolutions
(512 channels: middle block 29.4 M, first decoder level 50 M), which a
different reading of "1 residual block per stage" or factorised convolutions
would shrink. The audio conditioning's share is checked against the paper's
claim that it is lightweight.
"""

from __future__ import annotations

import torch

from edidub_engine.models import build_model, count_flops, count_parameters

LSD_PAPER_PARAMETERS = 118_806_275
LSD_PAPER_AUDIO_PARAMETERS = 2_033_920  # unit table + depth-wise conv + one projection per residual block
SRD_PAPER_PARAMETERS = 52_466_947


def test_lsd_paper_size_and_cpu_forward():
    torch.manual_seed(0)
    model = build_model("lsd-paper").eval()
    assert count_parameters(model) == LSD_PAPER_PARAMETERS
    audio = count_parameters(model.unit_conditioner) + sum(
        count_parameters(m.cond_proj) for m in model.modules() if getattr(m, "cond_proj", None) is not None
    )
    assert audio == LSD_PAPER_AUDIO_PARAMETERS
    assert audio < 0.02 * LSD_PAPER_PARAMETERS  # "lightweight": no cross-attention

    sample = torch.randn(1, 7, 24, 64, 64)
    unit_ids = torch.randint(0, 201, (1, 24, 2))
    with torch.no_grad():
        eps = model(sample, torch.tensor([999]), unit_ids).sample
    assert eps.shape == (1, 3, 24, 64, 64)
    assert torch.isfinite(eps).all()


def test_lsd_paper_flops_per_window():
    # 24 frames at 64×64: 1.24 TFLOPs, about 51.5 GFLOPs a frame (attention matmuls included: 0.135 TFLOPs).
    flops = count_flops(build_model("lsd-paper"), (1, 7, 24, 64, 64))
    assert 1.20e12 < flops < 1.28e12


def test_srd_paper_size_and_small_forward():
    torch.manual_seed(0)
    model = build_model("srd-paper").eval()
    assert count_parameters(model) == SRD_PAPER_PARAMETERS
    assert model.unit_conditioner is None
    # Fully convolutional: any H, W that are multiples of 2**5 run; 64×64 with 2 frames keeps the test short.
    with torch.no_grad():
        out = model(torch.randn(1, 7, 2, 64, 64), 10)
    assert out.sample.shape == (1, 3, 2, 64, 64)
