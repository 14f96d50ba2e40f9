#!/usr/bin/env python3
"""Reference results for vigil-export, from llama.cpp (llama-cpp-python) and gguf-py.

For each export type it:
  * runs vigil's exporter (the `export_one` example) and llama.cpp's own quantiser
    (`llama_model_quantize`) on the same source, each in its own process, recording wall
    time and peak RSS (/usr/bin/time);
  * compares the two files tensor by tensor (type, bytes);
  * loads vigil's file in llama.cpp and records the last-position logits (top 16) of a few
    prompts, which the Rust tests compare with vigil's own forward pass;
and then repeats the quantiser comparison from an f16 file (written by vigil), so both
quantisers start from identical f32 values, saving a few rows of llama.cpp's blocks as
byte fixtures for the Rust tests.

Usage:
  CARGO_TARGET_DIR=... cargo build -p vigil-export --examples
  tools/.venv/bin/python tools/export_reference.py --exporter $CARGO_TARGET_DIR/debug/examples/export_one

Writes crates/vigil-export/tests/data/{llama_cpp_logits.json,reference_blocks.json,reference_report.json,\nllama_cpp_lora_logits.json, smollm2_lora/, transformers_merged.json} (a random PEFT adapter and llama.cpp's logits with\nvigil's LoRA GGUF of it).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TYPES = ["f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"]
# llama.cpp's llama_ftype numbers.
FTYPE = {"f16": 1, "q4_0": 2, "q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18, "bf16": 32}
PROMPTS = [
    "<|im_start|>user\nIs `cursor.execute(\"SELECT * FROM t WHERE id=\" + uid)` safe?<|im_end|>\n<|im_start|>assistant\n",
    "The capital of France is",
    "def add(a, b):\n    return",
]
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates/vigil-export/tests/data"
DEFAULT_SOURCE = Path.home() / ".cache/vigil/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"


def timed(cmd):
    """Run cmd under /usr/bin/time; return (seconds, peak RSS MiB, stdout).

    (os.wait4's ru_maxrss is unusable here: a vfork'd child inherits the parent's high-water
    mark, which is large once llama.cpp has a model loaded.)"""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        p = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %M"] + cmd, capture_output=True)
        if p.returncode != 0:
            sys.exit(f"{cmd} failed: {p.stderr.decode(errors='replace')[-2000:]}")
        secs, kib = tf.read().split()[-2:]
    return float(secs), int(kib) / 1024.0, p.stdout.decode()


def llama_quantize(src, dst, ftype, threads):
    code = (
        "import ctypes, sys, llama_cpp\n"
        "p = llama_cpp.llama_model_quantize_default_params()\n"
        f"p.ftype = {ftype}\np.nthread = {threads}\np.allow_requantize = True\n"
        f"rc = llama_cpp.llama_model_quantize({str(src).encode()!r}, {str(dst).encode()!r}, ctypes.byref(p))\n"
        "sys.exit(rc)\n"
    )
    return timed([sys.executable, "-c", code])


def tensors(path):
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    return {t.name: (t.tensor_type.name, bytes(t.data.tobytes()), t) for t in r.tensors}


def compare(a, b):
    same_type = same_bytes = 0
    diffs = []
    for name, (ta, ba, _) in a.items():
        tb, bb, _ = b[name]
        if ta == tb:
            same_type += 1
            if ba == bb:
                same_bytes += 1
            else:
                x = np.frombuffer(ba, np.uint8)
                y = np.frombuffer(bb, np.uint8)
                diffs.append({"tensor": name, "type": ta, "bytes_differing": int((x != y).sum()), "bytes": len(ba)})
        else:
            diffs.append({"tensor": name, "vigil_type": ta, "llama_type": tb})
    return {"tensors": len(a), "same_type": same_type, "same_bytes": same_bytes, "differences": diffs[:20]}


def logits(path, prompt_ids, threads):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=threads, logits_all=True, verbose=False)
    out = []
    for ids in prompt_ids:
        llm.reset()
        llm.eval(ids)
        row = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
        top = np.argsort(-row)[:16]
        out.append({"ids": [int(i) for i in top], "logits": [float(row[i]) for i in top]})
    del llm
    return out


def make_adapter(src, out_dir):
    """A random PEFT adapter (r 2, alpha 4, q/k/v of every layer, f16) for the GGUF `src`."""
    import safetensors.numpy
    from gguf import GGUFReader

    r = GGUFReader(str(src))
    shapes = {t.name: [int(d) for d in reversed(t.shape)] for t in r.tensors}  # outermost first
    n_layer = sum(1 for n in shapes if n.endswith("attn_q.weight"))
    rng = np.random.default_rng(7)
    tensors = {}
    for i in range(n_layer):
        for hf, gg in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v")):
            out, inp = shapes[f"blk.{i}.{gg}.weight"]
            key = f"base_model.model.model.layers.{i}.self_attn.{hf}"
            tensors[key + ".lora_A.weight"] = (rng.standard_normal((2, inp)) * 0.1).astype(np.float16)
            tensors[key + ".lora_B.weight"] = (rng.standard_normal((out, 2)) * 0.1).astype(np.float16)
    out_dir.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4, "lora_dropout": 0.0,
              "target_modules": ["q_proj", "k_proj", "v_proj"], "bias": "none", "fan_in_fan_out": False,
              "use_rslora": False, "use_dora": False, "base_model_name_or_path": src.name}
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=1) + "\n")


def lora_reference(args, src, work):
    """llama.cpp with vigil's LoRA GGUF on the base, and without it, on the same prompts."""
    import llama_cpp

    adapter = DATA / "smollm2_lora"
    make_adapter(src, adapter)
    lora_gguf = work / "lora.gguf"
    subprocess.run([str(Path(args.exporter).with_name("export_lora")), str(adapter), str(src), str(lora_gguf)], check=True)
    tok = llama_cpp.Llama(model_path=str(src), vocab_only=True, verbose=False)
    prompt_ids = [tok.tokenize(p.encode(), add_bos=False, special=True) for p in PROMPTS]
    del tok
    out = {"prompts": prompt_ids}
    for label, lora in (("base", None), ("lora", lora_gguf)):
        llm = llama_cpp.Llama(model_path=str(src), n_ctx=256, n_threads=args.threads, logits_all=True,
                              verbose=False, **({"lora_path": str(lora)} if lora else {}))
        rows = []
        for ids in prompt_ids:
            llm.reset()
            llm.eval(ids)
            row = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
            top = np.argsort(-row)[:16]
            rows.append({"ids": [int(i) for i in top], "logits": [float(row[i]) for i in top]})
        out[label] = rows
        del llm
    (DATA / "llama_cpp_lora_logits.json").write_text(json.dumps(out) + "\n")
    print("lora", [(r["ids"][0], round(r["logits"][0], 3)) for r in out["lora"]],
          "base", [(r["ids"][0], round(r["logits"][0], 3)) for r in out["base"]])


