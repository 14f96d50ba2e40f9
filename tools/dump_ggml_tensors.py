"""Dump every f32 intermediate tensor of one llama.cpp forward pass.

Runs the same context settings as `make_fixtures.py` (f32 KV cache, no flash attention, one
batch for the whole prompt, logits at every position) with llama.cpp's graph callback, and
writes each f32 tensor the graph computes to `OUT/NNNN-<name>.npy` (numpy, in ggml's own
axis order reversed: shape = ne[3], ne[2], ne[1], ne[0]). Used to find, op by op, where
vigil's arithmetic first leaves llama.cpp's: compare with vigil's `VIGIL_TRACE_DIR` dump.

    tools/.venv/bin/python tools/dump_ggml_tensors.py MODEL.gguf OUT --ids 1 2 3 ... [--prefill N]
"""

from __future__ import annotations

import argparse
import ctypes
import os

import numpy as np
import llama_cpp
from llama_cpp import Llama

from make_fixtures import EXACT_ATTENTION, N_CTX

GGML_MAX_DIMS = 4


class GgmlTensor(ctypes.Structure):
    """The head of `struct ggml_tensor` (ggml.h of llama.cpp as vendored by
    llama-cpp-python 0.3.36), up to the name."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
        ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--ids", type=int, nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prefill", type=int, default=None,
                    help="evaluate only the first N ids as one batch, then the rest one "
                         "token at a time (decode steps); the last step's tensors win")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    llm = Llama(model_path=args.model, logits_all=True, n_ctx=N_CTX, n_threads=args.threads,
                n_threads_batch=args.threads, n_batch=N_CTX, verbose=False, **EXACT_ATTENTION)
    counter = [0]

    def on_tensor(ptr: int, ask: bool, _user: int) -> bool:
        if ask:
            return True
        t = GgmlTensor.from_address(ptr)
        name = t.name.decode(errors="replace")
        if t.type != 0 or not t.data:  # f32 only
            return True
        ne = [t.ne[i] for i in range(GGML_MAX_DIMS)]
        nb = [t.nb[i] for i in range(GGML_MAX_DIMS)]
        span = sum((n - 1) * s for n, s in zip(ne, nb)) + 4
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * span).from_address(t.data))
        arr = np.lib.stride_tricks.as_strided(raw.view(np.float32), shape=ne[::-1],
                                              strides=nb[::-1])
        np.save(os.path.join(args.out, f"{counter[0]:04d}-{name}.npy"), np.array(arr))
        counter[0] += 1
        return True

    callback = llama_cpp.ggml_backend_sched_eval_callback(on_tensor)
    params = llm.context_params
    params.cb_eval = callback
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    n = len(args.ids)
    split = n if args.prefill is None else args.prefill
    steps = [(0, split)] + [(i, i + 1) for i in range(split, n)]
    batch = llama_cpp.llama_batch_init(n, 0, 1)
    for start, end in steps:
        for i, tok in enumerate(args.ids[start:end]):
            batch.token[i] = tok
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        batch.n_tokens = end - start
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")
    rows = steps[-1][1] - steps[-1][0]
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx), shape=(rows, llm.n_vocab()))
    np.save(os.path.join(args.out, "logits.npy"), logits.copy())
    print(f"{counter[0]} tensors written to {args.out}")


if __name__ == "__main__":
    main()
