#!/usr/bin/env bash
# Create .venv and install painterly into it (idempotent). Used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
# Install torch first and on its own: a plain `torch` requirement on a machine without
# torch pulls a several-GB CUDA build. 2.13.0 is the CPU build on our machines; if you
# already have a torch you like in this venv (say, a CUDA one), it is kept.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,web]"
