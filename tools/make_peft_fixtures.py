#!/usr/bin/env python3
"""Reference fixtures for vigil's LoRA: tiny random Llama / Qwen2 models, a PEFT adapter
for each, and what PyTorch + PEFT compute with them.

Writes, for ARCH in llama, qwen2, into fixtures/peft/ARCH/:

  model/config.json, model/model.safetensors     the base model (f32, save_pretrained)
  adapter/adapter_config.json,
  adapter/adapter_model.safetensors              the PEFT LoRA adapter (nonzero lora_B)
  reference.safetensors                          batch, logits, loss, LoRA gradients
  meta.json                                      versions, configs, what is where

crates/vigil-model/tests/lora_peft.rs reads them. Everything is float32, eager attention,
fixed seeds: a rerun with the same torch / transformers / peft gives the same bytes.

Usage:
  tools/.venv/bin/python tools/make_peft_fixtures.py [--out fixtures/peft] [--arch llama qwen2]
  tools/.venv/bin/python tools/make_peft_fixtures.py --check
      reload model + adapter from disk with PEFT, confirm the saved logits (and the merged
      logits, loss and gradients) are reproduced
"""

import argparse
import json
import os
import pathlib
import sys

# PEFT keeps target_modules in a Python set and writes it in iteration order, which for
# strings depends on the hash seed: pin it so adapter_config.json is byte-reproducible.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import warnings

import torch

import peft
import safetensors
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config
from transformers.utils import logging as hf_logging

warnings.filterwarnings("ignore", category=FutureWarning)
hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fixtures" / "peft"

VOCAB = 256
T = 12  # tokens per row of the batch
PAD_ROW1 = 3  # row 1 starts with this many pad tokens
PROMPT = 4  # the first PROMPT real tokens of each row are not loss targets
PAD_ID = 0  # what sits in input_ids at pad slots (vigil's left_padded_batch uses 0 too)

SHAPE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA, head_dim 16
    max_position_embeddings=128,
    initializer_range=0.05,
)

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

ARCHS = {
    "llama": dict(
        seed=1234,
        config=lambda: LlamaConfig(
            **SHAPE, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False
        ),
        lora=lambda: LoraConfig(
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            target_modules=list(SEVEN),
        ),
    ),
    "qwen2": dict(
        seed=5678,
        config=lambda: Qwen2Config(
            **SHAPE, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True
        ),
        lora=lambda: LoraConfig(
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=16,
            lora_dropout=0.05,
            use_rslora=True,
            target_modules="all-linear",
        ),
    ),
}


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "python": sys.version.split()[0],
    }


def make_batch(seed):
    """input_ids, attention_mask, position_ids, labels: [2, T] int64, row 1 left-padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (2, T), generator=g, dtype=torch.int64)
    mask = torch.ones(2, T, dtype=torch.int64)
    mask[1, :PAD_ROW1] = 0
    ids[1, :PAD_ROW1] = PAD_ID
    # HF does not derive positions from the mask: the first real token is position 0.
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    labels = ids.clone()
    for r in range(2):
        first_real = int((mask[r] == 0).sum())
        labels[r, : first_real + PROMPT] = -100
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels}


def model_inputs(batch, labels=False):
    keys = ["input_ids", "attention_mask", "position_ids"] + (["labels"] if labels else [])
    return {k: batch[k] for k in keys}


@torch.no_grad()
def randomise_base(model, arch, g):
    """Norm weights around 1 (a wrong norm cannot hide); Qwen2: nonzero q/k/v biases."""
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def build_base(arch):
    spec = ARCHS[arch]
    torch.manual_seed(spec["seed"])
    config = spec["config"]()
    model = AutoModelForCausalLM.from_config(
        config, attn_implementation="eager", dtype=torch.float32
    )
    randomise_base(model, arch, torch.Generator().manual_seed(spec["seed"] + 1))
    model.eval()
    return model


def load_base(model_dir):
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    return model


def lora_key(param_name, adapter_name="default"):
    """Parameter name in the live PeftModel -> key in adapter_model.safetensors."""
    return param_name.replace(f".{adapter_name}.", ".")


@torch.no_grad()
def logits_of(model, batch):
    return model(**model_inputs(batch)).logits.float().contiguous()


def loss_and_grads(peft_model, batch):
    """The model's own causal-LM loss (eval mode: no dropout) and d loss / d each LoRA matrix."""
    peft_model.eval()
    peft_model.zero_grad(set_to_none=True)
    out = peft_model(**model_inputs(batch, labels=True))
    out.loss.backward()
    grads = {}
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            assert p.requires_grad and p.grad is not None, name
            grads["grad." + lora_key(name)] = p.grad.detach().float().clone().contiguous()
    peft_model.zero_grad(set_to_none=True)
    return out.loss.detach().float().reshape(1), grads


