#!/usr/bin/env bash
# Set up, then lint and run the whole test suite (CPU only; a GPU is never needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ ! -f .ci/install-browser.sh ] || bash .ci/install-browser.sh
. .venv/bin/activate
ruff check src tests benchmarks
ruff format --check src tests benchmarks
# The web page's scripts: ESLint as package-lock.json pins it (needs Node.js and npm).
npm ci --no-audit --no-fund --loglevel=error
npx eslint src/painterly/web/static
mypy
python -m pytest "$@"
