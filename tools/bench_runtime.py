#!/usr/bin/env python3
"""Side-by-side inference speed benchmark: vigil vs llama.cpp (llama-cpp-python).

For every model and thread count it runs, each in a fresh child process:

  * llama.cpp: a fixed 128-token prompt (llama.cpp's token count, BOS included when the
    model adds one) is evaluated in one batch (prefill), then 64 tokens are generated
    greedily with EOS ignored, one eval per token (decode). Timed with perf_counter;
    1 warm-up + N repeats (default 3) inside the child.
  * vigil: `<vigil> generate --model PATH --threads N --raw --max-tokens 64 --ignore-eos
    --temperature 0 --stats --prompt-file FILE --repeat 1+N` with the same prompt text: the
    same 1 warm-up + N repeats inside one process (each from an empty KV cache), one stderr
    line `prefill: N tok, X tok/s; decode: M tok, Y tok/s` per run; median of the last N.

Each engine runs --rounds child processes (default 3) for every model and thread count,
alternating with the other engine's, and the medians are taken over all their measured
runs: on a shared machine a slow spell then falls on both engines.

Both engines are measured warm, as llama-bench measures: the warm-up run is the one that
touches the weights' pages (both map the GGUF file) and starts the thread pools. (Until
session 9 vigil ran one process per run, so every measured prefill was a cold first pass
while llama.cpp's were warm.)

With --membw (the `membw` example of vigil-kernels) it also measures this machine's
streaming read bandwidth per thread count, before every model and at the end (a model's
rows use the higher of the two measurements around them: one can fall in a slow spell of
a shared host), and reports each engine's decode as a share of the bandwidth ceiling:
tokens/s × bytes read per token ÷ bandwidth, where the bytes per
token are every tensor of the GGUF except the token embedding (one row of it is read), plus
the embedding again when it doubles as the tied output head.

Peak RSS is the child's maximum resident set, measured by /usr/bin/time around it; for
llama.cpp it includes the Python interpreter and numpy (~30 MB). Prints a Markdown table with vigil/llama.cpp ratios.

Usage (after tools/setup-reference.sh; vigil built with cargo build --release):

  tools/.venv/bin/python tools/bench_runtime.py \\
      --model smollm2-135m-instruct=/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --model gemma3-270m=/tmp/models/gemma-3-270m-q4_k_m.gguf \\
      --threads 1 2 [--vigil target/release/vigil] [--no-vigil] [--json out.json] \\
      [--membw target/release/examples/membw]

If vigil is missing or fails, the reason is printed and llama.cpp's numbers still are.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

PROMPT_TOKENS = 128
GEN_TOKENS = 64

STATS_RE = re.compile(
    r"prefill:\s*(\d+)\s*tok,\s*([0-9.]+)\s*tok/s;\s*decode:\s*(\d+)\s*tok,\s*([0-9.]+)\s*tok/s")

# Long, fixed source text; the prompt is its first PROMPT_TOKENS tokens for each model.
SOURCE_TEXT = (
    "You are reviewing an API endpoint for security problems. Here is the handler:\n\n"
    "@app.route(\"/api/users/<user_id>/orders\", methods=[\"GET\"])\n"
    "def list_orders(user_id):\n"
    "    token = request.headers.get(\"Authorization\", \"\")\n"
    "    if not token:\n"
    "        return jsonify({\"error\": \"missing token\"}), 401\n"
    "    query = \"SELECT id, total, status FROM orders WHERE user_id = '\" + user_id + \"'\"\n"
    "    rows = db.execute(query).fetchall()\n"
    "    return jsonify([dict(r) for r in rows])\n\n"
    "And here is a response it produced:\n\n"
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: gunicorn/20.0.4\r\n"
    "Access-Control-Allow-Origin: *\r\n\r\n[{\"id\": 1, \"total\": 19.99, \"status\": \"paid\"}]\n\n"
    "Describe every vulnerability you find, give its CWE identifier and OWASP API Security "
    "category, rate its severity, explain how an attacker would exploit it, and then write a "
    "corrected version of the handler that uses parameterized queries, checks that the caller "
    "owns the requested orders, and sends safe response headers. Be precise and complete.\n"
) * 3


# ---------------------------------------------------------------------------
# Child: llama.cpp measurement (runs in its own process)
# ---------------------------------------------------------------------------

def child_llama(model: str, threads: int, prompt_file: str, repeats: int, warmup: int) -> None:
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    text = open(prompt_file, encoding="utf-8").read()
    llm = Llama(model_path=model, n_ctx=512, n_batch=512, n_threads=threads,
                n_threads_batch=threads, logits_all=False, verbose=False)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
    n_vocab = llm.n_vocab()

    def last_logits():
        # With logits_all=False llama-cpp-python no longer copies logits into llm.scores;
        # read llama.cpp's buffer for the last evaluated token directly.
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,))

    runs = []
    for i in range(warmup + repeats):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        t1 = time.perf_counter()
        for _ in range(GEN_TOKENS):
            tok = int(np.argmax(last_logits()))
            llm.eval([tok])
        t2 = time.perf_counter()
        if i >= warmup:
            runs.append({"prefill_tok_s": len(ids) / (t1 - t0), "decode_tok_s": GEN_TOKENS / (t2 - t1)})
    print(json.dumps({"prompt_tokens": len(ids), "runs": runs}))


# ---------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------

def run_measured(cmd: list[str], env: dict | None = None) -> tuple[int, str, str, float]:
    """Run cmd to completion; return (exit code, stdout, stderr, peak RSS in MB of that child).

    The peak comes from /usr/bin/time, not from wait4 here: Linux carries a process's peak
    RSS across exec, so a child forked from this (large, model-reading) Python process
    would start with this process's peak."""
    p = subprocess.run(["/usr/bin/time", "-f", "PEAK_RSS_KB %M", *cmd], capture_output=True,
                       env=env)
    err = p.stderr.decode("utf-8", "replace")
    lines = err.rstrip("\n").split("\n")
    m = re.fullmatch(r"PEAK_RSS_KB (\d+)", lines[-1]) if lines else None
    rss = int(m.group(1)) / 1024.0 if m else float("nan")
    if m:
        err = "\n".join(lines[:-1])
    return p.returncode, p.stdout.decode("utf-8", "replace"), err, rss


