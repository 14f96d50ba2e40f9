#!/usr/bin/env python3
"""LoRA training speed of PyTorch + PEFT on CPU: the reference side of vigil's training race.

fp32 model, PEFT LoRA on --targets, AdamW (lr 2e-4) over the LoRA parameters only; each step
is forward + backward + optimizer step on a fresh random token batch of shape
[--batch, --seq] with labels = inputs (HF's causal-LM loss). --warmup-steps untimed steps
first, then --steps timed ones; tokens/s = batch·seq / median step time. A forward-only
pass (no_grad, eval mode) is timed the same way.

--model is one of
  PATH.gguf                   loaded with transformers' GGUF support (dequantised to f32)
  DIR                         a Hugging Face model directory (config.json + safetensors),
                              or a directory holding exactly one .gguf file
  qwen2.5-0.5b-shape          a random Qwen2 with Qwen2.5-0.5B's configuration
default: ~/.cache/vigil/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf

--qlora loads the frozen base in bitsandbytes NF4 (compute in f32) instead of f32. For a
GGUF or the random shape the f32 model is first written to a temporary directory (the peak
RSS then includes that step; look at peak_rss_train_mb).

Peak RSS: `peak_rss_mb` is the process's ru_maxrss (includes loading, which for a GGUF
holds the quantised and dequantised copies at once); `peak_rss_train_mb` is the high-water
mark after loading (freed heap returned with malloc_trim), reset through
/proc/self/clear_refs just before the first step. `rss_after_imports_mb` is what the
interpreter holds before any model: ~0.9 GB with PyPI's CUDA build of torch, mostly
shared libraries.

Threads: PyTorch's OpenMP threads spin while waiting. On a machine where other jobs hold
the cores, 2 threads then run several times slower than 1; OMP_WAIT_POLICY=PASSIVE
(recorded in the JSON) avoids most of that. Compare engines from the same run.

Usage:
  tools/.venv/bin/python tools/bench_train.py --threads 2 --seq 256 --batch 1 \\
      --rank 16 --alpha 32 --targets q_proj,k_proj,v_proj,o_proj --steps 6 --warmup-steps 1 --json
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings

DEFAULT_MODEL = (
    pathlib.Path.home()
    / ".cache/vigil/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
)
QWEN_05B = "qwen2.5-0.5b-shape"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def release_free_heap():
    """Hand memory freed during loading back to the OS (glibc keeps it otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def qwen05b_config():
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        hidden_act="silu",
    )