def max_real_diff(a, b, mask):
    """Max |a - b| over the real (mask = 1) positions of two [2, T, V] tensors."""
    m = mask.bool()
    return float((a[m] - b[m]).abs().max())


def generate(arch, out_dir):
    spec = ARCHS[arch]
    out = out_dir / arch
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "adapter").mkdir(parents=True, exist_ok=True)

    base = build_base(arch)
    base.save_pretrained(out / "model", safe_serialization=True)
    base_config = json.loads((out / "model" / "config.json").read_text())

    batch = make_batch(spec["seed"] + 2)
    logits_base = logits_of(base, batch)

    torch.manual_seed(spec["seed"] + 3)  # PEFT's Kaiming init of lora_A draws from this
    peft_model = get_peft_model(base, spec["lora"]())
    g = torch.Generator().manual_seed(spec["seed"] + 4)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    peft_model.eval()
    targeted = sorted(peft_model.peft_config["default"].target_modules)
    peft_model.save_pretrained(out / "adapter", safe_serialization=True)
    # PEFT also writes a template model card (README.md): not part of the format, drop it.
    (out / "adapter" / "README.md").unlink(missing_ok=True)
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    adapter_keys = sorted(load_file(out / "adapter" / "adapter_model.safetensors"))

    logits_adapter = logits_of(peft_model, batch)
    with peft_model.disable_adapter():
        logits_base_again = logits_of(peft_model, batch)
    loss, grads = loss_and_grads(peft_model, batch)
    assert sorted(k[len("grad.") :] for k in grads) == adapter_keys, (
        "live LoRA parameters and saved adapter keys differ"
    )

    # Merge on a fresh copy read back from disk (also proves the files load).
    fresh = PeftModel.from_pretrained(load_base(out / "model"), out / "adapter")
    fresh.eval()
    logits_reload = logits_of(fresh, batch)
    merged = fresh.merge_and_unload()
    merged.eval()
    logits_merged = logits_of(merged, batch)

    ref = dict(batch)
    ref.update(
        logits_base=logits_base,
        logits_adapter=logits_adapter,
        logits_merged=logits_merged,
        loss=loss,
    )
    ref.update(grads)
    ref = {k: v.contiguous() for k, v in ref.items()}
    save_file(ref, out / "reference.safetensors", metadata={"format": "pt"})

    mask = batch["attention_mask"]
    summary = {
        "max_abs_logit_base": max_real_diff(logits_base, torch.zeros_like(logits_base), mask),
        "max_abs_change_base_to_adapter": max_real_diff(logits_base, logits_adapter, mask),
        "disable_adapter_vs_base": max_real_diff(logits_base, logits_base_again, mask),
        "reload_vs_adapter": max_real_diff(logits_reload, logits_adapter, mask),
        "merged_vs_adapter": max_real_diff(logits_merged, logits_adapter, mask),
        "loss": float(loss[0]),
        "max_abs_grad": max(float(v.abs().max()) for v in grads.values()),
        "min_of_per_tensor_max_abs_grad": min(float(v.abs().max()) for v in grads.values()),
    }
    meta = {
        "generator": "tools/make_peft_fixtures.py",
        "versions": versions(),
        "arch": arch,
        "seed": spec["seed"],
        "dtype": "float32",
        "attn_implementation": "eager",
        "model_config": base_config,
        "adapter_config": adapter_config,
        "requested_target_modules": spec["lora"]().target_modules
        if isinstance(spec["lora"]().target_modules, str)
        else sorted(spec["lora"]().target_modules),
        "resolved_target_modules": targeted,
        "adapter_keys": adapter_keys,
        "lora_scaling": peft_model.base_model.model.model.layers[0].self_attn.q_proj.scaling[
            "default"
        ],
        "batch": {
            "rows": 2,
            "T": T,
            "pad_id_in_input_ids": PAD_ID,
            "padding": "left",
            "pad_positions": {"0": [], "1": list(range(PAD_ROW1))},
            "prompt_tokens_per_row": PROMPT,
            "position_ids": "clamp(cumsum(attention_mask) - 1, 0), passed explicitly",
            "labels": "-100 at pad slots and the first 4 real tokens of each row; "
            "HF shifts: logits[:, j] predicts labels[:, j + 1]; loss = mean over targets",
            "loss_targets": int((batch["labels"][:, 1:] != -100).sum()),
        },
        "reference_tensors": {
            "input_ids": "[2, T] int64",
            "attention_mask": "[2, T] int64",
            "position_ids": "[2, T] int64",
            "labels": "[2, T] int64",
            "logits_base": "[2, T, 256] f32, adapter disabled, eval mode",
            "logits_adapter": "[2, T, 256] f32, adapter on, eval mode",
            "logits_merged": "[2, T, 256] f32, merge_and_unload on a fresh copy from disk",
            "loss": "[1] f32, the model's own causal-LM loss (eval mode, dropout off)",
            "grad.<adapter key>": "d loss / d that adapter tensor, same shape, f32",
        },
        "note": "Logits at pad positions (row 1, slots 0..3) are not comparable: HF masks "
        "a fully masked query row its own way. Compare real positions only.",
        "summary": summary,
        "files_bytes": {},
    }
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "meta.json" and "vigil" not in p.name:
            meta["files_bytes"][str(p.relative_to(out))] = p.stat().st_size
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")

    total = sum(meta["files_bytes"].values())
    print(
        f"{arch}: {len(adapter_keys)} adapter tensors on {len(targeted)} target entries; "
        f"max |logit| {summary['max_abs_logit_base']:.3f}; "
        f"base->adapter max change {summary['max_abs_change_base_to_adapter']:.4f}; "
        f"merged vs adapter {summary['merged_vs_adapter']:.2e}; "
        f"reload vs adapter {summary['reload_vs_adapter']:.2e}; "
        f"loss {summary['loss']:.6f}; {total / 1024:.0f} KiB"
    )
    assert summary["max_abs_change_base_to_adapter"] > 1e-2, "adapter barely moves logits"
    assert summary["merged_vs_adapter"] < 1e-4
    assert summary["disable_adapter_vs_base"] == 0.0
    assert all(float(v.abs().max()) > 0 for v in grads.values()), "a zero gradient"


