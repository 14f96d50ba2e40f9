"""Compare vigil's traced tensors (VIGIL_TRACE_DIR) with llama.cpp's (dump_ggml_tensors.py).

For each vigil tensor, takes llama.cpp's last tensor of the same name computed before the
next layer, brings both to (tokens, …) order, and prints how many elements are bit-equal
and the largest difference — the first line that is not all-equal is where the two
computations part.

    python tools/compare_traces.py /tmp/vdump /tmp/gdump [--layers 2]
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np


def load(d: str) -> list[tuple[str, np.ndarray]]:
    found = []
    for f in os.listdir(d):
        m = re.match(r"(\d+)-(.*)\.npy$", f)
        if m:
            found.append((int(m.group(1)), m.group(2), f))
    # Numeric order: the counter outgrows any fixed width over many decode steps.
    return [(name, np.load(os.path.join(d, f))) for _, name, f in sorted(found)]


def to_tokens_first(name: str, a: np.ndarray, ggml: bool, n_tokens: int,
                    n_keys: int = 0) -> np.ndarray:
    """Both sides as (tokens, rest) arrays. ggml's are (ne3, ne2, ne1, ne0) with the tokens
    outermost; vigil's are [batch, …] with heads before tokens for q/k/v."""
    base = name.split("-")[0]
    if ggml:
        if base == "kq_soft_max":  # (1, heads, tokens, n_kv)
            return a[0][:, :, :n_keys].transpose(1, 0, 2).reshape(n_tokens, -1)
        return a.reshape(n_tokens, -1)
    if base in ("Qcur", "Kcur", "Vcur", "kq_soft_max"):  # [1, heads, tokens, …]
        return a[0].swapaxes(0, 1).reshape(n_tokens, -1)
    return a.reshape(n_tokens, -1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("vigil")
    ap.add_argument("ggml")
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    ours = list({name: (name, arr) for name, arr in load(args.vigil)}.values())
    theirs: dict[str, np.ndarray] = {}
    for name, arr in load(args.ggml):
        theirs[name] = arr  # the last tensor of a name is the op's final result
    n_tokens = dict(ours)["embd"].shape[1]
    for name, arr in ours:
        m = re.search(r"-(\d+)$", name)
        if m and int(m.group(1)) >= args.layers:
            continue
        ref = theirs.get(name)
        if ref is None:
            print(f"{name:20s} (no llama.cpp tensor)")
            continue
        a = to_tokens_first(name, arr, False, n_tokens).astype(np.float32)
        b = to_tokens_first(name, ref, True, n_tokens, arr.shape[-1]).astype(np.float32)
        if a.shape != b.shape:
            print(f"{name:20s} shape {a.shape} vs {b.shape}")
            continue
        eq = (a.view(np.uint32) == b.view(np.uint32)).mean()
        diff = np.abs(a - b)
        rel = diff / np.maximum(np.abs(b), 1e-30)
        first = np.argwhere(a.view(np.uint32) != b.view(np.uint32))
        where = f" first≠ at token {first[0][0]} col {first[0][1]}" if len(first) else ""
        print(f"{name:20s} equal {eq * 100:7.3f} %  max|d| {diff.max():.3g}  "
              f"max rel {rel.max():.3g}{where}")


if __name__ == "__main__":
    main()
