#!/usr/bin/env bash
# Compare the fusion strategies on the simulated world with a CPU-sized budget: every cooperative
# method starts from a trained no-fusion run (tools/train.py --pretrained_model: the pillar encoder,
# backbone, shrink header and head carry over; fusion modules start fresh), is fine-tuned on a
# small separate training world for FT_EPOCHS epochs, and is scored on the test split in the
# perfect setting and in V2X-ViT's noisy one (pose error 0.2 m / 0.2 deg, 100 ms delay).
#
#   bash tools/run_fusion_comparison.sh runs/none [runs/compare]
#
# Environment: METHODS (default "early late fcooper attfuse v2xvit mswin_deform"); FT_WORLD (the
# fine-tuning world, default data/synthetic_finetune; made on first use from FT_SCENES (8) scenes
# x 20 frames, seed 8); FT_EPOCHS (1); FT_LR (2e-4: a tenth of the training LR, cosine down to
# FT_LR / 10, so a short fine-tune does not undo the warm start); MAX_FRAMES (test frames scored,
# default all 240); THREADS (2); SCORE (score threshold for every method, default 0.3: the
# synthetic configs' value, chosen on the validation split). The table is printed by
# tools/compare_runs.py and written to OUT/table.md. A finished method is skipped on a rerun
# (delete its folder to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
NONE=${1:?usage: run_fusion_comparison.sh NONE_RUN_DIR [OUT_DIR]}
OUT=${2:-runs/compare}
METHODS=${METHODS:-"early late fcooper attfuse v2xvit mswin_deform"}
FT_SCENES=${FT_SCENES:-8}
FT_EPOCHS=${FT_EPOCHS:-1}
THREADS=${THREADS:-2}
SCORE=${SCORE:-0.3}
FT_LR=${FT_LR:-2e-4}
PY=${PY:-.venv/bin/python}
FT_WORLD=${FT_WORLD:-data/synthetic_finetune}
LIMIT=()
[[ -n "${MAX_FRAMES:-}" ]] && LIMIT=(--max_frames "$MAX_FRAMES")

[[ -f "$NONE/best.pth" ]] || { echo "no $NONE/best.pth: train the no-fusion model first" >&2; exit 2; }
mkdir -p "$OUT"
if [[ ! -d "$FT_WORLD/train" ]]; then
  "$PY" tools/make_synthetic_data.py --out "$FT_WORLD" --scenes "$FT_SCENES" --frames 20 --seed 8 \
    --splits train --workers 2
fi

score() {  # run folder -> eval_score<S>.yaml (perfect), eval_pose0.2m-0.2deg_delay100ms_score<S>.yaml
  local run=$1 noisy=(--pose_noise 0.2 0.2 --delay_ms 100)
  local common=(--model_dir "$run" --split test --no_progress --num_threads "$THREADS" --score_threshold "$SCORE")
  [[ -f "$run/eval_score$SCORE.yaml" ]] || "$PY" tools/inference.py "${common[@]}" "${LIMIT[@]}"
  [[ -f "$run/eval_pose0.2m-0.2deg_delay100ms_score$SCORE.yaml" ]] || \
    "$PY" tools/inference.py "${common[@]}" "${LIMIT[@]}" "${noisy[@]}"
}

RUNS=("$OUT/none")   # the no-fusion run itself, scored here under the same settings as the others
mkdir -p "$OUT/none"
cp "$NONE/config.yaml" "$OUT/none/"
[[ -f "$OUT/none/best.pth" ]] || cp "$NONE/best.pth" "$OUT/none/"
score "$OUT/none"
for method in $METHODS; do
  run="$OUT/$method"
  RUNS+=("$run")
  if [[ ! -f "$run/latest.pth" ]]; then
    rm -rf "$run"
    start=$(date +%s)
    "$PY" tools/train.py --hypes_yaml "hypes_yaml/synthetic/point_pillar_$method.yaml" --model_dir "$run" \
      --pretrained_model "$NONE/best.pth" --num_workers 1 --num_threads "$THREADS" --no_progress \
      --set "root_dir=$FT_WORLD/train" --set "train_params.epoches=$FT_EPOCHS" \
      --set "lr_scheduler.epoches=$FT_EPOCHS" --set train_params.eval_freq=0 --set "optimizer.lr=$FT_LR" \
      --set "lr_scheduler.warmup_lr=$FT_LR" --set "lr_scheduler.lr_min=$("$PY" -c "print($FT_LR / 10)")"
    echo "$method: fine-tuned in $(( $(date +%s) - start )) s" | tee -a "$OUT/timing.txt"
  fi
  score "$run"
done
"$PY" tools/compare_runs.py "${RUNS[@]}" --markdown | tee "$OUT/table.md"
