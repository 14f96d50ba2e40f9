#!/usr/bin/env python3
"""Does PEFT load an adapter that vigil wrote, and compute what vigil computed with it?

Loads the fixture base model fixtures/peft/ARCH/model, puts the adapter in --adapter on it
with PeftModel.from_pretrained, runs the fixture batch (input_ids / attention_mask /
position_ids from fixtures/peft/ARCH/reference.safetensors) and compares the logits with
the tensor `logits` ([2, T, 256] f32) in --expect, at real (non-pad) positions only.

Writes a JSON report (--out) and exits nonzero when the logits differ by 1e-4 or more, when
PEFT reports missing adapter keys, when the file holds keys PEFT does not use (PEFT's
from_pretrained ignores those silently, so they are found here by comparing the file with
the adapter state dict PEFT builds from adapter_config.json), or when loading fails.

Usage:
  tools/.venv/bin/python tools/check_peft_load.py --arch llama \\
      --adapter fixtures/peft/llama/vigil_adapter \\
      --expect fixtures/peft/llama/vigil_adapter_logits.safetensors \\
      --out fixtures/peft/llama/vigil_adapter_in_peft.json
"""

import argparse
import json
import pathlib
import sys
import traceback
import warnings

import torch

import peft
import transformers
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOL = 1e-4

warnings.filterwarnings("ignore", category=FutureWarning)
hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


def rel(p):
    p = pathlib.Path(p).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def run(args):
    fixture = ROOT / "fixtures" / "peft" / args.arch
    report = {
        "peft_version": peft.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "arch": args.arch,
        "base_model_dir": rel(fixture / "model"),
        "adapter_dir": rel(args.adapter),
        "expect_file": rel(args.expect),
        "tolerance": TOL,
        "max_abs_diff": None,
        "compared_positions": 0,
        "ok": False,
        "keys_in_file": 0,
        "keys_loaded": 0,
        "missing_keys": [],
        "unexpected_keys": [],
        "peft_warnings": [],
        "error": None,
    }
    try:
        ref = load_file(fixture / "reference.safetensors")
        expect = load_file(args.expect)["logits"].float()
        file_tensors = load_file(pathlib.Path(args.adapter) / "adapter_model.safetensors")
        report["keys_in_file"] = len(file_tensors)

        base = AutoModelForCausalLM.from_pretrained(
            fixture / "model", attn_implementation="eager", dtype=torch.float32
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PeftModel.from_pretrained(base, args.adapter)
        report["peft_warnings"] = sorted(
            {str(w.message) for w in caught if not issubclass(w.category, FutureWarning)}
        )
        model.eval()

        cfg = model.peft_config["default"]
        tm = cfg.target_modules
        report["adapter_config_as_read"] = {
            "peft_type": str(cfg.peft_type.value if hasattr(cfg.peft_type, "value") else cfg.peft_type),
            "r": cfg.r,
            "lora_alpha": cfg.lora_alpha,
            "use_rslora": cfg.use_rslora,
            "use_dora": cfg.use_dora,
            "target_modules": tm if isinstance(tm, str) else sorted(tm),
        }

        # What PEFT expects to find in the file for this config, in the file's key naming;
        # compare names and values with what is there.
        expected = get_peft_model_state_dict(model)
        report["missing_keys"] = sorted(set(expected) - set(file_tensors))
        report["unexpected_keys"] = sorted(set(file_tensors) - set(expected))
        report["keys_loaded"] = sum(
            1
            for k, v in expected.items()
            if k in file_tensors
            and tuple(v.shape) == tuple(file_tensors[k].shape)
            and torch.equal(v.float(), file_tensors[k].float())
        )

        with torch.no_grad():
            logits = model(
                input_ids=ref["input_ids"],
                attention_mask=ref["attention_mask"],
                position_ids=ref["position_ids"],
            ).logits.float()
        if tuple(expect.shape) != tuple(logits.shape):
            raise ValueError(f"--expect logits have shape {tuple(expect.shape)}, PEFT gives {tuple(logits.shape)}")
        real = ref["attention_mask"].bool()
        report["compared_positions"] = int(real.sum())
        report["max_abs_diff"] = float((logits[real] - expect[real]).abs().max())
        report["max_abs_logit"] = float(logits[real].abs().max())
        report["ok"] = (
            report["max_abs_diff"] < TOL
            and not report["missing_keys"]
            and not report["unexpected_keys"]
            and report["keys_loaded"] == len(file_tensors)
        )
    except Exception as e:  # report the failure in the JSON too
        report["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=["llama", "qwen2"])
    ap.add_argument("--adapter", required=True, type=pathlib.Path, help="PEFT adapter directory")
    ap.add_argument("--expect", required=True, type=pathlib.Path, help="safetensors with `logits` [2, T, 256]")
    ap.add_argument("--out", type=pathlib.Path, help="JSON report (default: print only)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    report = run(args)
    text = json.dumps(report, indent=1) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(
        f"{args.arch}: max_abs_diff {report['max_abs_diff']} over {report['compared_positions']} positions; "
        f"keys {report['keys_loaded']}/{report['keys_in_file']} loaded; "
        f"missing {len(report['missing_keys'])}, unexpected {len(report['unexpected_keys'])}"
        + (f"; error {report['error']}" if report["error"] else "")
        + ("  OK" if report["ok"] else "  FAIL")
    )
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
