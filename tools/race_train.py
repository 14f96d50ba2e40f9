#!/usr/bin/env python3
"""Training-speed race: PyTorch + PEFT (tools/bench_train.py) against `vigil train bench`
on the same model, threads, batch, sequence length, rank and target modules.

Both engines do forward + backward + AdamW on fresh random token batches, with loss on
every position, and report the median step's tokens/s and their peak RSS. The engines run
one after the other, `--rounds` times alternating, so both see the same machine load;
the table gives each engine's best round and the ratio vigil / PyTorch.

--model takes what bench_train.py takes (a GGUF, an HF directory) or `qwen2.5-0.5b-shape`:
a random Qwen2 of Qwen2.5-0.5B's shape, written once as an HF directory under
~/.cache/vigil/bench/ so both engines load the very same weights.

Usage:
  tools/.venv/bin/python tools/race_train.py --vigil target/release/vigil \\
      --model ~/.cache/vigil/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --threads 1 2 --seq 256 --batch 1 --rank 16 --targets q_proj,k_proj,v_proj,o_proj
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
QWEN_05B = "qwen2.5-0.5b-shape"


def random_qwen_dir() -> pathlib.Path:
    out = pathlib.Path.home() / ".cache" / "vigil" / "bench" / QWEN_05B
    if (out / "model.safetensors").exists():
        return out
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                      num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                      max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                      tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    return out


def run_json(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    text = proc.stdout.strip()
    return json.loads(text[text.index("{"):])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vigil", required=True, help="path to the vigil binary (release build)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--vigil-base", default="f32", help="vigil's --base (f32 = LoRA, keep = QLoRA on a GGUF)")
    ap.add_argument("--out", help="write all results as JSON here")
    args = ap.parse_args()

    model = str(random_qwen_dir()) if args.model == QWEN_05B else os.path.expanduser(args.model)
    env = dict(os.environ)
    # PyTorch's OpenMP threads spin-wait by default, which collapses on a shared machine.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    common = ["--seq", str(args.seq), "--batch", str(args.batch), "--rank", str(args.rank),
              "--alpha", str(args.alpha), "--targets", args.targets, "--steps", str(args.steps),
              "--warmup-steps", "1"]
    results = []
    for threads in args.threads:
        best = {}
        for rnd in range(args.rounds):
            order = ["pytorch", "vigil"] if rnd % 2 == 0 else ["vigil", "pytorch"]
            for engine in order:
                if engine == "pytorch":
                    cmd = [sys.executable, str(HERE / "bench_train.py"), "--model", model,
                           "--threads", str(threads), "--forward-steps", "0", "--json", *common]
                    r = run_json(cmd, env)
                    tps, rss = r["train_tokens_per_s"], r["peak_rss_mb"]
                else:
                    cmd = [args.vigil, "train", "bench", "--model", model, "--threads", str(threads),
                           "--base", args.vigil_base, "--json", *common]
                    r = run_json(cmd, env)
                    tps, rss = r["train_tokens_per_s"], r["peak_rss_mb"]
                print(f"threads {threads} round {rnd} {engine}: {tps:.1f} tok/s, peak RSS {rss:.0f} MB",
                      file=sys.stderr)
                if engine not in best or tps > best[engine]["tokens_per_s"]:
                    best[engine] = {"tokens_per_s": tps, "peak_rss_mb": rss, "raw": r}
        ratio = best["vigil"]["tokens_per_s"] / best["pytorch"]["tokens_per_s"]
        results.append({"threads": threads, "pytorch": best["pytorch"], "vigil": best["vigil"],
                        "ratio": ratio})

    print(f"\nmodel {args.model}, seq {args.seq} x batch {args.batch}, r {args.rank} on {args.targets}, "
          f"vigil base {args.vigil_base}")
    print("| threads | PyTorch+PEFT tok/s | vigil tok/s | ratio | PyTorch peak RSS MB | vigil peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['threads']} | {r['pytorch']['tokens_per_s']:.1f} | {r['vigil']['tokens_per_s']:.1f} | "
              f"{r['ratio']:.2f} | {r['pytorch']['peak_rss_mb']:.0f} | {r['vigil']['peak_rss_mb']:.0f} |")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