def make_prompt(model: str) -> tuple[str, int]:
    """First PROMPT_TOKENS llama.cpp tokens of SOURCE_TEXT, as text that re-tokenizes to them."""
    import llama_cpp
    from llama_cpp import Llama

    voc = Llama(model_path=model, vocab_only=True, verbose=False)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(voc.model)))
    ids = voc.tokenize(SOURCE_TEXT.encode("utf-8"), add_bos=False, special=False)
    want = PROMPT_TOKENS - (1 if add_bos else 0)
    # Cutting at a token boundary can merge differently on re-tokenization; trim until exact.
    for n in range(want, want - 16, -1):
        text = voc.detokenize(ids[:n]).decode("utf-8", "replace")
        got = len(voc.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))
        if got == PROMPT_TOKENS:
            return text, got
    return text, got


def bench_llama(model: str, threads: int, prompt_file: str, repeats: int, warmup: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child-llama", model,
           "--threads", str(threads), "--prompt-file", prompt_file,
           "--repeats", str(repeats), "--warmup", str(warmup)]
    code, out, err, rss = run_measured(cmd)
    if code != 0:
        return {"ok": False, "error": f"llama.cpp child exited {code}: {err.strip()[-400:]}"}
    data = json.loads(out.strip().splitlines()[-1])
    return {"ok": True, "prompt_tokens": data["prompt_tokens"],
            "prefill_runs": [r["prefill_tok_s"] for r in data["runs"]],
            "decode_runs": [r["decode_tok_s"] for r in data["runs"]],
            "rss_mb": rss}


