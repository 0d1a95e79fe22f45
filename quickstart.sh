#!/usr/bin/env bash
# The main job end to end at quick scale, on the embedded synthetic data:
# environment, synthetic data set, TFRecord conversion, data summary, contact sheet,
# then every training phase (2D estimator, generator, adversarial fine-tuning, feature
# cache, Base and Final regressors), each measured on the synthetic test split, then the
# evaluation (Table 1, ablations, report and figures).
# Reuses what an earlier run made; FBI3D_WORK=... changes the working folder (default .).
set -euo pipefail
source "$(dirname "$0")/tools/env.sh"
cd "$ROOT"
WORK="${FBI3D_WORK:-$ROOT}"
DATA="$WORK/data"
RUN="$WORK/runs/quickstart"
mkdir -p "$DATA" "$RUN"
start=$(date +%s)

echo "== 1/5 synthetic data set in the ECCV 2018 challenge layout: $DATA/synthetic"
python tools/make_synthetic.py --out_dir="$DATA/synthetic" --seed=0 \
  --num_train=2000 --num_val=300 --num_test=300 --image_size=384

echo "== 2/5 conversion to TFRecords (crop 128): $DATA/synthetic_records"
python tools/convert_challenge.py --input_dir="$DATA/synthetic" \
  --output_dir="$DATA/synthetic_records" --crop_size=128

echo "== 3/5 contact sheet of the training split"
python tools/contact_sheet.py --data_dir="$DATA/synthetic_records" --split=train \
  --num=24 --out="$RUN/contact_sheet.png"

MODEL="$RUN/model"
echo "== 4/5 every training phase (flags/quickstart.cfg): $MODEL"
python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=all \
  --data_dir="$DATA/synthetic_records" --model_dir="$MODEL"

echo "== 5/5 evaluation on the synthetic test split, with the ablations of Final"
python -m fbi3d.evaluate --model_dir="$MODEL" --split=test --ablations

echo "== quickstart finished in $(( $(date +%s) - start )) s; outputs in $RUN"
