#!/usr/bin/env python3
"""Reference run for vigil-train's optimizer: PyTorch AdamW + clip_grad_norm_ + the
Hugging Face warmup schedules, on a small fixed problem.

Writes fixtures/optim/adamw_cosine_clip.json and fixtures/optim/schedules.json, which
crates/vigil-train/tests/optim_fixture.rs replays.

The problem: a two-layer softmax classifier, logits = W2 · tanh(W1 · x + b1), mean
cross-entropy over 8 fixed inputs, plus PULL · ||W1 − anchor||² with the anchor near W1's start (so the
gradient norm starts above the clipping limit and ends below it). Everything is float32.

Usage: tools/.venv/bin/python tools/make_optim_fixture.py
"""

import json
import math
import pathlib

import torch

try:  # the schedules as transformers implements them, when it is installed
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    SCHEDULE_SOURCE = "transformers"
except ImportError:  # pragma: no cover - written from transformers' documented formulas
    from torch.optim.lr_scheduler import LambdaLR

    SCHEDULE_SOURCE = "formula (transformers not installed)"

    def _warm(step, warmup):
        return float(step) / float(max(1, warmup))

    def get_constant_schedule_with_warmup(opt, num_warmup_steps):
        return LambdaLR(
            opt,
            lambda s: _warm(s, num_warmup_steps) if s < num_warmup_steps else 1.0,
        )

    def get_linear_schedule_with_warmup(opt, num_warmup_steps, num_training_steps):
        def f(s):
            if s < num_warmup_steps:
                return _warm(s, num_warmup_steps)
            return max(
                0.0,
                float(num_training_steps - s)
                / float(max(1, num_training_steps - num_warmup_steps)),
            )

        return LambdaLR(opt, f)

    def get_cosine_schedule_with_warmup(opt, num_warmup_steps, num_training_steps):
        def f(s):
            if s < num_warmup_steps:
                return _warm(s, num_warmup_steps)
            p = float(s - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))

        return LambdaLR(opt, f)


ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "optim"

STEPS = 20
WARMUP = 3
LR = 0.1
WEIGHT_DECAY = 0.01
MAX_NORM = 1.0
PULL = 1.0


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def problem():
    g = torch.Generator().manual_seed(1234)
    params = {
        "w1": (torch.randn(4, 3, generator=g) * 1.5),
        "b1": (torch.randn(4, generator=g) * 0.5),
        "w2": (torch.randn(5, 4, generator=g) * 1.5),
    }
    x = torch.randn(8, 3, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    anchor = params["w1"] + 0.6 * torch.randn(4, 3, generator=g)
    return params, x, y, anchor


def loss_fn(p, x, y, anchor):
    h = torch.tanh(x @ p["w1"].T + p["b1"])
    logits = h @ p["w2"].T
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="mean")
    pull = PULL * ((p["w1"] - anchor) ** 2).sum()
    return ce + pull


def adamw_run():
    init, x, y, anchor = problem()
    names = ["w1", "b1", "w2"]
    p = {n: init[n].clone().requires_grad_(True) for n in names}
    opt = torch.optim.AdamW(
        [p[n] for n in names], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WEIGHT_DECAY
    )
    sched = get_cosine_schedule_with_warmup(opt, WARMUP, STEPS)
    steps = []
    for step in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(p, x, y, anchor)
        loss.backward()
        grads = {n: flat(p[n].grad) for n in names}
        lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_([p[n] for n in names], MAX_NORM)
        opt.step()
        sched.step()
        steps.append(
            {
                "step": step,
                "lr": lr,
                "loss": float(loss.detach()),
                "grad_norm": float(norm),
                "clipped": bool(float(norm) > MAX_NORM),
                "grads": grads,
                "params_after": {n: flat(p[n]) for n in names},
            }
        )
    clipped = sum(s["clipped"] for s in steps)
    print("grad norms:", [round(s["grad_norm"], 3) for s in steps])
    assert 0 < clipped < STEPS, f"clipping should trigger on some steps only, got {clipped}"
    return {
        "about": "PyTorch AdamW + clip_grad_norm_ + cosine warmup schedule; see tools/make_optim_fixture.py",
        "torch": torch.__version__,
        "schedule_source": SCHEDULE_SOURCE,
        "config": {
            "lr": LR,
            "betas": [0.9, 0.999],
            "eps": 1e-8,
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_NORM,
            "warmup_steps": WARMUP,
            "total_steps": STEPS,
            "schedule": "cosine",
            "pull": PULL,
        },
        "names": names,
        "shapes": {n: list(init[n].shape) for n in names},
        "init": {n: flat(init[n]) for n in names},
        "x": flat(x),
        "y": [int(v) for v in y.tolist()],
        "anchor": flat(anchor),
        "steps": steps,
    }


def schedules():
    out = []
    for kind, make in [
        ("constant", lambda o, w, n: get_constant_schedule_with_warmup(o, w)),
        ("linear", get_linear_schedule_with_warmup),
        ("cosine", get_cosine_schedule_with_warmup),
    ]:
        for warmup, total in [(0, 10), (3, 20), (10, 100), (1, 7)]:
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
            s = make(opt, warmup, total)
            lrs = []
            for _ in range(total + 2):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                s.step()
            out.append({"kind": kind, "warmup": warmup, "total": total, "factors": lrs})
    return {"schedule_source": SCHEDULE_SOURCE, "schedules": out}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    (OUT / "adamw_cosine_clip.json").write_text(json.dumps(adamw_run(), indent=1) + "\n")
    (OUT / "schedules.json").write_text(json.dumps(schedules(), indent=1) + "\n")
    print(f"wrote {OUT}/adamw_cosine_clip.json and schedules.json ({SCHEDULE_SOURCE})")


if __name__ == "__main__":
    main()
