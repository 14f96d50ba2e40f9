#!/usr/bin/env python3
"""Qwen2.5-0.5B-shaped GGUF files (random weights) for issue 8's runtime benchmark.

Issue 8 measures speed on the default model and on a model of Qwen2.5-0.5B's shape; random
weights are enough for speed. This builds that model as llama.cpp's users get it:

  1. transformers builds a seeded random Qwen2 of the shape (export_shaped_reference.make_model:
     hidden 896, 24 layers, 14 / 2 heads, ffn 4864, vocabulary 151,936, tied), with the
     default model's tokenizer (from `vigil export merged`);
  2. `vigil export gguf --type f16` converts the directory;
  3. llama.cpp's own quantiser (`llama_model_quantize`) makes the Q4_K_M and Q8_0 files.
     Q4_K_M at this shape is mostly Q5_0 (896 is not a multiple of 256, so llama.cpp falls
     back from Q4_K), Q4_K / Q6_K for the 4864-wide ffn_down, Q6_K / Q8_0 for the tied head.

Usage (after tools/setup-reference.sh and `cargo build --release -p vigil-cli`):
  tools/.venv/bin/python tools/make_shaped_model.py --vigil target/release/vigil --out DIR
Writes DIR/qwen2.5-0.5b-shaped.{q4_k_m,q8_0}.gguf; then pass them to bench_runtime.py.
"""
import argparse
import subprocess
import tempfile
from pathlib import Path

from export_reference import FTYPE, llama_quantize
from export_shaped_reference import make_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", required=True, help="the built vigil binary")
    ap.add_argument("--out", required=True, help="directory for the GGUF files")
    ap.add_argument("--types", nargs="+", default=["q4_k_m", "q8_0"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-shaped-") as tmp:
        tmp = Path(tmp)
        smol = tmp / "smollm2-hf"
        subprocess.run([args.vigil, "export", "merged", "-o", str(smol)], check=True)
        hf = tmp / "qwen2-0.5b-shaped"
        make_model(hf, smol)
        f16 = tmp / "shaped.f16.gguf"
        subprocess.run([args.vigil, "export", "gguf", "-m", str(hf), "--type", "f16", "-o", str(f16)],
                       check=True)
        for ty in args.types:
            dst = out / f"qwen2.5-0.5b-shaped.{ty}.gguf"
            secs, _, _ = llama_quantize(f16, dst, FTYPE[ty], args.threads)
            print(f"{dst} ({dst.stat().st_size / 2**20:.1f} MiB, {secs:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
