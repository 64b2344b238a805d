#!/usr/bin/env bash
# Regenerates the committed sample data (see docs/DATA.md). Same seeds, same image bytes.
# Usage (from the repository root): bash sample_data/make_samples.sh
set -euo pipefail
X=${XSCREEN:-.venv/bin/xscreen}
cd "$(dirname "$0")/.."
rm -rf sample_data/baseline_png sample_data/baseline_tiff sample_data/baseline_npz sample_data/baseline_gray \
       sample_data/baseline_jpeg sample_data/stream
export XSCREEN_MODEL__CLASSES='["firearm","knife","ammunition","narcotics","currency","lithium_battery"]'
$X synth --out sample_data/baseline_png  --n 120 --seed 101 --format png  --size 224x224 --threat-rate 0.6
$X synth --out sample_data/baseline_tiff --n 20  --seed 102 --format tiff --size 160x160 --threat-rate 0.6
$X synth --out sample_data/baseline_npz  --n 6   --seed 103 --format npz  --size 160x160 --threat-rate 0.6
$X synth --out sample_data/baseline_gray --n 8   --seed 104 --format gray --size 224x224 --threat-rate 0.6
$X synth --out sample_data/baseline_jpeg --n 60  --seed 105 --format jpeg --size 224x224 --threat-rate 0.6
# a short live stream (two scanners, full-size images, sidecars); its ground truth goes next to it
$X simulate --to sample_data/stream --rate 20 --duration 1.0 --scanners 2 --seed 106 --threat-rate 0.3 --size 320x320 --start-at 2026-01-05T09:00:00Z \
   --truth sample_data/stream_truth.jsonl.tmp
mv sample_data/stream_truth.jsonl.tmp sample_data/stream/truth.jsonl
du -sh sample_data