def bench_vigil(vigil: str, model: str, threads: int, prompt_file: str,
                repeats: int, warmup: int) -> dict:
    if not (os.path.isfile(vigil) and os.access(vigil, os.X_OK)):
        return {"ok": False, "error": f"vigil binary not found or not executable: {vigil}"}
    cmd = [vigil, "generate", "--model", model, "--threads", str(threads), "--raw",
           "--max-tokens", str(GEN_TOKENS), "--ignore-eos", "--temperature", "0", "--stats",
           "--prompt-file", prompt_file, "--repeat", str(warmup + repeats)]
    code, _out, err, peak = run_measured(cmd)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    stats = [m for m in map(STATS_RE.search, lines) if m]
    if code != 0 or len(stats) != warmup + repeats:
        why = f"exit {code}" if code != 0 else f"{len(stats)} stats lines on stderr"
        tail = "\n".join(lines[-3:])
        return {"ok": False, "error": f"vigil failed ({why}): {' '.join(cmd)}\n{tail}"}
    runs = [(int(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4)))
            for m in stats[warmup:]]
    return {"ok": True, "prompt_tokens": runs[0][0], "decode_tokens": runs[0][2],
            "prefill_runs": [r[1] for r in runs], "decode_runs": [r[3] for r in runs],
            "rss_mb": peak}


def merge_rounds(rounds: list[dict]) -> dict:
    """One engine's rounds (child processes) as one result: the medians over every measured
    run of every round, the largest peak RSS; the first failure if any round failed."""
    for r in rounds:
        if not r["ok"]:
            return r
    merged = dict(rounds[0])
    for key in ("prefill_runs", "decode_runs"):
        merged[key] = [v for r in rounds for v in r[key]]
    merged["prefill"] = statistics.median(merged["prefill_runs"])
    merged["decode"] = statistics.median(merged["decode_runs"])
    merged["rss_mb"] = max(r["rss_mb"] for r in rounds)
    return merged


def weight_bytes_per_token(model: str) -> int:
    """Bytes of weights one decode step reads: all tensors but the token embedding, whose
    single looked-up row is negligible, unless it is also the (tied) output head."""
    from gguf import GGUFReader

    sizes = {t.name: int(t.n_bytes) for t in GGUFReader(model).tensors}
    total = sum(n for name, n in sizes.items() if name != "token_embd.weight")
    if "output.weight" not in sizes:
        total += sizes.get("token_embd.weight", 0)
    return total


def measure_bandwidth(membw: str, threads: list[int]) -> dict[int, float]:
    """GB/s per thread count from the membw example's JSON lines."""
    out = subprocess.run([membw, *map(str, threads)], check=True, capture_output=True,
                         text=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.strip()]
    return {r["threads"]: r["gb_s"] for r in rows}