def check(arch, out_dir):
    """Reload the saved files with PEFT and reproduce what reference.safetensors holds."""
    out = out_dir / arch
    ref = load_file(out / "reference.safetensors")
    batch = {k: ref[k] for k in ("input_ids", "attention_mask", "position_ids", "labels")}
    mask = batch["attention_mask"]
    base = load_base(out / "model")
    logits_base = logits_of(base, batch)
    model = PeftModel.from_pretrained(base, out / "adapter", is_trainable=True)
    model.eval()
    logits_adapter = logits_of(model, batch)
    loss, grads = loss_and_grads(model, batch)
    merged = model.merge_and_unload()
    logits_merged = logits_of(merged, batch)

    diffs = {
        "logits_base": max_real_diff(logits_base, ref["logits_base"], mask),
        "logits_adapter": max_real_diff(logits_adapter, ref["logits_adapter"], mask),
        "logits_merged": max_real_diff(logits_merged, ref["logits_merged"], mask),
        "loss": float((loss - ref["loss"]).abs().max()),
        "grad": max(float((g - ref[k]).abs().max()) for k, g in grads.items()),
    }
    missing = sorted(k for k in ref if k.startswith("grad.") and k not in grads)
    ok = all(v < 1e-5 for v in diffs.values()) and not missing
    print(
        f"{arch}: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
        + f"; {len(grads)} gradients" + (f"; MISSING {missing}" if missing else "")
        + ("  OK" if ok else "  FAIL")
    )
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    ap.add_argument("--arch", nargs="+", choices=sorted(ARCHS), default=["llama", "qwen2"])
    ap.add_argument("--check", action="store_true", help="verify the saved fixtures, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)  # reproducible reductions, and the machine is small
    torch.use_deterministic_algorithms(True)
    if args.check:
        ok = all([check(a, args.out) for a in args.arch])
        sys.exit(0 if ok else 1)
    for arch in args.arch:
        generate(arch, args.out)


if __name__ == "__main__":
    main()
