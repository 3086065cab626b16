#!/usr/bin/env bash
# Reproduce the shipped starter bundle edidub_engine/starter_models/edidub-starter/ on a CPU.
#
#   prepare: the LSD's dataset (the 4 GRID clips of ../shared/footage, a 32-cluster log-mel codebook fitted on them)
#            and the SRD's (108 GRID clips of ../shared/training, CC BY 4.0)
#   lsd (32 px, 1500 steps) | srd (128 px residual over bicubic, 800 steps, below timestep 500) -> bundle -> check
#   lsd64: the 64 px LSD that was tried and not shipped (see the model card's notes)
#
# Deterministic: fixed seeds, one torch thread per network (OMP/MKL too), CPU only. The networks train
# independently: run `lsd` and `srd` at the same time on a 2-core machine. A run killed part-way is
# resumed from its last checkpoint by running the same stage again.
# Usage: scripts/train_starter.sh [STAGE...]   stages: prepare lsd srd bundle check lsd64 (default: prepare lsd srd bundle check)
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
GRID="GRID audiovisual sentence corpus (M. Cooke, J. Barker, S. Cunningham, X. Shao, 2006, J. Acoust. Soc. Am. 120(5)), CC BY 4.0 (doi:10.5281/zenodo.3625687)"
LSD_LICENCE="$GRID; the four clips grid_bbaf2n, grid_brbk7n, grid_lbax4n, grid_lbbc2a (as redistributed in rizkiarm/LipNet's evaluation samples). No other footage."
SRD_LICENCE="$GRID; 108 clips of speakers s1, s2, s3, s23 and three further GRID speakers (../shared/training and the four above). No other footage."
STARTER_NOTES="A small model for trying the whole dubbing path on a CPU with no downloads. Trained with this repository's trainer on one CPU thread per network (scripts/train_starter.sh): LSD lsd-tiny at base 24, 32 px, 8-frame windows, 1500 steps at batch 4 on 12 s of four GRID speakers; SRD srd-tiny at 128 px from 32-64 px, 5-frame windows, diffusing the residual over the bicubic upsample (srd_target residual, scale 4, as SRDiff) below timestep 500, 800 steps at batch 4 on 5.4 minutes of GRID speakers (of a 1200-step plan). It samples from the residual's prior mean, zero, without noise (start_noise 0, strength 0.4, 5 steps): its minimum-error estimate, which beats bicubic on clips it never saw (see check), where noisy starts only tied; with the source's own low-res crop only its change goes onto the source crop. The image-target SRD of version 2 lost to bicubic even after 1750 steps. A 64 px LSD (lsd-starter-64, 1500 steps, 58 minutes) lost to this 32 px one end to end (22.8 against 26.2 dB) and is not shipped. Not production quality: soft mouths, tied to GRID-like faces, voices and lighting, weak lip sync on other speakers, log-mel units (speaker-dependent) instead of HuBERT. To train a real one: edidub prepare a large corpus you may train on, edidub codebook fit a HuBERT codebook on single-speaker speech, then edidub train lsd --config lsd-paper and edidub train srd --config srd-paper on GPUs (torchrun for several; the paper: 500k steps, batch 28, about 5 days on one H200)."
CHECK_CLIPS=("$SHARED/footage/real3d_may_5s.mp4" "$SHARED/footage/retalking_face2.mp4" "$SHARED/footage/mead_W036_happy.mp4")

train() {  # train TASK PRESET DATASET LICENCE [RUN]: start, or resume a run that was stopped
  local run="$WORK/${5:-run-$1}"
  if [ -f "$run/config.json" ]; then
    "$PYTHON" -m edidub_engine.training.commands train "$1" -o "$run" --resume --device cpu -q
  else
    "$PYTHON" -m edidub_engine.training.commands train "$1" --data "$WORK/$3" -o "$run" --config "$2" --device cpu -q --data-licence "$4"
  fi
}