def load_model(spec, attn, qlora):
    """Returns (model, description of what was loaded)."""
    import torch
    from transformers import AutoModelForCausalLM

    kw = dict(dtype=torch.float32)
    if attn:
        kw["attn_implementation"] = attn
    if qlora:
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.float32,
            bnb_4bit_use_double_quant=False,
        )
    def via_tmp(build, desc):
        # transformers quantises with bitsandbytes only inside from_pretrained on a
        # safetensors checkpoint (it refuses quantization_config together with gguf_file):
        # build the f32 model, save it to a temporary directory, reload it in NF4.
        with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
            m = build()
            if getattr(m, "hf_quantizer", None) is not None:
                # A GGUF-loaded model counts as "quantized with gguf" and refuses
                # save_pretrained: copy its (already f32) weights into a plain model.
                config = m.config
                if hasattr(config, "quantization_config"):
                    del config.quantization_config
                plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
                plain.load_state_dict(m.state_dict())
                del m
                m = plain
            m.save_pretrained(tmp)
            del m
            desc["nf4_via_temporary_f32_checkpoint"] = True
            return AutoModelForCausalLM.from_pretrained(tmp, **kw), desc

    if spec == QWEN_05B:
        torch.manual_seed(0)
        config = qwen05b_config()
        if not qlora:
            return AutoModelForCausalLM.from_config(config, **kw), {"kind": QWEN_05B}
        return via_tmp(lambda: AutoModelForCausalLM.from_config(config, dtype=torch.float32),
                       {"kind": QWEN_05B})
    path = pathlib.Path(spec).expanduser()
    if path.is_dir() and not (path / "config.json").exists():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise SystemExit(f"{path}: no config.json and {len(ggufs)} .gguf files")
        path = ggufs[0]
    if path.is_file() and path.suffix == ".gguf":
        desc = {"kind": "gguf", "path": str(path), "bytes": path.stat().st_size}
        if qlora:
            return via_tmp(lambda: AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32), desc)
        return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, **kw), desc
    if path.is_dir():
        return AutoModelForCausalLM.from_pretrained(path, **kw), {"kind": "hf", "path": str(path)}
    raise SystemExit(f"--model {spec}: not a .gguf file, a model directory or {QWEN_05B}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (default 0)")
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj",
                    help="comma-separated module names, or all-linear")
    ap.add_argument("--steps", type=int, default=6, help="timed training steps")
    ap.add_argument("--warmup-steps", type=int, default=1)
    ap.add_argument("--forward-steps", type=int, default=3, help="timed forward-only passes (0: skip)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default=None, help="attn_implementation (default: transformers' choice, sdpa)")
    ap.add_argument("--qlora", action="store_true", help="frozen base in bitsandbytes NF4")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args()

    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader has its own bar
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    rss_imports = rss_mb()

    result = {
        "engine": "pytorch+peft",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "cpu": cpu_name(),
        "load_average_start": os.getloadavg(),
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "model": args.model,
        "seq": args.seq,
        "batch": args.batch,
        "rank": args.rank,
        "alpha": args.alpha,
        "lora_dropout": args.dropout,
        "targets": args.targets,
        "lr": args.lr,
        "optimizer": "torch.optim.AdamW (LoRA parameters only)",
        "dtype": "float32",
        "qlora": None,
        # torch (PyPI's CUDA build) + transformers + peft alone, before any model
        "rss_after_imports_mb": round(rss_imports, 1),
    }

    def finish(code=0):
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["load_average_end"] = os.getloadavg()
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            for k, v in result.items():
                print(f"{k}: {v}")
        sys.exit(code)

    if args.qlora:
        try:
            import bitsandbytes

            result["qlora"] = {"available": True, "bitsandbytes": bitsandbytes.__version__,
                               "quant_type": "nf4", "compute_dtype": "float32", "double_quant": False}
        except Exception as e:  # noqa: BLE001 - any import failure means no QLoRA here
            result["qlora"] = {"available": False, "error": f"bitsandbytes: {type(e).__name__}: {e}"}
            log("QLoRA unavailable:", result["qlora"]["error"])
            finish(2)

    t0 = time.perf_counter()
    try:
        model, source = load_model(args.model, args.attn, args.qlora)
    except Exception as e:  # noqa: BLE001
        if not args.qlora:
            raise
        result["qlora"].update(available=False, error=f"loading in NF4 failed: {type(e).__name__}: {e}")
        log("QLoRA unavailable:", result["qlora"]["error"])
        finish(2)
    result["load_seconds"] = round(time.perf_counter() - t0, 2)
    result["source"] = source
    result["attn_implementation"] = model.config._attn_implementation
    model.config.use_cache = False
    cfg = model.config
    result["model_config"] = {
        k: getattr(cfg, k, None)
        for k in ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "tie_word_embeddings")
    }

    targets = args.targets if args.targets == "all-linear" else [t for t in args.targets.split(",") if t]
    lcfg = LoraConfig(task_type="CAUSAL_LM", r=args.rank, lora_alpha=args.alpha,
                      lora_dropout=args.dropout, target_modules=targets)
    torch.manual_seed(args.seed)
    model = get_peft_model(model, lcfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    result["params_total"] = sum(p.numel() for p in model.parameters())
    result["params_trainable"] = sum(p.numel() for p in trainable)
    import gc

    gc.collect()
    release_free_heap()
    result["rss_after_load_mb"] = round(rss_mb(), 1)
    log(f"loaded in {result['load_seconds']} s: {result['params_total'] / 1e6:.1f} M params, "
        f"{result['params_trainable'] / 1e6:.2f} M trainable, RSS {result['rss_after_load_mb']:.0f} MB")

    opt = torch.optim.AdamW(trainable, lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    vocab = cfg.vocab_size
    tokens = args.batch * args.seq

    def batch():
        return torch.randint(0, vocab, (args.batch, args.seq), generator=gen)

    hwm_reset = reset_hwm()
    model.train()
    step_times, losses = [], []
    for i in range(args.warmup_steps + args.steps):
        ids = batch()
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t
        timed = i >= args.warmup_steps
        if timed:
            step_times.append(dt)
        losses.append(float(loss))
        log(f"step {i}{'' if timed else ' (warm-up)'}: {dt:.3f} s, {tokens / dt:.1f} tok/s, loss {float(loss):.4f}")

    fwd_times = []
    if args.forward_steps > 0:
        model.eval()
        with torch.no_grad():
            for i in range(1 + args.forward_steps):
                ids = batch()
                t = time.perf_counter()
                model(input_ids=ids)
                dt = time.perf_counter() - t
                if i >= 1:
                    fwd_times.append(dt)
                log(f"forward {i}{'' if i else ' (warm-up)'}: {dt:.3f} s, {tokens / dt:.1f} tok/s")

    med = statistics.median(step_times)
    result.update(
        step_seconds=[round(x, 4) for x in step_times],
        median_step_seconds=round(med, 4),
        train_tokens_per_s=round(tokens / med, 2),
        losses=[round(x, 4) for x in losses],
        forward_seconds=[round(x, 4) for x in fwd_times],
        forward_tokens_per_s=round(tokens / statistics.median(fwd_times), 2) if fwd_times else None,
        peak_rss_train_mb=round(hwm_mb(), 1) if hwm_reset else None,
    )
    finish(0)


if __name__ == "__main__":
    main()
