#!/usr/bin/env bash
# Create (or refresh) the reference Python environment at tools/.venv.
#
# Installs llama-cpp-python (which builds llama.cpp from source, ~7 min on 2 cores),
# jinja2 and numpy, pinned in tools/requirements-reference.txt. Safe to rerun: an
# existing venv is reused and pip skips packages that are already at the pinned version.
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
# CMAKE_BUILD_PARALLEL_LEVEL keeps the llama.cpp build from oversubscribing small machines.
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$venv/bin/python" -m pip install -r "$here/requirements-reference.txt"

"$venv/bin/python" -c 'import llama_cpp, jinja2, numpy; print("llama-cpp-python", llama_cpp.__version__, "ready in", "'"$venv"'")'