mkdir -p "$WORK"
for stage in $STAGES; do
case $stage in
prepare)
  # Only the GRID corpus clips (CC BY 4.0): no other footage goes into a shipped model.
  mkdir -p "$WORK/videos-lsd" "$WORK/videos-srd"
  for f in "$SHARED"/footage/grid_*.mpg; do ln -sf "$f" "$WORK/videos-lsd/$(basename "$f")"; ln -sf "$f" "$WORK/videos-srd/$(basename "$f")"; done
  for f in "$SHARED"/training/grid_*.mpg; do ln -sf "$f" "$WORK/videos-srd/$(basename "$f")"; done
  for part in lsd srd; do
    # The codebook CLI reads audio files; GRID speech sits in the .mpg, so fit through the API.
    [ -f "$WORK/codebook-$part.safetensors" ] || "$PYTHON" - "$WORK" "$part" <<'PY'
import sys
from pathlib import Path
from edidub_engine.audio import fit_codebook, load_frontend
work, part = Path(sys.argv[1]), sys.argv[2]
clips = sorted((work / f"videos-{part}").glob("grid_*.mpg"))
cb = fit_codebook(load_frontend("mel"), clips, clusters=32, max_vectors=1_000_000, seed=0,
                  source="GRID corpus clips " + (", ".join(p.name for p in clips) if len(clips) < 10 else f"({len(clips)})"))
cb.save(work / f"codebook-{part}.safetensors")
print(f"codebook: {cb.clusters} clusters over {cb.fitted_on['seconds']:.1f} s of GRID speech")
PY
    "$PYTHON" -m edidub_engine prepare "$WORK/videos-$part" -o "$WORK/dataset-$part" --codebook "$WORK/codebook-$part.safetensors" --workers 2 -q
  done
  ;;
lsd) train lsd lsd-starter dataset-lsd "$LSD_LICENCE" ;;
srd)
  # The residual SRD: srd-starter-residual plans 1200 steps; version 3 ships its step 800 (--until 800, then --steps 800 exports it).
  if [ -f "$WORK/run-srd/config.json" ]; then
    "$PYTHON" -m edidub_engine.training.commands train srd -o "$WORK/run-srd" --resume --until 800 --device cpu -q
  else
    "$PYTHON" -m edidub_engine.training.commands train srd --data "$WORK/dataset-srd" -o "$WORK/run-srd" --config srd-starter-residual \
      --until 800 --device cpu -q --data-licence "$SRD_LICENCE"
  fi
  "$PYTHON" -m edidub_engine.training.commands train srd -o "$WORK/run-srd" --resume --steps 800 --device cpu -q
  ;;
lsd64) train lsd lsd-starter-64 dataset-srd "$SRD_LICENCE" run-lsd64 ;;
bundle)
  "$PYTHON" -m edidub_engine.training.commands train bundle --lsd "$WORK/run-lsd" --srd "$WORK/run-srd" \
    --codebook "$WORK/codebook-lsd.safetensors" -o "$OUT" --name edidub-starter --version 3 --overwrite \
    --description "EdiDub starter: a 32 px LSD + 128 px SRD pair with a 32-cluster log-mel codebook, trained on a CPU on GRID clips" \
    --notes "$STARTER_NOTES" --credits "$GRID (the LSD: four clips; the SRD: 108)" \
    --defaults '{"steps": 10, "inversion_steps": 10, "srd_steps": 5, "srd_strength": 0.4, "srd_start_noise": 0.0}'
  ;;
check)
  # Each stage against its trivial baseline on clips outside the training set; the figures go into the card.
  clips=(); for c in "${CHECK_CLIPS[@]}"; do clips+=(--clip "$c"); done
  OMP_NUM_THREADS=2 "$PYTHON" -m edidub_engine check "$OUT" "${clips[@]}" --frames 24 --write-card
  ;;
*) echo "unknown stage $stage (prepare lsd srd bundle check)" >&2; exit 2 ;;
esac
done
