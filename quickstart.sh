#!/usr/bin/env bash
# The main job end to end at quick scale, on the embedded synthetic data:
# environment, synthetic data set, TFRecord conversion, data summary, contact sheet,
# then every training phase (2D estimator, generator, adversarial fine-tuning, feature
# cache, Base and Final regressors), each measured on the synthetic test split, export of
# one SavedModel, a prediction on a test picture, then the evaluation (Table 1,
# ablations, report and figures).
# Reuses what an earlier run made; FBI3D_WORK=... changes the working folder (default .).
set -euo pipefail
source "$(dirname "$0")/tools/env.sh"
cd "$ROOT"
WORK="${FBI3D_WORK:-$ROOT}"
DATA="$WORK/data"
RUN="$WORK/runs/quickstart"
mkdir -p "$DATA" "$RUN"
start=$(date +%s)

echo "== 1/7 synthetic data set in the ECCV 2018 challenge layout: $DATA/synthetic"
python tools/make_synthetic.py --out_dir="$DATA/synthetic" --seed=0 \
  --num_train=2000 --num_val=300 --num_test=300 --image_size=384

echo "== 2/7 conversion to TFRecords (crop 128): $DATA/synthetic_records"
python tools/convert_challenge.py --input_dir="$DATA/synthetic" \
  --output_dir="$DATA/synthetic_records" --crop_size=128

echo "== 3/7 contact sheet of the training split"
python tools/contact_sheet.py --data_dir="$DATA/synthetic_records" --split=train \
  --num=24 --out="$RUN/contact_sheet.png"

MODEL="$RUN/model"
echo "== 4/7 every training phase (flags/quickstart.cfg): $MODEL"
python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=all \
  --data_dir="$DATA/synthetic_records" --model_dir="$MODEL"

EXPORT="$RUN/export"
echo "== 5/7 export for serving: $EXPORT/1"
if [ -d "$EXPORT/1" ]; then
  echo "$EXPORT/1 exists; kept"
else
  python -m fbi3d.export --model_dir="$MODEL" --export_dir="$EXPORT" --version=1
fi

echo "== 6/7 prediction on a synthetic test picture: $RUN/predict"
python -m fbi3d.predict "$DATA/synthetic/Test/IMG/00001.jpg" \
  --keypoints2d="$DATA/synthetic/Test/META.csv" --export_dir="$EXPORT" --out="$RUN/predict"

echo "== 7/7 evaluation on the synthetic test split, with the ablations of Final"
python -m fbi3d.evaluate --model_dir="$MODEL" --split=test --ablations

echo "== quickstart finished in $(( $(date +%s) - start )) s"
echo "   report: $MODEL/eval/test/report.md"
echo "   prediction figure: $RUN/predict/00001.png"
