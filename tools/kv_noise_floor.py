#!/usr/bin/env python3
"""How far llama.cpp moves from itself under a tiny numerical change.

Runs the teacher-forced prompts of fixtures/llama.cpp/<name>/logits.json through llama.cpp
twice: with its defaults (f16 KV cache, flash attention allowed) and with an f32 KV cache
and no flash attention (how the fixtures are made). It prints, per prompt and overall,
the top-1 agreement and the largest logit difference. This is the noise floor against
which vigil's agreement with the fixtures should be read (see conformance.rs).

    tools/.venv/bin/python tools/kv_noise_floor.py smollm2-135m-instruct PATH/TO/model.gguf
"""
import json
import sys

import numpy as np
from llama_cpp import Llama


def logits(path, prompts, **kw):
    llm = Llama(model_path=path, logits_all=True, n_ctx=512, n_batch=512, n_threads=1,
                verbose=False, **kw)
    out = []
    for ids in prompts:
        llm.reset()
        llm.eval(ids)
        out.append(np.array(llm.scores[:len(ids)], dtype=np.float32))
    return out


def main():
    name, path = sys.argv[1], sys.argv[2]
    fx = json.load(open(f"fixtures/llama.cpp/{name}/logits.json"))
    prompts = [p["ids"] for p in fx["prompts"]]
    default = logits(path, prompts)
    exact = logits(path, prompts, type_k=0, type_v=0, flash_attn=False)
    same = total = 0
    worst = 0.0
    for a, b in zip(default, exact):
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += len(a)
        worst = max(worst, float(np.abs(a - b).max()))
    print(f"{name}: {total} positions, top-1 agreement default vs f32-KV "
          f"{100 * same / total:.2f}%, max |logit diff| {worst:.3f}")


if __name__ == "__main__":
    main()
