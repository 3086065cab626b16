"""Speed of speech units on this CPU, for both frontends.

Prints, per frontend, seconds of compute per second of audio (real-time
factor) and units made per second of compute (features + nearest-centre
assignment to 200 clusters), then the HuBERT-Large configuration (random
weights built from HubertConfig with the large sizes; speed does not depend on
the weights) per second of audio, and its feature step alone.

    .venv/bin/python benchmarks/speech_units.py [--audio PATH] [--seconds S] [--repeats N] [--threads N] [--json out.json]

Units come at 50 Hz, so a frontend keeps up with 25 fps video while its
real-time factor stays below 1 (about 2 ms of compute per frame per 0.1 RTF).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _common import best_of

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = ROOT.parent / "shared" / "footage" / "dub_en_jfk.flac"

# facebook/hubert-large-ll60k's architecture (its config.json), random weights.
HUBERT_LARGE = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    conv_bias=True,
)


def measure(name: str, frontend, codebook, audio: np.ndarray, repeats: int) -> dict:
    from edidub_engine.audio import FRAME_RATE_HZ, UnitEncoder

    encoder = UnitEncoder(frontend, codebook)
    encoder.encode(audio)  # warm-up at full length (lazy init, allocator sized for this input)
    seconds_audio = len(audio) / 16000
    features_s = best_of(repeats, lambda: frontend.features(audio))
    total_s = best_of(repeats, lambda: encoder.encode(audio))
    units = int(seconds_audio * FRAME_RATE_HZ)
    row = {
        "frontend": name,
        "audio_s": round(seconds_audio, 3),
        "features_s_per_audio_s": features_s / seconds_audio,
        "units_s_per_audio_s": total_s / seconds_audio,
        "units_per_compute_s": units / total_s,
        "feature_dim": frontend.feature_dim,
    }
    print(
        f"{name:>12}: {row['units_s_per_audio_s']:.4f} s per s of audio (features {row['features_s_per_audio_s']:.4f}), "
        f"{row['units_per_compute_s']:,.0f} units per s of compute, dim {frontend.feature_dim}"
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="speech file (default: shared JFK clip; noise if absent)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of audio to process (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-large", action="store_true", help="skip HuBERT-Large (about 1.3 GB of RAM)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import torch
    from transformers import HubertConfig, HubertModel

    from edidub_engine.audio import Codebook, HubertFrontend, MelFrontend

    if args.threads:
        torch.set_num_threads(args.threads)
    samples = int(args.seconds * 16000)
    if args.audio.is_file():
        from edidub_engine.media import load_audio

        audio = load_audio(args.audio, duration_s=args.seconds)
        source = args.audio.name
    else:
        audio = 0.1 * np.random.default_rng(0).standard_normal(samples).astype(np.float32)
        source = "white noise (speech file absent)"
    print(f"audio: {source}, {len(audio) / 16000:.1f} s; torch threads {torch.get_num_threads()}; 200 clusters")

    rng = np.random.default_rng(0)

    def codebook_for(frontend) -> Codebook:  # assignment cost does not depend on where the centres are
        centres = rng.standard_normal((200, frontend.feature_dim)).astype(np.float32)
        return Codebook(centres=centres, frontend=frontend.name, frontend_settings=frontend.settings(), seed=0)

    rows = []
    mel = MelFrontend()
    rows.append(measure("mel", mel, codebook_for(mel), audio, args.repeats))
    if not args.skip_large:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = HubertModel(HubertConfig(**HUBERT_LARGE))
        build_s = time.perf_counter() - t0
        params = sum(p.numel() for p in model.parameters())
        hubert = HubertFrontend(model, model_name="hubert-large (random weights)")
        print(f"HuBERT-Large config: {params / 1e6:.0f} M parameters (built in {build_s:.1f} s)")
        rows.append(measure("hubert-large", hubert, codebook_for(hubert), audio, args.repeats))
    if args.json:
        args.json.write_text(json.dumps({"audio": source, "threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
