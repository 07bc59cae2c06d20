#!/usr/bin/env bash
# test_python.sh - the Python binding (python/) against the staged install: a venv at
# BUILD/venv-py with pytest from PyPI, `pip install ./python`, pytest python/tests with
# $EDGELOAD_PREFIX at BUILD/stage (scripts/test_install.sh makes it).
# Usage: scripts/test_python.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
[[ -e "$build/stage/include/edgeload.h" ]] || { echo "test_python: run scripts/test_install.sh $build first" >&2; exit 1; }
venv=$build/venv-py
if [[ ! -x "$venv/bin/pytest" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pytest
fi
# From a copy: setuptools writes build/ and *.egg-info next to the sources.
rm -rf "$build/python-src" && cp -r python "$build/python-src"
"$venv/bin/pip" install -q --force-reinstall --no-deps "$build/python-src"
cd "$build" # import the installed package, not the source folder
EDGELOAD_PREFIX=$build/stage "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$OLDPWD/python/tests"