def transformers_check(args, src, work):
    """transformers loads vigil's merged Hugging Face export; its logits vs llama.cpp's on the
    f16 GGUF export (llama_cpp_logits.json must exist)."""
    import torch
    from transformers import AutoModelForCausalLM

    out_dir = work / "hf"
    subprocess.run([str(Path(args.exporter).with_name("export_merged")), str(src), str(out_dir)], check=True)
    m = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
    f = json.loads((DATA / "llama_cpp_logits.json").read_text())
    rows = []
    for p, ref in zip(f["prompts"], f["types"]["f16"]):
        with torch.no_grad():
            lg = m(torch.tensor([p])).logits[0, -1]
        d = [abs(float(lg[i]) - v) for i, v in zip(ref["ids"], ref["logits"])]
        rows.append({"transformers_top": int(lg.argmax()), "llama_cpp_top": ref["ids"][0], "max_abs_diff_top16": max(d)})
    (DATA / "transformers_merged.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("transformers", rows)
    tokenizer_check(out_dir)


def tokenizer_check(out_dir):
    """transformers' AutoTokenizer on the exported tokenizer.json + tokenizer_config.json:
    ids vs llama.cpp's on the committed tokenizer fixture, and the chat template as rendered
    from the export vs the reference rendering."""
    from transformers import AutoTokenizer

    fixtures = ROOT / "fixtures" / "llama.cpp" / "smollm2-135m-instruct"
    tok = AutoTokenizer.from_pretrained(str(out_dir))
    entries = json.loads((fixtures / "tokenize.json").read_text())["entries"]
    specials = set(tok.all_special_tokens) | set(tok.get_added_vocab())
    same = compared = 0
    mismatches = []
    for e in entries:
        # transformers always cuts out added tokens; compare where llama.cpp did too.
        if not e["special"] and any(s in e["text"] for s in specials):
            continue
        ids = tok(e["text"], add_special_tokens=e["add_bos"])["input_ids"]
        compared += 1
        if ids == e["ids"]:
            same += 1
        elif len(mismatches) < 5:
            mismatches.append({"text": e["text"], "transformers": ids, "llama_cpp": e["ids"]})
    chat = json.loads((fixtures / "chat_template.json").read_text())
    rendered_same = 0
    cases = [c for c in chat["cases"] if not c.get("error")]
    for case in cases:
        text = tok.apply_chat_template(case["messages"], tokenize=False,
                                       add_generation_prompt=case.get("add_generation_prompt", False))
        rendered_same += text == case["rendered"]
    record = {"transformers": __import__("transformers").__version__,
              "strings_compared": compared, "ids_identical": same, "mismatches": mismatches,
              "chat_cases": len(cases), "chat_rendered_identical": rendered_same}
    (DATA / "transformers_tokenizer.json").write_text(json.dumps(record, indent=1) + "\n")
    print("tokenizer", record)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exporter", required=True, help="the built export_one example")
    ap.add_argument("--source", default=str(DEFAULT_SOURCE))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--only", choices=["lora", "transformers", "tokenizer"], help="run one part only")
    args = ap.parse_args()
    import llama_cpp

    work = Path(args.work or tempfile.mkdtemp(prefix="vigil-export-ref-"))
    work.mkdir(parents=True, exist_ok=True)
    src = Path(args.source)
    env_threads = {"RAYON_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    if args.only == "transformers":
        return transformers_check(args, src, work)
    if args.only == "tokenizer":
        out_dir = work / "hf"
        subprocess.run([str(Path(args.exporter).with_name("export_merged")), str(src), str(out_dir)], check=True)
        return tokenizer_check(out_dir)
    lora_reference(args, src, work)
    if args.only == "lora":
        return

    tok = llama_cpp.Llama(model_path=str(src), vocab_only=True, verbose=False)
    prompt_ids = [tok.tokenize(p.encode(), add_bos=False, special=True) for p in PROMPTS]
    del tok

    report = {"source": src.name, "threads": args.threads, "types": {}}
    fixture = {"source": src.name, "prompts": prompt_ids, "types": {}}
    for ty in TYPES:
        vout = work / f"vigil.{ty}.gguf"
        lout = work / f"llama.{ty}.gguf"
        vs, vrss, vjson = timed([args.exporter, str(src), ty, str(vout)])
        ls, lrss, _ = llama_quantize(src, lout, FTYPE[ty], args.threads)
        cmp = compare(tensors(vout), tensors(lout))
        fixture["types"][ty] = logits(vout, prompt_ids, args.threads)
        report["types"][ty] = {
            "vigil": {"seconds": round(vs, 3), "peak_rss_mib": round(vrss, 1), "bytes": vout.stat().st_size},
            "llama_cpp": {"seconds": round(ls, 3), "peak_rss_mib": round(lrss, 1), "bytes": lout.stat().st_size},
            "from_source": cmp,
        }
        print(ty, json.dumps(report["types"][ty])[:400], flush=True)

    # Quantisers from identical f32 input: both start from vigil's f16 file.
    f16 = work / "vigil.f16.gguf"
    blocks = {"source": "f16 export of " + src.name, "rows": 2, "cases": []}
    seen = set()
    for ty in ["q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"]:
        vout = work / f"vigil.from_f16.{ty}.gguf"
        lout = work / f"llama.from_f16.{ty}.gguf"
        timed([args.exporter, str(f16), ty, str(vout)])
        llama_quantize(f16, lout, FTYPE[ty], args.threads)
        vt, lt = tensors(vout), tensors(lout)
        report["types"][ty]["from_f16"] = compare(vt, lt)
        for name, (tname, data, t) in lt.items():
            if tname in ("F32", "F16") or tname in seen:
                continue
            seen.add(tname)
            row_bytes = len(data) // int(t.shape[1] if len(t.shape) > 1 else 1)
            blocks["cases"].append({
                "tensor": name, "type": tname, "row_len": int(t.shape[0]),
                "bytes_hex": data[: 2 * row_bytes].hex(),
            })
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "llama_cpp_logits.json").write_text(json.dumps(fixture) + "\n")
    (DATA / "reference_blocks.json").write_text(json.dumps(blocks, indent=1) + "\n")
    (DATA / "reference_report.json").write_text(json.dumps(report, indent=1) + "\n")
    transformers_check(args, src, work)
    print("work files in", work)


if __name__ == "__main__":
    main()
