#!/usr/bin/env bash
# Create (or refresh) the reference Python environment at tools/.venv.
#
# Installs llama-cpp-python (which builds llama.cpp from source, ~7 min on 2 cores),
# jinja2, numpy, and the PyTorch stack (torch, transformers, peft, safetensors,
# accelerate, gguf, bitsandbytes), pinned in tools/requirements-reference.txt. Safe to
# rerun: an existing venv is reused and pip skips packages already at the pinned version.
#
# torch: when download.pytorch.org answers, the CPU-only wheel of the pinned version is
# installed first (~200 MB); otherwise pip takes PyPI's build, which pulls the CUDA
# runtime wheels (~3 GB download, ~90 s here) and also runs on CPU. Set
# TORCH_INDEX_URL=none to skip the CPU index, or to another index URL to use that one.
#
# Usage: tools/setup-reference.sh        (from the repository root or anywhere)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if ! command -v cmake >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "cmake not found: installing it with apt-get" >&2
        apt-get update -qq && apt-get install -y -qq cmake
    else
        echo "error: cmake is required to build llama-cpp-python; install it first" >&2
        exit 1
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install -q --upgrade pip

torch_pin="$(grep -E '^torch==' "$here/requirements-reference.txt" | head -n1)"
torch_index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
if [ "$torch_index" != "none" ] && ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    if "$venv/bin/python" - "$torch_index" >/dev/null 2>&1 <<'PY'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10).read(1)
PY
    then
        echo "installing $torch_pin from $torch_index (CPU-only build)" >&2
        "$venv/bin/python" -m pip install --index-url "$torch_index" "$torch_pin"
    else
        echo "$torch_index not reachable: torch comes from PyPI (CUDA build, ~3 GB)" >&2
    fi
fi
# CMAKE_BUILD_PARALLEL_LEVEL keeps the llama.cpp build from oversubscribing small machines.
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$venv/bin/python" -m pip install -r "$here/requirements-reference.txt"

"$venv/bin/python" -c 'import llama_cpp, jinja2, numpy; print("llama-cpp-python", llama_cpp.__version__)'
"$venv/bin/python" -c 'import torch, transformers, peft, safetensors, gguf, bitsandbytes; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "bitsandbytes", bitsandbytes.__version__)' 2>/dev/null
echo "reference environment ready in $venv"
