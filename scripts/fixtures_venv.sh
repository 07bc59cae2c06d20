#!/usr/bin/env bash
# fixtures_venv.sh - creates the developer-only Python venv that scripts/make_fixtures.py
# needs (torch, transformers, tokenizers, safetensors, numpy; gguf and jinja2 for the GGUF,
# quantization and chat-template fixtures), idempotently: a no-op when
# the venv already imports everything. CI never runs this; the fixtures are committed.
#   scripts/fixtures_venv.sh            create/complete .venv-fixtures in the repo root
#   EL_FIXTURES_VENV=DIR scripts/fixtures_venv.sh    use another location
# Only PyPI is used. On x86-64 Linux PyPI's torch wheel pulls the CUDA runtime wheels
# (several GB); that is expected and harmless, the fixtures run on the CPU.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${EL_FIXTURES_VENV:-$root/.venv-fixtures}"
python="${PYTHON:-python3}"
pkgs=(torch transformers tokenizers safetensors numpy gguf jinja2)
check='import torch, transformers, tokenizers, safetensors, numpy, gguf, jinja2'

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "fixtures_venv: $venv is complete"
  "$venv/bin/python" -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "fixtures_venv: creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install "${pkgs[@]}"
"$venv/bin/python" -c "$check"
echo "fixtures_venv: ready: $venv"
