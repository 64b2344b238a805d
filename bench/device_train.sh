#!/usr/bin/env bash
# What a GPU lease is for (issue 13): two reference trainings side by side on the one GPU, in a single call of the
# device tool, sized for its limits (15 minutes of device time in all, machine start included; 10 a command;
# 8 files back). Each job renders its own fresh parcels of the training style family on 7 CPU processes for
# RENDER_S seconds (its count from a rate probe: the machine's cores are not this VM's), then
# trains for BUDGET wall-clock seconds (a one-cycle schedule that follows time: screening.train
# TrainConfig.budget_s), bfloat16 autocast, batches made in a background thread; then calibrates, certifies
# and scores itself on TEST baseline parcels:
#   scratch   the default network from scratch (the question the CPU chain could not answer: docs/MODEL.md)
#   finetune  the bundled model fine-tuned on the same budget (what the CPU chain did, ten times the images)
#
# Before the call, once per checkout (the GPU image has torch but not pydantic; var/ is git-ignored):
#   bench/device_wheels.sh                         # -> var/wheels/*.whl for Python 3.12
# The call (device tool `run`, carry ["var/wheels"], timeout_s 590):
#   bash bench/device_train.sh
# Back under $OUT: scratch/ and finetune/ (model.pt + model.sha256 each) and each job's log and held-out JSON.
# Then here: score both with bench.eval_synthetic (docs/MODEL.md "Evaluation") before anything is bundled.
#
# A dry run on the CPU (two minutes): OUT=/tmp/dt N=300 RENDER_S=20 BUDGET=20 TEST=100 WORKERS=1 AMP= PYTHON=.venv/bin/python \
#   bash bench/device_train.sh
set -uo pipefail
: "${OUT:?set OUT: the folder whose files come back (the device tool sets it)}"
PYTHON=${PYTHON:-python3}
RENDER_S=${RENDER_S:-150} # seconds of rendering each job: as many parcels as the machine makes in that time
N=${N:-40000}            # ...at most (65% train, 15% validation, 20% calibration; 250 KB each in memory)
BUDGET=${BUDGET:-260}    # training seconds each job
TEST=${TEST:-1000}       # held-out baseline parcels each job scores itself on (seed 777)
WORKERS=${WORKERS:-7}    # rendering processes each job
PARENT=${PARENT:-sample_data/models/v3-soup-tone/model.pt}
AMP=${AMP---amp}          # bfloat16 autocast; AMP= for a CPU dry run (bfloat16 convolutions crawl on most CPUs)
cd "$(dirname "$0")/.."

if [ -d var/wheels ] && ! "$PYTHON" -c "import pydantic_settings" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    var/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU") \
  | tee "$OUT/scratch.log" "$OUT/finetune.log" >/dev/null
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$OUT/scratch.log" 2>&1

runs=/tmp/device_runs
common=(--out "$runs" --n-train "$N" --render-budget-s "$RENDER_S" --budget-s "$BUDGET" --batch 64 --lr 3e-3 $AMP --workers "$WORKERS"
        --style train --tone-p 0.5 --test "$TEST")
XSCREEN_HOME=/tmp/xh-scratch "$PYTHON" -m screening.reference "${common[@]}" --name v4-scratch --seed 6001 \
  >>"$OUT/scratch.log" 2>&1 &
scratch=$!
XSCREEN_HOME=/tmp/xh-finetune "$PYTHON" -m screening.reference "${common[@]}" --name v4-finetune --seed 6002 \
  --from "$PARENT" >>"$OUT/finetune.log" 2>&1 &
finetune=$!
wait $scratch; rc_scratch=$?
wait $finetune; rc_finetune=$?

for job in scratch finetune; do
  mkdir -p "$OUT/$job"
  cp "$runs/v4-$job/model.pt" "$runs/v4-$job/model.sha256" "$OUT/$job/" 2>/dev/null || echo "$job: no model"
  cp "$runs/v4-$job.json" "$OUT/$job.json" 2>/dev/null || true
done
echo "scratch exit $rc_scratch, finetune exit $rc_finetune"
tail -n 4 "$OUT/scratch.log" "$OUT/finetune.log"
[ "$rc_scratch" = 0 ] && [ "$rc_finetune" = 0 ]
