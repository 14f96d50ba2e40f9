#!/usr/bin/env python3
"""Generate llama.cpp reference fixtures for vigil's tokenizer, decoder and chat templates.

For every model given as NAME=PATH this writes, under OUT/NAME/:

  tokenize.json       ~300+ strings (code in 7 languages, HTTP, Unicode, whitespace,
                      numbers, special-token strings) with llama.cpp's token ids, for
                      add_bos=False (all) and add_bos=True (a subset), special=True, and
                      llama.cpp's detokenized text of each id list.
  logits.json         teacher-forced next-token logits for 30+ prompts (code, HTTP, prose,
                      chat-formatted): per position the top-K (id, logit) pairs and the
                      log-sum-exp of the full row.
  greedy.json         greedy (argmax, no penalties) 64-token continuations of raw and
                      chat-templated prompts, with the top1-top2 logit margin per step.
  chat_template.json  the GGUF's tokenizer.chat_template and message lists rendered the way
                      transformers' apply_chat_template renders them (jinja2 sandbox,
                      trim_blocks, lstrip_blocks, raise_exception, bos/eos_token), plus
                      llama.cpp's own C++ formatting of the same messages.
  meta.json           llama-cpp-python version, model sha256, date, command line.

Rerun (after tools/setup-reference.sh):

  tools/.venv/bin/python tools/make_fixtures.py \\
      --model smollm2-135m-instruct=/path/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --model gemma3-270m=/path/gemma-3-270m-q4_k_m.gguf \\
      --out fixtures/llama.cpp [--threads 1] [--only tokenize chat_template logits greedy]

The inputs are deterministic (tools/fixture_corpus.py); outputs depend only on the
llama.cpp version and the model file.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np

import llama_cpp
from llama_cpp import Llama

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_corpus as corpus  # noqa: E402

GREEDY_TOKENS = 64
MAX_LOGIT_PROMPT_TOKENS = 128
N_CTX = 512


# ---------------------------------------------------------------------------
# Small helpers around llama.cpp
# ---------------------------------------------------------------------------


# llama.cpp's defaults store the KV cache in f16 and may use flash attention, which rounds
# q/k/v to f16. On SmolLM2 that alone moves logits by ~1.0 (mean over a row) and flips the
# top-1 token at ~4 % of positions compared with f32 attention — as much as any bug we want
# the fixtures to catch. vigil attends in f32, so the reference does too: the remaining
# difference is then only the (shared) block quantisation of weights and activations.
EXACT_ATTENTION = dict(type_k=0, type_v=0, flash_attn=False)  # 0 = GGML_TYPE_F32

def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vocab_of(llm: Llama):
    return llama_cpp.llama_model_get_vocab(llm.model)


def token_text(llm: Llama, tok: int) -> str:
    """The raw vocab entry of a token (as stored in tokenizer.ggml.tokens)."""
    raw = llama_cpp.llama_vocab_get_text(vocab_of(llm), tok)
    return raw.decode("utf-8", errors="replace") if raw is not None else ""


def detokenize(llm: Llama, ids: list[int]) -> tuple[str, bool]:
    """llama.cpp's own llama_detokenize (remove_special=False, unparse_special=True).

    Returns (text, valid_utf8). Calls the C function directly so that no Python-side
    post-processing (llama-cpp-python strips a leading space after BOS) is applied.
    """
    n = len(ids)
    arr = (llama_cpp.llama_token * max(n, 1))(*ids)
    size = max(64, 16 * n + 64)
    while True:
        buf = ctypes.create_string_buffer(size)
        got = llama_cpp.llama_detokenize(vocab_of(llm), arr, n, buf, size, False, True)
        if got < 0:
            size = -got + 16
            continue
        raw = buf.raw[:got]
        break
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def tokenize(llm: Llama, text: str, add_bos: bool) -> list[int]:
    return [int(t) for t in llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)]


def metadata_add_bos(llm: Llama) -> bool:
    return bool(llama_cpp.llama_vocab_get_add_bos(vocab_of(llm)))


def metadata_add_eos(llm: Llama) -> bool:
    return bool(llama_cpp.llama_vocab_get_add_eos(vocab_of(llm)))


def family_of(llm: Llama) -> str:
    arch = llm.metadata.get("general.architecture", "")
    return "gemma" if arch.startswith("gemma") else "chatml"


# ---------------------------------------------------------------------------
# Chat templates, rendered the way transformers' apply_chat_template does
# ---------------------------------------------------------------------------

def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def compile_template(source: str):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    # Fixed date so that templates using strftime_now stay reproducible.
    env.globals["strftime_now"] = lambda fmt: _dt.datetime(2025, 1, 1).strftime(fmt)
    return env.from_string(source)


def render_chat(template, messages, add_generation_prompt, bos_token, eos_token):
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                           bos_token=bos_token, eos_token=eos_token)


def render_builtin(tmpl: str, messages, add_ass: bool) -> str | None:
    """llama.cpp's own C++ formatter (llama_chat_apply_template), chosen by detecting tmpl,
    which is a Jinja source or a built-in name such as "chatml" / "gemma". None when
    llama.cpp does not recognise the template."""
    arr = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(m["role"].encode(), m["content"].encode()) for m in messages])
    size = 4096
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_chat_apply_template(tmpl.encode(), arr, len(messages), add_ass, buf, size)
        if n < 0:
            return None
        if n <= size:
            return buf.raw[:n].decode("utf-8")
        size = n + 1


# ---------------------------------------------------------------------------
# Fixture writers
# ---------------------------------------------------------------------------

def specials_present(llm: Llama, family: str) -> list[str]:
    """Family control tokens that tokenize to exactly one id, plus bos/eos text."""
    cands = list(corpus.SPECIALS[family])
    for tok in (llm.token_bos(), llm.token_eos()):
        if tok >= 0:
            cands.append(token_text(llm, tok))
    out: list[str] = []
    for s in cands:
        if s and s not in out and len(tokenize(llm, s, add_bos=False)) == 1:
            out.append(s)
    return out


def make_tokenize(llm: Llama, family: str) -> tuple[dict, dict]:
    specials = specials_present(llm, family)
    texts = corpus.model_corpus(family, specials)
    entries = []
    n_invalid = 0
    for i, text in enumerate(texts):
        flags = [False]
        # add_bos=True for every 4th string, the empty string and all special-token ones.
        if i % 4 == 0 or text == "" or any(s in text for s in specials):
            flags.append(True)
        for add_bos in flags:
            ids = tokenize(llm, text, add_bos)
            detok, valid = detokenize(llm, ids)
            n_invalid += 0 if valid else 1
            entries.append({
                "text": text,
                "add_bos": add_bos,
                "special": True,
                "ids": ids,
                "detokenized": detok,
                "detokenized_valid_utf8": valid,
            })
    bos, eos = llm.token_bos(), llm.token_eos()
    doc = {
        "model": None,  # filled by caller
        "tokenizer_model": llm.metadata.get("tokenizer.ggml.model"),
        "tokenizer_pre": llm.metadata.get("tokenizer.ggml.pre"),
        "n_vocab": llm.n_vocab(),
        "bos_id": bos,
        "eos_id": eos,
        "bos_text": token_text(llm, bos) if bos >= 0 else None,
        "eos_text": token_text(llm, eos) if eos >= 0 else None,
        "add_bos_default": metadata_add_bos(llm),
        "add_eos_default": metadata_add_eos(llm),
        "special_tokens_tested": {s: tokenize(llm, s, False)[0] for s in specials},
        "detokenize": "llama_detokenize(remove_special=false, unparse_special=true)",
        "entries": entries,
    }
    stats = {"strings": len(texts), "entries": len(entries),
             "with_bos": sum(e["add_bos"] for e in entries),
             "invalid_utf8_detok": n_invalid,
             "roundtrip_mismatch": sum(1 for e in entries if not e["add_bos"] and e["detokenized"] != e["text"])}
    return doc, stats


def clear_cache(llm: Llama) -> None:
    """Empty the KV cache and move its first free cell back to 0.

    `llm.reset()` alone only drops the cached tokens: the next prompt's keys then land in
    whichever cells come next, and since llama.cpp sums attention in blocks of cells, the
    logits would depend on what was evaluated before. Clearing makes every prompt's
    reference what a fresh llama.cpp context computes."""
    llm.reset()
    llm._ctx.kv_cache_clear()


def eval_fresh(llm: Llama, ids: list[int]) -> np.ndarray:
    """Evaluate ids from an empty cache; return the [len(ids), n_vocab] logits."""
    clear_cache(llm)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def top_ids(row: np.ndarray, k: int) -> list[int]:
    """Ids of the k largest logits, by logit descending then id ascending."""
    cand = np.argpartition(-row, k)[:k + 1] if row.size > k + 1 else np.arange(row.size)
    # Include every id tied with the k-th value so the tie-break by id is exact.
    kth = np.sort(row[cand])[::-1][min(k, len(cand)) - 1]
    cand = np.nonzero(row >= kth)[0]
    return sorted(cand.tolist(), key=lambda t: (-float(row[t]), t))[:k]


def logsumexp(row: np.ndarray) -> float:
    m = float(row.max())
    return m + float(np.log(np.exp((row - m).astype(np.float64)).sum()))


def make_logits(llm: Llama, template, bos_tok: str, eos_tok: str, top_k: int) -> tuple[dict, dict]:
    add_bos = metadata_add_bos(llm)
    prompts: list[tuple[str, str]] = [("raw", p) for p in corpus.LOGIT_PROMPTS]
    if template is not None:
        for msgs in corpus.LOGIT_CHATS:
            try:
                prompts.append(("chat", render_chat(template, msgs, False, bos_tok, eos_tok)))
            except jinja2.exceptions.TemplateError:
                pass
    out = []
    total = 0
    for kind, text in prompts:
        ids = tokenize(llm, text, add_bos)
        # A template that already writes bos_token would give a double BOS; drop one.
        if kind == "chat" and add_bos and len(ids) > 1 and ids[0] == ids[1] == llm.token_bos():
            ids = ids[1:]
        truncated = len(ids) > MAX_LOGIT_PROMPT_TOKENS
        ids = ids[:MAX_LOGIT_PROMPT_TOKENS]
        logits = eval_fresh(llm, ids)
        positions = []
        for row in logits:
            top = top_ids(row, top_k)
            positions.append({
                "top": [[int(t), round(float(row[t]), 4)] for t in top],
                "lse": round(logsumexp(row), 4),
            })
        total += len(ids)
        out.append({"kind": kind, "text": text, "truncated": truncated, "ids": ids,
                    "positions": positions})
    doc = {
        "model": None,
        "add_bos": add_bos,
        "top_k": top_k,
        "n_ctx": N_CTX,
        "n_batch": N_CTX,
        "note": "positions[i] are the logits predicting ids[i+1] (the last one predicts the "
                "first generated token); top sorted by logit desc; lse = log-sum-exp of the "
                "full row, so log p(t) = logit(t) - lse.",
        "prompts": out,
    }
    return doc, {"prompts": len(out), "positions": total}


def last_logits(llm: Llama) -> np.ndarray:
    """Logits of the last evaluated token, read from llama.cpp's buffer (works with
    logits_all=False, where llama-cpp-python no longer fills llm.scores)."""
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def greedy(llm: Llama, ids: list[int], n: int) -> tuple[list[int], list[float]]:
    clear_cache(llm)
    llm.eval(ids)
    gen: list[int] = []
    margins: list[float] = []
    for _ in range(n):
        row = last_logits(llm)
        top2 = np.argpartition(-row, 2)[:2]
        a, b = sorted((float(row[t]) for t in top2), reverse=True)
        tok = int(np.argmax(row))
        gen.append(tok)
        margins.append(round(a - b, 4))
        llm.eval([tok])
    return gen, margins


def make_greedy(llm: Llama, template, bos_tok: str, eos_tok: str) -> tuple[dict, dict]:
    add_bos = metadata_add_bos(llm)
    eos_ids = {llm.token_eos()}
    eot = llm.metadata.get("tokenizer.ggml.eot_token_id")
    if eot is not None:
        eos_ids.add(int(eot))
    prompts: list[tuple[str, str, list | None]] = [("raw", p, None) for p in corpus.GREEDY_PROMPTS]
    if template is not None:
        for msgs in corpus.GREEDY_CHATS:
            try:
                text = render_chat(template, msgs, True, bos_tok, eos_tok)
            except jinja2.exceptions.TemplateError:
                continue
            prompts.append(("chat", text, msgs))
    out = []
    for kind, text, msgs in prompts:
        ids = tokenize(llm, text, add_bos)
        if kind == "chat" and add_bos and len(ids) > 1 and ids[0] == ids[1] == llm.token_bos():
            ids = ids[1:]
        gen, margins = greedy(llm, ids, GREEDY_TOKENS)
        first_eos = next((i for i, t in enumerate(gen) if t in eos_ids), None)
        text_out, _ = detokenize(llm, gen)
        out.append({"kind": kind, "messages": msgs, "text": text, "prompt_ids": ids,
                    "continuation_ids": gen, "top1_top2_margin": margins,
                    "first_eos_index": first_eos, "continuation_text": text_out})
    doc = {
        "model": None,
        "add_bos": add_bos,
        "n_tokens": GREEDY_TOKENS,
        "eos_ids": sorted(eos_ids),
        "note": "argmax of the last logits at every step, EOS ignored (generation continues "
                "past it); no temperature, top-k, penalties. A small top1_top2_margin marks a "
                "near-tie where a correct implementation may legitimately diverge.",
        "prompts": out,
    }
    return doc, {"prompts": len(out), "chat": sum(1 for p in out if p["kind"] == "chat"),
                 "min_margin": min(min(p["top1_top2_margin"]) for p in out)}


def make_chat_template(llm: Llama, source: str | None, bos_tok: str, eos_tok: str,
                       family: str) -> tuple[dict, dict]:
    # Without a template in the GGUF, show what llama.cpp's built-in formatter for the
    # model family produces (llama.cpp itself would otherwise fall back to chatml).
    builtin = source if source is not None else ("gemma" if family == "gemma" else "chatml")
    cases = []
    template = compile_template(source) if source is not None else None
    for msgs in corpus.TEMPLATE_CASES:
        for agp in (False, True):
            rendered, err = None, None
            if template is not None:
                try:
                    rendered = render_chat(template, msgs, agp, bos_tok, eos_tok)
                except jinja2.exceptions.TemplateError as e:
                    err = str(e)
            cases.append({"messages": msgs, "add_generation_prompt": agp,
                          "rendered": rendered, "error": err,
                          "llama_cpp_builtin": render_builtin(builtin, msgs, agp)})
    doc = {
        "model": None,
        "chat_template": source,
        "bos_token": bos_tok,
        "eos_token": eos_tok,
        "renderer": "jinja2 %s ImmutableSandboxedEnvironment(trim_blocks=True, "
                    "lstrip_blocks=True, loopcontrols), raise_exception, tojson "
                    "(ensure_ascii=False), like transformers' apply_chat_template" % jinja2.__version__,
        "llama_cpp_builtin_template": builtin if source is None else "detected from chat_template",
        "llama_cpp_builtin_note": "llama_chat_apply_template output (llama.cpp's C++ "
                                  "formatter; null if it does not recognise the template). "
                                  "It does not run Jinja, so it may differ from 'rendered'.",
        "cases": cases,
    }
    return doc, {"cases": len(cases), "errors": sum(1 for c in cases if c["error"]),
                 "has_template": source is not None,
                 "builtin_differs": sum(1 for c in cases if c["rendered"] is not None
                                        and c["rendered"] != c["llama_cpp_builtin"])}


# ---------------------------------------------------------------------------

def write_json(path: Path, doc: dict) -> int:
    text = json.dumps(doc, ensure_ascii=False, indent=None, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")
    return path.stat().st_size


PARTS = ("tokenize", "chat_template", "logits", "greedy")


def run_model(name: str, path: str, out_root: Path, top_k: int, parts: set[str],
              threads: int, argv: list[str]) -> dict:
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    # A partial run (--only) keeps the other parts' summary from the previous meta.json.
    old_meta = {}
    if (out / "meta.json").exists():
        old_meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    summary: dict = dict(old_meta.get("summary", {})) if parts != set(PARTS) else {}
    sizes: dict = dict(old_meta.get("files", {})) if parts != set(PARTS) else {}
    t0 = time.time()

    # Tokenizer only.
    voc = Llama(model_path=path, vocab_only=True, verbose=False)
    family = family_of(voc)
    tok_doc, tok_stats = make_tokenize(voc, family)
    tok_doc["model"] = name
    if "tokenize" in parts:
        summary["tokenize"] = tok_stats
        sizes["tokenize.json"] = write_json(out / "tokenize.json", tok_doc)

    source = voc.metadata.get("tokenizer.chat_template")
    bos_tok = tok_doc["bos_text"] or ""
    eos_tok = tok_doc["eos_text"] or ""
    if "chat_template" in parts:
        ct_doc, summary["chat_template"] = make_chat_template(voc, source, bos_tok, eos_tok, family)
        ct_doc["model"] = name
        sizes["chat_template.json"] = write_json(out / "chat_template.json", ct_doc)
    arch = voc.metadata.get("general.architecture")
    del voc

    # Full model.
    template = compile_template(source) if source else None
    if "logits" in parts:
        llm = Llama(model_path=path, logits_all=True, n_ctx=N_CTX, n_threads=threads,
                    n_threads_batch=threads, n_batch=N_CTX, verbose=False, **EXACT_ATTENTION)
        lg_doc, summary["logits"] = make_logits(llm, template, bos_tok, eos_tok, top_k)
        lg_doc["model"] = name
        sizes["logits.json"] = write_json(out / "logits.json", lg_doc)
        del llm
    if "greedy" in parts:
        # logits_all=False: one output row per eval, so decoding is not slowed by copies.
        llm = Llama(model_path=path, logits_all=False, n_ctx=N_CTX, n_threads=threads,
                    n_threads_batch=threads, n_batch=N_CTX, verbose=False, **EXACT_ATTENTION)
        gr_doc, summary["greedy"] = make_greedy(llm, template, bos_tok, eos_tok)
        gr_doc["model"] = name
        sizes["greedy.json"] = write_json(out / "greedy.json", gr_doc)
        del llm

    # Parts kept from an earlier run but missing from the summary: count from the files.
    if "logits" not in summary and (out / "logits.json").exists():
        doc = json.loads((out / "logits.json").read_text(encoding="utf-8"))
        summary["logits"] = {"prompts": len(doc["prompts"]),
                             "positions": sum(len(p["ids"]) for p in doc["prompts"])}
        sizes["logits.json"] = (out / "logits.json").stat().st_size

    meta = {
        "model": name,
        "model_file": os.path.basename(path),
        "model_sha256": sha256_file(path),
        "architecture": arch,
        "llama_cpp_python_version": llama_cpp.__version__,
        "jinja2_version": jinja2.__version__,
        "numpy_version": np.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["tools/make_fixtures.py"] + argv),
        "settings": {"n_ctx": N_CTX, "n_batch": N_CTX, "n_threads": threads, "logits_top_k": top_k,
                     "greedy_tokens": GREEDY_TOKENS,
                     "max_logit_prompt_tokens": MAX_LOGIT_PROMPT_TOKENS},
        "files": sizes,
        "summary": summary,
    }
    if parts != set(PARTS) and old_meta:
        meta["previous_runs"] = old_meta.get("previous_runs", []) + [
            {"date": old_meta.get("date"), "command": old_meta.get("command")}]
    write_json(out / "meta.json", meta)
    summary = dict(summary)
    summary["sizes"] = sizes
    summary["seconds"] = round(time.time() - t0, 1)
    return summary


def print_summary(name: str, s: dict) -> None:
    print(f"== {name} ({s['seconds']} s)")
    if "tokenize" in s:
        t = s["tokenize"]
        print(f"  tokenize:      {t['strings']} strings, {t['entries']} entries "
              f"({t['with_bos']} with BOS), detok round-trip mismatches {t['roundtrip_mismatch']}, "
              f"invalid UTF-8 detok {t['invalid_utf8_detok']}")
    if "logits" in s:
        print(f"  logits:        {s['logits']['prompts']} prompts, {s['logits']['positions']} positions")
        if s["logits"]["positions"] < 2000:
            print(f"  WARNING: only {s['logits']['positions']} logit positions (< 2000)")
    if "greedy" in s:
        g = s["greedy"]
        print(f"  greedy:        {g['prompts']} prompts ({g['chat']} chat), "
              f"min top1-top2 margin {g['min_margin']}")
    if "chat_template" in s:
        c = s["chat_template"]
        print(f"  chat_template: {c['cases']} cases, template in GGUF: {c.get('has_template')}, "
              f"{c['errors']} raised, llama.cpp built-in differs in {c.get('builtin_differs')}")
    for f, n in sorted(s["sizes"].items()):
        print(f"  {f:<20} {n / 1024:8.1f} KiB")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                    help="model name (output folder) and GGUF path; repeatable")
    ap.add_argument("--out", default="fixtures/llama.cpp", help="output root folder")
    ap.add_argument("--top-k", type=int, default=20, help="logits kept per position")
    ap.add_argument("--threads", type=int, default=2,
                    help="llama.cpp threads (results do not depend on it; on a busy machine "
                         "1 avoids spin-barrier stalls)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                    help="regenerate only these files (default: all)")
    args = ap.parse_args(argv)

    out_root = Path(args.out)
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            ap.error(f"--model wants NAME=PATH, got {spec!r}")
        if not os.path.isfile(path):
            ap.error(f"model file not found: {path}")
        s = run_model(name, path, out_root, args.top_k, set(args.only), args.threads, argv)
        print_summary(name, s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
