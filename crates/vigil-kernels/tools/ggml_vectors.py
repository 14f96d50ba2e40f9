#!/usr/bin/env python3
"""Test vectors from ggml itself (the libggml that llama-cpp-python built on this machine).

Writes tests/data/ggml_vectors.bin: deterministic random inputs, ggml's quantised
activations (quantize_row_q8_0 / q8_1 / q8_K as ggml-cpu runs them here), ggml's
dequantised weights and ggml's vec_dot results. The Rust test `ggml_vectors.rs` checks
vigil-kernels against them: activation bytes and dequantised weights must be identical,
dot products equal within float summation-order error.

    tools/.venv/bin/python crates/vigil-kernels/tools/ggml_vectors.py   # from the repo root

File format: records of (u16 name length, name utf-8, u32 payload length, payload).
"""
import ctypes
import struct
import sys
from pathlib import Path

import numpy as np

import llama_cpp

LIB = Path(llama_cpp.__file__).parent / "lib"
cpu = ctypes.CDLL(str(LIB / "libggml-cpu.so"))
base = ctypes.CDLL(str(LIB / "libggml-base.so"))
cpu.ggml_cpu_init()  # fills the f16 → f32 table the dot products use

ACTS = {"q8_0": (32, 34), "q8_1": (32, 36), "q8_K": (256, 292)}
# weight type: (block elems, block bytes, activation type, offsets of f16 scales)
WEIGHTS = {
    "q4_0": (32, 18, "q8_0", [0]),
    "q4_1": (32, 20, "q8_1", [0, 2]),
    "q5_0": (32, 22, "q8_0", [0]),
    "q8_0": (32, 34, "q8_0", [0]),
    "q4_K": (256, 144, "q8_K", [0, 2]),
    "q6_K": (256, 210, "q8_K", [208]),
}
COLS = 512
ACT_ROWS = 4
W_ROWS = 6

records = []


def put(name, data: bytes):
    records.append((name, data))


def quantize(act, x):
    be, bb = ACTS[act]
    out = ctypes.create_string_buffer(len(x) // be * bb)
    fn = getattr(cpu, f"quantize_row_{act}")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    xs = np.ascontiguousarray(x, dtype=np.float32)
    fn(xs.ctypes.data, out, len(xs))
    return out.raw


rng = np.random.default_rng(20261122)
acts = {}
for act in ACTS:
    x = (rng.standard_normal(ACT_ROWS * COLS) * 2.0).astype(np.float32)
    x[:32] = 0.0  # an all-zero block
    x[32] = 127.0  # a block of exact ties
    x[33:64] = np.arange(31, dtype=np.float32) - 15.5
    x[64:96] *= 1e4
    q = b"".join(quantize(act, x[r * COLS:(r + 1) * COLS]) for r in range(ACT_ROWS))
    put(f"act.{act}.x", x.tobytes())
    put(f"act.{act}.q", q)
    acts[act] = q

for wt, (be, bb, act, scale_offs) in WEIGHTS.items():
    nb = COLS // be
    raw = bytearray(rng.integers(0, 256, W_ROWS * nb * bb, dtype=np.uint8).tobytes())
    for blk in range(W_ROWS * nb):
        for off in scale_offs:
            v = np.float16(rng.uniform(-0.05, 0.05))
            raw[blk * bb + off: blk * bb + off + 2] = v.tobytes()
    raw = bytes(raw)
    deq = np.zeros(W_ROWS * COLS, dtype=np.float32)
    fn = getattr(base, f"dequantize_row_{wt}")
    fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int64]
    fn(raw, deq.ctypes.data, len(deq))
    dot = getattr(cpu, f"ggml_vec_dot_{wt}_{act}")
    dot.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                    ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    abytes = ACTS[act][1] * (COLS // ACTS[act][0])
    res = []
    for o in range(W_ROWS):
        for r in range(ACT_ROWS):
            s = ctypes.c_float(0)
            dot(COLS, ctypes.byref(s), 0, raw[o * nb * bb:(o + 1) * nb * bb], 0,
                acts[act][r * abytes:(r + 1) * abytes], 0, 1)
            res.append(s.value)
    put(f"w.{wt}.bytes", raw)
    put(f"w.{wt}.deq", deq.tobytes())
    put(f"w.{wt}.dot", np.array(res, dtype=np.float32).tobytes())

out = Path(__file__).resolve().parent.parent / "tests" / "data" / "ggml_vectors.bin"
with open(out, "wb") as f:
    for name, data in records:
        nb = name.encode()
        f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<I", len(data)) + data)
print(f"wrote {out} ({out.stat().st_size} bytes, llama-cpp-python {llama_cpp.__version__})", file=sys.stderr)
