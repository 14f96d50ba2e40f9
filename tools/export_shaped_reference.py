#!/usr/bin/env python3
"""vigil export at Qwen2.5-0.5B's shape (random weights), against transformers and llama.cpp.

  1. transformers builds a random Qwen2 model of Qwen2.5-0.5B's shape (seeded, bf16) and saves
     it as a Hugging Face directory; the tokenizer is the default model's, as vigil exports it
     (tokenizer.json + tokenizer_config.json, padded by the exporter to the 151,936-row
     embedding);
  2. `vigil export gguf -m DIR --type f16` turns the directory into a GGUF (timed);
  3. llama.cpp loads that GGUF; its last-position logits on a few prompts are compared with
     transformers' on the directory (top-1 and max |diff|);
  4. for each export type, vigil (from the f16 GGUF) and llama.cpp's `llama_model_quantize`
     quantise the same file, each timed with /usr/bin/time, and the outputs are compared
     tensor by tensor.

Usage (after tools/setup-reference.sh and `cargo build --release -p vigil-cli`):
  tools/.venv/bin/python tools/export_shaped_reference.py --vigil target/release/vigil

Also runs export_reference.tokenizer_check on the default model's merged export (transformers'
AutoTokenizer on vigil's tokenizer.json). Writes crates/vigil-export/tests/data/
{reference_report_qwen2_0.5b.json, transformers_tokenizer.json}.
"""
import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from export_reference import DATA, FTYPE, TYPES, compare, llama_quantize, tensors, timed, tokenizer_check

PROMPTS = [[1, 504, 3458, 314, 4099, 30], [28, 3125, 216, 9, 17, 2000, 33]]


def make_model(out_dir, tokenizer_from):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        (out_dir / f).write_bytes((tokenizer_from / f).read_bytes())
    with torch.no_grad():
        model = model.to(torch.float32)
        return [model(torch.tensor([p])).logits[0, -1].numpy() for p in PROMPTS]


def llama_logits(path, threads):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=threads, logits_all=True,
                          verbose=False)
    rows = []
    for p in PROMPTS:
        llm.reset()
        llm.eval(p)
        rows.append(np.array(llm.scores[len(p) - 1], dtype=np.float32))
    del llm
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", required=True, help="the built vigil binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="vigil-export-0.5b-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)

    smol = work / "smollm2-hf"
    subprocess.run([args.vigil, "export", "merged", "-o", str(smol)], check=True)
    tokenizer_check(smol)
    hf = work / "qwen2-0.5b-shaped"
    reference = make_model(hf, smol)

    f16 = work / "vigil.f16.gguf"
    secs, rss, _ = timed([args.vigil, "export", "gguf", "-m", str(hf), "--type", "f16", "-o", str(f16)])
    report = {"shape": "Qwen2.5-0.5B (hidden 896, 24 layers, 14/2 heads, ffn 4864, vocab 151936), random bf16",
              "threads": args.threads,
              "from_hf_directory": {"seconds": round(secs, 3), "peak_rss_mib": round(rss, 1),
                                    "bytes": f16.stat().st_size},
              "types": {}}
    ours = llama_logits(f16, args.threads)
    report["llama_cpp_vs_transformers"] = [
        {"top1_equal": int(a.argmax()) == int(b.argmax()), "max_abs_diff": float(np.abs(a - b).max())}
        for a, b in zip(ours, reference)]
    print("f16 from directory", json.dumps(report["from_hf_directory"]),
          json.dumps(report["llama_cpp_vs_transformers"]), flush=True)

    for ty in TYPES:
        vout = work / f"vigil.out.{ty}.gguf"
        lout = work / f"llama.{ty}.gguf"
        vs, vrss, _ = timed([args.vigil, "export", "gguf", "-m", str(f16), "--type", ty, "-o", str(vout)])
        ls, lrss, _ = llama_quantize(f16, lout, FTYPE[ty], args.threads)
        report["types"][ty] = {
            "vigil": {"seconds": round(vs, 3), "peak_rss_mib": round(vrss, 1), "bytes": vout.stat().st_size},
            "llama_cpp": {"seconds": round(ls, 3), "peak_rss_mib": round(lrss, 1), "bytes": lout.stat().st_size},
            "from_f16": compare(tensors(vout), tensors(lout)),
        }
        print(ty, json.dumps(report["types"][ty])[:300], flush=True)
        vout.unlink()
        lout.unlink()
    (DATA / "reference_report_qwen2_0.5b.json").write_text(json.dumps(report, indent=1) + "\n")
    print("work files in", work)


if __name__ == "__main__":
    main()
