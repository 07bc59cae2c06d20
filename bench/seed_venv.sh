#!/bin/sh
# seed_venv.sh - the venv bench/seed_gpt2.py runs in (developer-run, never CI): torch (the CPU
# wheel from PyPI's default index), transformers, safetensors, psutil, numpy.
#   bench/seed_venv.sh [DIR]     (default .venv-seed in the repository root)
# seed_gpt2.py itself needs only torch, transformers and safetensors: it reads each child's
# peak RSS with os.wait4 (ru_maxrss), and uses psutil only when present (for the machine line).
# Any venv with those works, e.g. the fixtures venv (scripts/fixtures_venv.sh).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv-seed}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch transformers safetensors psutil numpy
"$venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "ready: $venv/bin/python bench/seed_gpt2.py"
