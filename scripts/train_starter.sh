#!/usr/bin/env bash
# Reproduce the shipped starter bundle edidub_engine/starter_models/edidub-starter/ on a CPU.
#
#   prepare (108 GRID clips, CC BY 4.0) -> mel codebook fit (32 clusters) -> train lsd -> train srd -> bundle -> check
#
# Deterministic: fixed seeds, one torch thread per network (OMP/MKL too), CPU only. The two networks
# train independently: run `lsd` and `srd` at the same time on a 2-core machine (about 70 minutes each
# on a Xeon with AMX; the LSD's bf16 autocast is what makes it that fast). A run killed part-way is
# resumed from its last checkpoint by running the same stage again.
# Usage: scripts/train_starter.sh [STAGE...]   stages: prepare lsd srd bundle check (default: all, in order)
# Environment: SHARED (the shared folder, default ../shared), WORK (scratch folder, default
# /tmp/edidub-starter-work), PYTHON (default .venv/bin/python), OUT (bundle folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
WORK=${WORK:-/tmp/edidub-starter-work}
OUT=${OUT:-edidub_engine/starter_models/edidub-starter}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0
STAGES=${*:-prepare lsd srd bundle check}
GRID_LICENCE="GRID audiovisual sentence corpus (M. Cooke, J. Barker, S. Cunningham, X. Shao, 2006, J. Acoust. Soc. Am. 120(5)), CC BY 4.0 (doi:10.5281/zenodo.3625687); 108 clips of speakers s1, s2, s3, s23 and three further GRID speakers."
STARTER_NOTES="A small model for trying the whole dubbing path on a CPU with no downloads. Trained with this repository's trainer on one CPU thread per network (scripts/train_starter.sh): LSD at the paper's 64 px (lsd-tiny widened to four levels, base 24, 8-frame windows, 1500 steps at batch 4, bf16 autocast); SRD at 128 px from 32-64 px (srd-tiny, 5-frame windows, 600 steps at batch 4, trained below timestep 500 and sampled part-way from the noised bicubic upsample). Data: 5.4 minutes of GRID speakers filmed frontally in one studio. Not production quality: soft mouths, tied to GRID-like faces, voices and lighting, weak lip sync on other speakers, log-mel units (speaker-dependent) instead of HuBERT; see the check figures for what it measures on clips it never saw. To train a real one: edidub prepare a large corpus you may train on, edidub codebook fit a HuBERT codebook on single-speaker speech, then edidub train lsd --config lsd-paper and edidub train srd --config srd-paper on GPUs (torchrun for several; the paper: 500k steps, batch 28, about 5 days on one H200)."
CHECK_CLIPS=("$SHARED/footage/real3d_may_5s.mp4" "$SHARED/footage/retalking_face2.mp4" "$SHARED/footage/mead_W036_happy.mp4")

train() {  # train TASK: start, or resume a run that was stopped
  if [ -f "$WORK/run-$1/config.json" ]; then
    "$PYTHON" -m edidub_engine.training.commands train "$1" -o "$WORK/run-$1" --resume --device cpu -q
  else
    "$PYTHON" -m edidub_engine.training.commands train "$1" --data "$WORK/dataset" -o "$WORK/run-$1" --config "$1-starter" \
      --device cpu -q --data-licence "$GRID_LICENCE"
  fi
}

mkdir -p "$WORK/videos"
for stage in $STAGES; do
case $stage in
prepare)
  # Only the GRID corpus clips (CC BY 4.0): no other footage goes into a shipped model.
  for f in "$SHARED"/training/grid_*.mpg "$SHARED"/footage/grid_*.mpg; do ln -sf "$f" "$WORK/videos/$(basename "$f")"; done
  # The codebook CLI reads audio files; GRID speech sits in the .mpg, so fit through the API.
  [ -f "$WORK/codebook-mel32.safetensors" ] || "$PYTHON" - "$WORK" <<'PY'
import sys
from pathlib import Path
from edidub_engine.audio import fit_codebook, load_frontend
work = Path(sys.argv[1])
clips = sorted((work / "videos").glob("grid_*.mpg"))
cb = fit_codebook(load_frontend("mel"), clips, clusters=32, max_vectors=1_000_000, seed=0,
                  source=f"{len(clips)} GRID corpus clips (CC BY 4.0)")
cb.save(work / "codebook-mel32.safetensors")
print(f"codebook: {cb.clusters} clusters over {cb.fitted_on['seconds']:.1f} s of GRID speech")
PY
  "$PYTHON" -m edidub_engine prepare "$WORK/videos" -o "$WORK/dataset" --codebook "$WORK/codebook-mel32.safetensors" --workers 2 -q
  ;;
lsd|srd) train "$stage" ;;
bundle)
  "$PYTHON" -m edidub_engine.training.commands train bundle --lsd "$WORK/run-lsd" --srd "$WORK/run-srd" \
    --codebook "$WORK/codebook-mel32.safetensors" -o "$OUT" --name edidub-starter --version 2 --overwrite \
    --description "EdiDub starter: a 64 px LSD + 128 px SRD pair with a 32-cluster log-mel codebook, trained on a CPU on 108 GRID clips" \
    --notes "$STARTER_NOTES" --credits "$GRID_LICENCE" \
    --defaults '{"steps": 10, "inversion_steps": 10, "srd_steps": 10}'
  ;;
check)
  # Each stage against its trivial baseline on clips outside the training set; the figures go into the card.
  clips=(); for c in "${CHECK_CLIPS[@]}"; do clips+=(--clip "$c"); done
  OMP_NUM_THREADS=2 "$PYTHON" -m edidub_engine check "$OUT" "${clips[@]}" --frames 24 --write-card
  ;;
*) echo "unknown stage $stage (prepare lsd srd bundle check)" >&2; exit 2 ;;
esac
done
