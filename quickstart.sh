#!/usr/bin/env bash
# The main job end to end at quick scale, on the embedded synthetic data:
# environment, synthetic data set, TFRecord conversion, data summary, contact sheet,
# then every training phase (2D estimator, generator, adversarial fine-tuning, feature
# cache, Base and Final regressors), each measured on the synthetic test split, the
# evaluation (Table 1, report and figures) with the export of one SavedModel alongside, a
# prediction on a test picture, and a table of how long each stage took. The ablations
# of Final and the rows under other seeds are trained by separate commands, python -m
# fbi3d.train --phase=ablations and --phase=seeds --seeds=N (README, Evaluation).
# Reuses what an earlier run made; FBI3D_WORK=... changes the working folder (default .).
set -euo pipefail
start=$(date +%s)
source "$(dirname "$0")/tools/env.sh"
cd "$ROOT"
WORK="${FBI3D_WORK:-$ROOT}"
DATA="$WORK/data"
RUN="$WORK/runs/quickstart"
mkdir -p "$DATA" "$RUN"
STAGES=()
stage_start=$start
# Records how long the stage that just ended took, for the table at the end.
stage_done() {
  local now; now=$(date +%s)
  STAGES+=("$1|$(( now - stage_start ))")
  stage_start=$now
}
stage_done "environment"

echo "== 1/7 synthetic data set in the ECCV 2018 challenge layout: $DATA/synthetic"
python tools/make_synthetic.py --out_dir="$DATA/synthetic" --seed=0 \
  --num_train=2000 --num_val=300 --num_test=300 --image_size=384
stage_done "synthetic data"

echo "== 2/7 conversion to TFRecords (crop 128): $DATA/synthetic_records"
python tools/convert_challenge.py --input_dir="$DATA/synthetic" \
  --output_dir="$DATA/synthetic_records" --crop_size=128
stage_done "conversion"

echo "== 3/7 contact sheet of the training split"
python tools/contact_sheet.py --data_dir="$DATA/synthetic_records" --split=train \
  --num=24 --out="$RUN/contact_sheet.png"
stage_done "contact sheet"

MODEL="$RUN/model"
echo "== 4/7 every training phase (flags/quickstart.cfg): $MODEL"
# The CPU flags of fbi3d/training/runtime.py cpu_has_bfloat16 (which --mixed_precision=auto
# reads); with a GPU the image phases run there and this does not apply.
if ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo 2>/dev/null && \
   ! nvidia-smi -L >/dev/null 2>&1; then
  echo "   this CPU has no native bfloat16: the image phases train in float32, about half as"
  echo "   fast (on 2 AVX2 cores the whole quickstart took 680 s from a fresh clone, and 872 s"
  echo "   in one with a stall of the machine; README)"
fi
python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=all \
  --data_dir="$DATA/synthetic_records" --model_dir="$MODEL"
stage_done "training (every phase)"

EXPORT="$RUN/export"
# The export and the evaluation both only read the finished run, and each spends most of
# its time in one Python thread (tracing, saving, start-up), so on two cores they run side
# by side; the export's output is shown when it ends.
export_pid=""
if [ -d "$EXPORT/1" ]; then
  echo "== 5/7 export for serving: $EXPORT/1 exists; kept"
else
  echo "== 5/7 export for serving: $EXPORT/1 (alongside the evaluation; log $RUN/export.log)"
  python -m fbi3d.export --model_dir="$MODEL" --export_dir="$EXPORT" --version=1 \
    > "$RUN/export.log" 2>&1 &
  export_pid=$!
  # A failing evaluation stops the script (set -e): the export it started stops with it.
  trap 'kill "$export_pid" 2>/dev/null || true' EXIT
fi

echo "== 6/7 evaluation on the synthetic test split"
python -m fbi3d.evaluate --model_dir="$MODEL" --split=test
stage_done "evaluation (export alongside)"

if [ -n "$export_pid" ]; then
  if ! wait "$export_pid"; then
    trap - EXIT
    cat "$RUN/export.log" >&2
    echo "quickstart: the export failed (its log is above and in $RUN/export.log)." >&2
    exit 1
  fi
  trap - EXIT
  grep '^exported' "$RUN/export.log" || true
fi
stage_done "export (the rest)"

echo "== 7/7 prediction on a synthetic test picture: $RUN/predict"
python -m fbi3d.predict "$DATA/synthetic/Test/IMG/00001.jpg" \
  --keypoints2d="$DATA/synthetic/Test/META.csv" --export_dir="$EXPORT" --out="$RUN/predict"
stage_done "prediction"

echo "== quickstart finished in $(( $(date +%s) - start )) s"
printf '   %-30s %8s\n' stage seconds
for entry in "${STAGES[@]}"; do
  printf '   %-30s %8s\n' "${entry%%|*}" "${entry##*|}"
done
python - "$MODEL" <<'PY'
import json, os, sys
for phase in ('pose2d', 'generator', 'adversarial', 'features', 'base', 'refine'):
  path = os.path.join(sys.argv[1], phase, 'results.json')
  if os.path.exists(path):
    with open(path) as f:
      r = json.load(f)
    print(f'     {phase:<28} {r.get("train_seconds", r.get("seconds", 0)):8.0f}')
PY
echo "   report: $MODEL/eval/test/report.md"
echo "   prediction figure: $RUN/predict/00001.png"
