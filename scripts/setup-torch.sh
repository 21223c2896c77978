#!/usr/bin/env bash
# Creates the Python venv with torch==2.9.0 that the `tch` back-end (LibTorch)
# builds and runs against, and that the reference-value scripts use.
# PyPI only has the CUDA build of torch 2.9.0: about 4 GB with its nvidia-*
# packages, all of which are needed even on a CPU-only machine.
#
#   UNIDL_TORCH_VENV  where to put it (default: ~/.cache/unidl/torch-venv)
set -euo pipefail
venv="${UNIDL_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/unidl/torch-venv}"
if "$venv/bin/python" -c 'import torch, numpy, sys; sys.exit(torch.__version__.split("+")[0] != "2.9.0")' 2>/dev/null; then
    echo "torch venv ready: $venv"
    exit 0
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.9.0 numpy
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "installed in", "'"$venv"'")'
