#!/usr/bin/env bash
# The Python packages bench/device_train.sh needs that the GPU machine's image lacks (it has torch, numpy,
# scipy, scikit-learn, pandas, Pillow, tqdm, rich; not pydantic), as wheels for its Python 3.12, at the versions
# this checkout's .venv runs, into var/wheels (git-ignored; the device call carries it). Needs the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pkgs=()
for name in pydantic pydantic_core pydantic-settings annotated-types typing-inspection typing_extensions python-dotenv; do
  pkgs+=("$name==$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))")")
done
mkdir -p var/wheels
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d var/wheels "${pkgs[@]}"
ls -l var/wheels