def fmt(x, spec=".1f"):
    return "–" if x is None else format(x, spec)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="vigil vs llama.cpp inference benchmark")
    ap.add_argument("--model", action="append", metavar="[NAME=]PATH",
                    help="GGUF to benchmark; repeatable")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--vigil", default="target/release/vigil")
    ap.add_argument("--no-vigil", action="store_true", help="measure llama.cpp only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3,
                    help="child processes per engine, alternating llama.cpp and vigil, so a "
                    "slow spell of a shared machine does not fall on one engine only")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--membw", help="vigil-kernels' membw example: report decode against the "
                    "memory-bandwidth ceiling")
    ap.add_argument("--child-llama", help=argparse.SUPPRESS)
    ap.add_argument("--prompt-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child_llama:
        child_llama(args.child_llama, args.threads[0], args.prompt_file, args.repeats, args.warmup)
        return 0
    if not args.model:
        ap.error("give at least one --model")

    results = []
    errors = []
    # The ceiling is measured before every model and once more at the end; a model's rows
    # use the higher of the two measurements around them. On a shared host one measurement
    # can fall in a slow spell, and the higher figure is the stricter ceiling.
    bandwidths = []
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        for model_index, spec in enumerate(args.model):
            if args.membw:
                bandwidths.append(measure_bandwidth(args.membw, args.threads))
            name, sep, path = spec.partition("=")
            if not sep:
                name, path = os.path.basename(spec), spec
            prompt, n_tok = make_prompt(path)
            prompt_file = os.path.join(tmp, f"{name}.prompt.txt")
            with open(prompt_file, "w", encoding="utf-8") as f:
                f.write(prompt)
            for th in args.threads:
                ll_rounds, vg_rounds = [], []
                for k in range(max(1, args.rounds)):
                    print(f"# {name}, {th} thread(s), round {k + 1}: llama.cpp ...",
                          file=sys.stderr, flush=True)
                    ll_rounds.append(bench_llama(path, th, prompt_file, args.repeats,
                                                 args.warmup))
                    if not args.no_vigil:
                        print(f"# {name}, {th} thread(s), round {k + 1}: vigil ...",
                              file=sys.stderr, flush=True)
                        vg_rounds.append(bench_vigil(args.vigil, path, th, prompt_file,
                                                     args.repeats, args.warmup))
                ll = merge_rounds(ll_rounds)
                vg = merge_rounds(vg_rounds) if vg_rounds else None
                for engine, r in (("llama.cpp", ll), ("vigil", vg)):
                    if r is not None and not r["ok"]:
                        errors.append(f"{name} / {th} thread(s) / {engine}: {r['error']}")
                results.append({"model": name, "threads": th, "prompt_tokens_llama_cpp": n_tok,
                                "bytes_per_token": weight_bytes_per_token(path),
                                "model_index": model_index,
                                "llama.cpp": ll, "vigil": vg})

    if args.membw:
        bandwidths.append(measure_bandwidth(args.membw, args.threads))
    for r in results:
        i = r.pop("model_index")
        r["bandwidth_gb_s"] = (max(bandwidths[i][r["threads"]], bandwidths[i + 1][r["threads"]])
                               if args.membw else None)
    bandwidth = bool(args.membw)

    print("| model | threads | engine | prompt tok | prefill tok/s | decode tok/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for engine in ("llama.cpp", "vigil"):
            e = r[engine]
            if e is None:
                continue
            if e["ok"]:
                print(f"| {r['model']} | {r['threads']} | {engine} | {e['prompt_tokens']} | "
                      f"{fmt(e['prefill'])} | {fmt(e['decode'])} | {fmt(e['rss_mb'], '.0f')} |")
            else:
                print(f"| {r['model']} | {r['threads']} | {engine} | – | failed | failed | – |")
        ll, vg = r["llama.cpp"], r["vigil"]
        if vg and vg["ok"] and ll["ok"]:
            print(f"| {r['model']} | {r['threads']} | **vigil / llama.cpp** | | "
                  f"**{vg['prefill'] / ll['prefill']:.2f}×** | **{vg['decode'] / ll['decode']:.2f}×** | "
                  f"{vg['rss_mb'] / ll['rss_mb']:.2f}× |")
    if bandwidth:
        print("\n| model | threads | MB read / token | bandwidth GB/s | ceiling tok/s | "
              "llama.cpp decode / ceiling | vigil decode / ceiling |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            ceiling = r["bandwidth_gb_s"] * 1e9 / r["bytes_per_token"]
            share = {e: (f"{r[e]['decode'] / ceiling:.0%}" if r[e] and r[e]["ok"] else "–")
                     for e in ("llama.cpp", "vigil")}
            print(f"| {r['model']} | {r['threads']} | {r['bytes_per_token'] / 1e6:.1f} | "
                  f"{r['bandwidth_gb_s']:.1f} | {ceiling:.0f} | {share['llama.cpp']} | "
                  f"{share['vigil']} |")
    print(f"\nPrompt: {PROMPT_TOKENS} llama.cpp tokens per model (same text to both engines); "
          f"{GEN_TOKENS} greedy tokens, EOS ignored; per engine {args.rounds} child "
          f"processes (alternating engines), each {args.warmup} warm-up + {args.repeats} "
          f"measured runs; medians over all measured runs.")
    if bandwidth:
        runs = "; ".join(", ".join(f"{t} thread(s) {b[t]:.1f}" for t in args.threads)
                         for b in bandwidths)
        print(f"Bandwidth (GB/s, membw) before each model and at the end: {runs}. "
              f"A model's ceiling uses the higher of the measurements before and after it.")
    if errors:
        print("\nProblems:")
        for e in errors:
            print(f"- {e}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
