//! The Hugging Face safetensors path against the GGUF path on real weights.
//!
//! SmolLM2-135M's GGUF is turned back into a Hugging Face model directory — every tensor
//! dequantised, renamed with `hf_tensor_name`, the Q/K rows taken out of llama.cpp's rope
//! order, a `config.json` written from the GGUF metadata — and loaded through
//! `ModelConfig::from_hf_json` + `WeightSource::open_safetensors` + `Decoder::load`. Its
//! next-token logits must match the GGUF model's. Two references are used:
//!
//! - the GGUF model as `Model::load` builds it (quantised weights; candle multiplies them
//!   with 8-bit-quantised activations), which is what the brief asks to agree with;
//! - a "dense twin" of it: the same decoder with every quantised weight dequantised in
//!   memory. It still runs the GGUF layout (permuted Q/K, interleaved rope), so against it
//!   only the layout conversion, the name mapping and the config reading differ, and the
//!   f32 run must agree to float rounding. That is the sharp test; a wrong permutation or a
//!   swapped tensor cannot hide in quantisation noise there.
//!
//! A negative control writes the directory *without* undoing the permutation and checks
//! the comparison then fails, so the test is known to be able to fail.
//!
//! The `from_hf_json` tests at the end cover the transformers 5 spellings, Qwen2 and
//! Gemma 3 configs.

mod common;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use common::{fixture, ids, model, model_path, GEMMA3, SMOLLM2};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use vigil_model::config::{Activation, RopeLayout, RopeScaling};
use vigil_model::layers::{Embedding, Linear};
use vigil_model::weights::hf_tensor_name;
use vigil_model::{Decoder, Family, ModelConfig, Weight, WeightSource};

// ---------------------------------------------------------------------------------------
// Building a Hugging Face directory from the GGUF
// ---------------------------------------------------------------------------------------

/// The SmolLM2 GGUF, read once: its metadata and every tensor dequantised to f32, by GGUF
/// name.
struct GgufDump {
    metadata: HashMap<String, gguf_file::Value>,
    tensors: Vec<(String, Tensor)>,
}

fn gguf_dump() -> &'static GgufDump {
    static DUMP: OnceLock<GgufDump> = OnceLock::new();
    DUMP.get_or_init(|| {
        let path = model_path(SMOLLM2);
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
        names.sort();
        let tensors = names
            .into_iter()
            .map(|name| {
                let q = content.tensor(&mut file, &name, &Device::Cpu).unwrap();
                let t = q.dequantize(&Device::Cpu).unwrap();
                (name, t)
            })
            .collect();
        GgufDump {
            metadata: content.metadata,
            tensors,
        }
    })
}

fn md_u64(md: &HashMap<String, gguf_file::Value>, key: &str) -> u64 {
    md.get(key)
        .unwrap_or_else(|| panic!("GGUF has no {key}"))
        .to_u64()
        .unwrap()
}

fn md_f32(md: &HashMap<String, gguf_file::Value>, key: &str) -> f32 {
    md.get(key)
        .unwrap_or_else(|| panic!("GGUF has no {key}"))
        .to_f32()
        .unwrap()
}

/// A `config.json` as transformers 4 writes it for SmolLM2, values from the GGUF metadata.
/// `head_dim` is left out on purpose (SmolLM2's own config has none), so the derivation
/// hidden / heads is exercised.
fn hf_config_json(md: &HashMap<String, gguf_file::Value>, dtype: &str) -> Json {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": md_u64(md, "llama.embedding_length"),
        "intermediate_size": md_u64(md, "llama.feed_forward_length"),
        "num_hidden_layers": md_u64(md, "llama.block_count"),
        "num_attention_heads": md_u64(md, "llama.attention.head_count"),
        "num_key_value_heads": md_u64(md, "llama.attention.head_count_kv"),
        "max_position_embeddings": md_u64(md, "llama.context_length"),
        "vocab_size": md_u64(md, "llama.vocab_size"),
        "rms_norm_eps": md_f32(md, "llama.attention.layer_norm_rms_epsilon") as f64,
        "rope_theta": md_f32(md, "llama.rope.freq_base") as f64,
        "rope_scaling": null,
        "tie_word_embeddings": true,
        "torch_dtype": dtype,
    })
}

/// Inverse of llama.cpp's Q/K permutation. `convert_hf_to_gguf.py` does, per tensor,
///
/// ```text
/// gguf = hf.reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2).reshape(out, in)
/// ```
///
/// so GGUF row `h·hd + 2j + s` holds HF row `h·hd + s·hd/2 + j` (s ∈ {0, 1}): each HF
/// half-split pair (j, j + hd/2) becomes the adjacent GGUF pair (2j, 2j+1). Undoing it
/// reads the GGUF rows as `(n_head, hd/2, 2, in)` and swaps the middle axes back.
/// `n_head` is the KV head count for `attn_k` (the converter passes `n_head_kv` there).
fn unpermute_rope_rows(w: &Tensor, n_head: usize) -> Tensor {
    let (out, inp) = w.dims2().unwrap();
    let hd = out / n_head;
    w.reshape((n_head, hd / 2, 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

/// How to write the directory.
#[derive(Clone, Copy)]
struct Layout {
    dtype: DType,
    shards: usize,
    /// false only for the negative control.
    unpermute_qk: bool,
}

/// Writes `model.safetensors` (or `shards` files plus `model.safetensors.index.json`) and
/// `config.json`. Returns the byte size of the tensors written.
fn write_hf_dir(dir: &Path, layout: Layout) -> usize {
    let dump = gguf_dump();
    let n_head = md_u64(&dump.metadata, "llama.attention.head_count") as usize;
    let n_kv = md_u64(&dump.metadata, "llama.attention.head_count_kv") as usize;
    let mut hf: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in &dump.tensors {
        // Every tensor of a Llama GGUF must have a Hugging Face name; a gap in the table
        // would otherwise show up only as a confusing "tensor missing" later.
        let hf_name = hf_tensor_name(name, Family::Llama)
            .unwrap_or_else(|| panic!("no Hugging Face name for GGUF tensor {name}"));
        let t = match name.rsplit_once(".attn_") {
            Some((_, "q.weight")) if layout.unpermute_qk => unpermute_rope_rows(t, n_head),
            Some((_, "k.weight")) if layout.unpermute_qk => unpermute_rope_rows(t, n_kv),
            _ => t.clone(),
        };
        hf.push((hf_name, t.to_dtype(layout.dtype).unwrap()));
    }
    let bytes: usize = hf
        .iter()
        .map(|(_, t)| t.elem_count() * layout.dtype.size_in_bytes())
        .sum();
    if layout.shards == 1 {
        let map: HashMap<String, Tensor> = hf.into_iter().collect();
        candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
    } else {
        // Shards of interleaved names (not contiguous ranges), so each file holds pieces
        // of every layer and the index really has to be followed.
        let mut weight_map = serde_json::Map::new();
        let mut shards: Vec<HashMap<String, Tensor>> = vec![HashMap::new(); layout.shards];
        for (i, (name, t)) in hf.into_iter().enumerate() {
            let s = i % layout.shards;
            let file = format!("model-{:05}-of-{:05}.safetensors", s + 1, layout.shards);
            weight_map.insert(name.clone(), Json::from(file));
            shards[s].insert(name, t);
        }
        for (s, map) in shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{:05}.safetensors", s + 1, layout.shards);
            candle_core::safetensors::save(map, dir.join(file)).unwrap();
        }
        let index = json!({"metadata": {"total_size": bytes}, "weight_map": weight_map});
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::to_string_pretty(&index).unwrap(),
        )
        .unwrap();
        assert!(!dir.join("model.safetensors").exists());
    }
    let dtype_name = match layout.dtype {
        DType::F32 => "float32",
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        other => panic!("unexpected dtype {other:?}"),
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&hf_config_json(&dump.metadata, dtype_name)).unwrap(),
    )
    .unwrap();
    bytes
}

/// What `Model::load` does for a Hugging Face directory, minus the tokenizer (the
/// directory has no tokenizer.json).
fn load_hf_decoder(dir: &Path) -> Decoder {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let cfg = ModelConfig::from_hf_json(&serde_json::from_str(&text).unwrap()).unwrap();
    let mut src = WeightSource::open_safetensors(dir, cfg.family).unwrap();
    Decoder::load(cfg, &mut src).unwrap()
}

// ---------------------------------------------------------------------------------------
// Running and comparing
// ---------------------------------------------------------------------------------------

/// Every fifth fixture prompt (raw code and chat turns; ~600 positions).
fn prompts() -> Vec<Vec<u32>> {
    let fx = fixture(SMOLLM2, "logits.json");
    fx["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .step_by(5)
        .map(|p| ids(&p["ids"]))
        .collect()
}

/// `[prompt][position][vocab]` next-token logits.
type Logits = Vec<Vec<Vec<f32>>>;

fn run(decoder: &Decoder, prompts: &[Vec<u32>]) -> Logits {
    prompts
        .iter()
        .map(|ids| common::logits_one(decoder, ids))
        .collect()
}

/// The GGUF decoder with every quantised weight replaced by its dequantised f32 copy.
fn dense_twin(quantised: &Decoder) -> Decoder {
    let mut d = quantised.clone();
    let densify = |l: &mut Linear| {
        *l = Linear::new(Weight::Dense(l.dense_weight().unwrap()), l.bias.clone()).unwrap();
    };
    for b in &mut d.blocks {
        for l in [
            &mut b.attn.q_proj,
            &mut b.attn.k_proj,
            &mut b.attn.v_proj,
            &mut b.attn.o_proj,
            &mut b.mlp.gate_proj,
            &mut b.mlp.up_proj,
            &mut b.mlp.down_proj,
        ] {
            densify(l);
        }
    }
    if !matches!(d.embed, Embedding::Dense(_)) {
        d.embed = Embedding::Dense(d.embed.weight().to_dense().unwrap());
    }
    assert!(d.config.tie_embeddings, "SmolLM2 ties its output head");
    d.lm_head = Linear::new(d.embed.weight(), None).unwrap();
    d
}

struct References {
    prompts: Vec<Vec<u32>>,
    /// The GGUF model as loaded (quantised matmuls).
    gguf: Logits,
    /// Its dequantised twin (f32 matmuls, GGUF layout).
    twin: Logits,
}

fn references() -> &'static References {
    static REFS: OnceLock<References> = OnceLock::new();
    REFS.get_or_init(|| {
        let prompts = prompts();
        let quantised = &model(SMOLLM2).decoder;
        let gguf = run(quantised, &prompts);
        let twin = run(&dense_twin(quantised), &prompts);
        References {
            prompts,
            gguf,
            twin,
        }
    })
}

#[derive(Debug)]
struct Agreement {
    positions: usize,
    top1_same: usize,
    max_abs: f32,
    mean_abs: f64,
    /// Where the top-1 tokens differ: the largest margin, in `a`'s logits, by which `a`
    /// preferred its token over `b`'s. Noise flips near-ties only; a real defect flips
    /// confident predictions too.
    max_flip_margin: f32,
}

impl Agreement {
    fn top1(&self) -> f64 {
        self.top1_same as f64 / self.positions as f64
    }
}

/// Top-1 agreement and |difference| over every logit of every position.
fn compare(a: &Logits, b: &Logits) -> Agreement {
    let (mut positions, mut top1_same, mut max_abs, mut sum, mut n) = (0, 0, 0f32, 0f64, 0usize);
    let mut max_flip_margin = 0f32;
    for (pa, pb) in a.iter().zip(b) {
        assert_eq!(pa.len(), pb.len());
        for (ra, rb) in pa.iter().zip(pb) {
            assert_eq!(ra.len(), rb.len());
            positions += 1;
            let (ta, tb) = (
                vigil_model::sampling::argmax(ra) as usize,
                vigil_model::sampling::argmax(rb) as usize,
            );
            if ta == tb {
                top1_same += 1;
            } else {
                max_flip_margin = max_flip_margin.max(ra[ta] - ra[tb]);
            }
            for (x, y) in ra.iter().zip(rb) {
                let d = (x - y).abs();
                assert!(d.is_finite(), "non-finite logit");
                max_abs = max_abs.max(d);
                sum += d as f64;
                n += 1;
            }
        }
    }
    Agreement {
        positions,
        top1_same,
        max_abs,
        mean_abs: sum / n as f64,
        max_flip_margin,
    }
}

fn report(label: &str, a: &Agreement) {
    eprintln!(
        "{label}: {} positions, top-1 agreement {:.2}% ({} differ, largest margin flipped {:.3}), \
         |logit diff| max {:.5}, mean {:.6}",
        a.positions,
        a.top1() * 100.0,
        a.positions - a.top1_same,
        a.max_flip_margin,
        a.max_abs,
        a.mean_abs
    );
}

/// Writes, loads and compares one layout; returns (vs quantised GGUF, vs dense twin).
fn check_layout(layout: Layout) -> (Agreement, Agreement) {
    let refs = references();
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), layout);
    let hf = load_hf_decoder(dir.path());
    // The directory's config must have been read as Hugging Face layout; otherwise the
    // permutation check below would be vacuous.
    assert_eq!(hf.config.rope_layout, RopeLayout::HalfSplit);
    let ours = run(&hf, &refs.prompts);
    (compare(&ours, &refs.gguf), compare(&ours, &refs.twin))
}

// Bounds. Logits of this model range over roughly ±40.
//
// Against the dense twin only summation order and the rope formula (interleaved vs
// half-split: the same products) differ. In f32 that must be float rounding (measured: max
// 1.4e-4, top-1 100%); f16 / bf16 files add their own weight rounding.
//
// Against the quantised GGUF path the bound is set by candle rounding activations to 8 bits
// (per block of 32) before every quantised matmul — 30 layers × 7 + the output head — not by
// the loader. Measured on these prompts: top-1 95.2%, |diff| mean 0.20, max 2.6, every
// flipped position a near-tie (margin ≤ 0.67). The brief asked for ≥ 99% top-1 here; that is
// not reachable by correct code on this model, which was checked per matmul: the output head
// on the same input differs from its dequantised weights by up to 0.46, and by 5e-5 once the
// input is rounded to Q8_0 first; a Q4_1 projection by 1.2% relative, 0.06% after rounding.
// So the quantised comparison asserts what noise cannot produce but a defect would: no
// confident prediction flipped, and a mean difference at the noise level. (The negative
// control below differs by up to 45 with 72% of predictions flipped.)

const TWIN_F32_MAX_ABS: f32 = 2e-3;
const MIN_TOP1: f64 = 0.99;
const GGUF_MIN_TOP1: f64 = 0.93;
const GGUF_MAX_FLIP_MARGIN: f32 = 1.5;
const GGUF_MAX_MEAN_ABS: f64 = 0.3;
const GGUF_MAX_ABS: f32 = 4.0;

/// The checks against the quantised GGUF path (see above).
fn assert_matches_quantised(label: &str, a: &Agreement) {
    assert!(a.top1() >= GGUF_MIN_TOP1, "{label}: {a:?}");
    assert!(a.max_flip_margin <= GGUF_MAX_FLIP_MARGIN, "{label}: {a:?}");
    assert!(a.mean_abs <= GGUF_MAX_MEAN_ABS, "{label}: {a:?}");
    assert!(a.max_abs <= GGUF_MAX_ABS, "{label}: {a:?}");
}

#[test]
fn f32_single_file_matches_gguf() {
    let (gguf, twin) = check_layout(Layout {
        dtype: DType::F32,
        shards: 1,
        unpermute_qk: true,
    });
    report("f32 safetensors vs GGUF (quantised)", &gguf);
    report("f32 safetensors vs GGUF dequantised twin", &twin);
    assert!(twin.positions >= 400, "only {} positions", twin.positions);
    assert!(
        twin.max_abs <= TWIN_F32_MAX_ABS,
        "f32 safetensors differ from the dequantised GGUF by {} (> {TWIN_F32_MAX_ABS})",
        twin.max_abs
    );
    assert!(twin.top1() >= 0.998, "top-1 vs twin {:.4}", twin.top1());
    assert_matches_quantised("vs quantised GGUF", &gguf);
}

#[test]
fn f16_two_shards_match_gguf() {
    let (gguf, twin) = check_layout(Layout {
        dtype: DType::F16,
        shards: 2,
        unpermute_qk: true,
    });
    report("f16 2-shard safetensors vs GGUF (quantised)", &gguf);
    report("f16 2-shard safetensors vs GGUF dequantised twin", &twin);
    // f16 keeps 11 significant bits of each dequantised weight: a small, real rounding.
    assert!(twin.top1() >= MIN_TOP1, "top-1 vs twin {:.4}", twin.top1());
    assert!(twin.max_abs <= 0.25, "max |diff| vs twin {}", twin.max_abs);
    assert!(twin.max_flip_margin <= 0.25, "{twin:?}");
    assert_matches_quantised("vs quantised GGUF", &gguf);
}

#[test]
fn bf16_single_file_matches_gguf() {
    let (gguf, twin) = check_layout(Layout {
        dtype: DType::BF16,
        shards: 1,
        unpermute_qk: true,
    });
    report("bf16 safetensors vs GGUF (quantised)", &gguf);
    report("bf16 safetensors vs GGUF dequantised twin", &twin);
    // bf16 keeps 8 significant bits: about as coarse as the 8-bit activations.
    assert!(twin.top1() >= MIN_TOP1, "top-1 vs twin {:.4}", twin.top1());
    assert!(twin.max_abs <= 1.0, "max |diff| vs twin {}", twin.max_abs);
    assert!(twin.max_flip_margin <= GGUF_MAX_FLIP_MARGIN, "{twin:?}");
    assert_matches_quantised("vs quantised GGUF", &gguf);
}

/// Negative control: keep llama.cpp's Q/K row order in the Hugging Face files. The loader
/// then applies half-split rope to interleaved rows, and the comparison must fail loudly —
/// which shows the checks above can fail and that the permutation is what they verify.
#[test]
fn permuted_qk_rows_are_detected() {
    let (gguf, twin) = check_layout(Layout {
        dtype: DType::F32,
        shards: 1,
        unpermute_qk: false,
    });
    report("NEGATIVE CONTROL (Q/K left permuted) vs twin", &twin);
    report(
        "NEGATIVE CONTROL (Q/K left permuted) vs quantised GGUF",
        &gguf,
    );
    assert!(twin.max_abs > 50.0 * TWIN_F32_MAX_ABS, "{twin:?}");
    assert!(twin.top1() < MIN_TOP1, "{twin:?}");
    // Each of the quantised-path criteria alone rejects it.
    assert!(gguf.top1() < GGUF_MIN_TOP1, "{gguf:?}");
    assert!(gguf.max_flip_margin > GGUF_MAX_FLIP_MARGIN, "{gguf:?}");
    assert!(gguf.mean_abs > GGUF_MAX_MEAN_ABS, "{gguf:?}");
    assert!(gguf.max_abs > GGUF_MAX_ABS, "{gguf:?}");
}

/// The inverse permutation, checked row by row against the index formula derived from
/// llama.cpp's converter (see `unpermute_rope_rows`), for Q (9 heads) and K (3 heads)
/// shapes of SmolLM2.
#[test]
fn unpermute_inverts_llama_cpp_permute() {
    for n_head in [9usize, 3] {
        let hd = 64;
        let out = n_head * hd;
        // Row r of the "GGUF" matrix is filled with r, so the result names its source.
        let gguf: Vec<f32> = (0..out).flat_map(|r| [r as f32; 2]).collect();
        let gguf = Tensor::from_vec(gguf, (out, 2), &Device::Cpu).unwrap();
        let hf = unpermute_rope_rows(&gguf, n_head).to_vec2::<f32>().unwrap();
        for h in 0..n_head {
            for s in 0..2 {
                for j in 0..hd / 2 {
                    let hf_row = h * hd + s * hd / 2 + j;
                    let gguf_row = h * hd + 2 * j + s;
                    assert_eq!(hf[hf_row], vec![gguf_row as f32; 2], "head {h} s {s} j {j}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------------------

/// Every field that changes what the decoder computes, except the rope layout (which
/// legitimately differs between a `llama` GGUF and Hugging Face weights) and the norm
/// offset (Gemma's safetensors store w − 1, its GGUF w).
fn assert_same_architecture(a: &ModelConfig, b: &ModelConfig) {
    assert_eq!(a.family, b.family);
    assert_eq!(a.hidden_size, b.hidden_size, "hidden_size");
    assert_eq!(
        a.intermediate_size, b.intermediate_size,
        "intermediate_size"
    );
    assert_eq!(a.num_layers, b.num_layers, "num_layers");
    assert_eq!(a.num_heads, b.num_heads, "num_heads");
    assert_eq!(a.num_kv_heads, b.num_kv_heads, "num_kv_heads");
    assert_eq!(a.head_dim, b.head_dim, "head_dim");
    assert_eq!(a.vocab_size, b.vocab_size, "vocab_size");
    assert_eq!(a.max_position, b.max_position, "max_position");
    // GGUF stores eps as f32; JSON as a decimal. Equal to f32 precision.
    assert!(
        ((a.rms_norm_eps - b.rms_norm_eps) / b.rms_norm_eps).abs() < 1e-6,
        "rms_norm_eps {} vs {}",
        a.rms_norm_eps,
        b.rms_norm_eps
    );
    assert_eq!(a.rope_theta, b.rope_theta, "rope_theta");
    assert_eq!(a.rope_theta_local, b.rope_theta_local, "rope_theta_local");
    assert_eq!(a.rope_scaling, b.rope_scaling, "rope_scaling");
    assert_eq!(a.activation, b.activation, "activation");
    assert_eq!(a.qkv_bias, b.qkv_bias, "qkv_bias");
    assert_eq!(a.qk_norm, b.qk_norm, "qk_norm");
    assert_eq!(a.sandwich_norms, b.sandwich_norms, "sandwich_norms");
    assert_eq!(a.embed_scale, b.embed_scale, "embed_scale");
    assert_eq!(a.attn_scale, b.attn_scale, "attn_scale");
    assert_eq!(a.sliding_window, b.sliding_window, "sliding_window");
    assert_eq!(a.layer_is_local, b.layer_is_local, "layer_is_local");
    assert_eq!(a.tie_embeddings, b.tie_embeddings, "tie_embeddings");
    assert_eq!(
        a.final_logit_softcap, b.final_logit_softcap,
        "final_logit_softcap"
    );
}

#[test]
fn written_config_json_reads_as_the_gguf_config() {
    let gguf = &model(SMOLLM2).decoder.config;
    let hf = ModelConfig::from_hf_json(&hf_config_json(&gguf_dump().metadata, "float32")).unwrap();
    assert_same_architecture(&hf, gguf);
    assert_eq!(gguf.rope_layout, RopeLayout::Interleaved);
    assert_eq!(hf.rope_layout, RopeLayout::HalfSplit);
    assert_eq!(hf.norm_weight_offset, 0.0);
    // The values themselves, so the comparison is not two equal wrongs.
    assert_eq!(
        (
            hf.num_layers,
            hf.num_heads,
            hf.num_kv_heads,
            hf.head_dim,
            hf.hidden_size
        ),
        (30, 9, 3, 64, 576)
    );
    assert_eq!(hf.rope_theta, 100_000.0);
    assert!(hf.tie_embeddings);
}

/// SmolLM2's config as transformers 5 writes it: `rope_parameters` instead of a top-level
/// `rope_theta`, `dtype` instead of `torch_dtype`.
#[test]
fn transformers5_llama_config() {
    let mut cfg = hf_config_json(&gguf_dump().metadata, "bfloat16");
    let obj = cfg.as_object_mut().unwrap();
    obj.remove("rope_theta");
    obj.remove("rope_scaling");
    obj.remove("torch_dtype");
    obj.insert("dtype".into(), json!("bfloat16"));
    obj.insert("transformers_version".into(), json!("5.0.0"));
    cfg["rope_parameters"] = json!({"rope_theta": 100000.0, "rope_type": "default"});
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_same_architecture(&c, &model(SMOLLM2).decoder.config);
    assert_eq!(c.rope_theta, 100_000.0);
    assert_eq!(c.rope_scaling, RopeScaling::None);

    // Llama 3.1-style scaling inside rope_parameters.
    cfg["rope_parameters"] = json!({
        "rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192
    });
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_eq!(c.rope_theta, 500_000.0);
    assert_eq!(
        c.rope_scaling,
        RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position: 8192
        }
    );

    // An unknown rope type must be refused, not silently run as plain rope.
    cfg["rope_parameters"] = json!({"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0});
    let err = ModelConfig::from_hf_json(&cfg).unwrap_err().to_string();
    assert!(err.contains("yarn"), "{err}");
}

/// Qwen/Qwen2.5-0.5B's public config.json.
#[test]
fn qwen2_config() {
    let cfg = json!({
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_cache": true,
        "use_mrope": false,
        "use_sliding_window": false,
        "vocab_size": 151936
    });
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_eq!(c.family, Family::Qwen2);
    assert_eq!(
        (c.hidden_size, c.intermediate_size, c.num_layers),
        (896, 4864, 24)
    );
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (14, 2, 64));
    assert_eq!((c.vocab_size, c.max_position), (151_936, 32_768));
    assert_eq!(c.rms_norm_eps, 1e-6);
    assert_eq!(c.rope_theta, 1e6);
    assert_eq!(c.rope_theta_local, 1e6);
    assert_eq!(c.rope_layout, RopeLayout::HalfSplit);
    assert_eq!(c.activation, Activation::Silu);
    assert!(c.qkv_bias, "Qwen2 has q/k/v biases");
    assert!(!c.qk_norm && !c.sandwich_norms);
    assert_eq!(c.embed_scale, None);
    assert_eq!(c.attn_scale, 1.0 / 8.0);
    // `sliding_window` is set but `use_sliding_window` is false: no layer is windowed.
    assert_eq!(c.sliding_window, None);
    assert!(c.layer_is_local.iter().all(|l| !l));
    assert!(c.tie_embeddings);
    assert_eq!(c.norm_weight_offset, 0.0);
}

/// google/gemma-3-270m's public config.json (transformers 4.55 spelling).
fn gemma3_270m_config() -> Json {
    let mut layer_types = Vec::new();
    for i in 0..18 {
        layer_types.push(if (i + 1) % 6 == 0 {
            "full_attention"
        } else {
            "sliding_attention"
        });
    }
    json!({
        "_sliding_window_pattern": 6,
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": false,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": null,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "final_logit_softcapping": null,
        "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 640,
        "initializer_range": 0.02,
        "intermediate_size": 2048,
        "layer_types": layer_types,
        "max_position_embeddings": 32768,
        "model_type": "gemma3_text",
        "num_attention_heads": 4,
        "num_hidden_layers": 18,
        "num_key_value_heads": 1,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 256,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": null,
        "rope_theta": 1000000.0,
        "sliding_window": 512,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.55.0.dev0",
        "use_bidirectional_attention": false,
        "use_cache": true,
        "vocab_size": 262144
    })
}

fn check_gemma3_270m(c: &ModelConfig) {
    assert_eq!(c.family, Family::Gemma3);
    assert_eq!(
        (c.hidden_size, c.intermediate_size, c.num_layers),
        (640, 2048, 18)
    );
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (4, 1, 256));
    assert_eq!(c.rope_theta, 1e6);
    assert_eq!(c.rope_theta_local, 1e4);
    assert_eq!(c.sliding_window, Some(512));
    let expect_local: Vec<bool> = (0..18).map(|i| (i + 1) % 6 != 0).collect();
    assert_eq!(c.layer_is_local, expect_local);
    assert_eq!(c.attn_scale, 1.0 / 16.0);
    assert_eq!(c.embed_scale, Some((640f32).sqrt()));
    assert_eq!(c.activation, Activation::GeluTanh);
    assert!(c.qk_norm && c.sandwich_norms && !c.qkv_bias);
    assert!(c.tie_embeddings);
    assert_eq!(c.final_logit_softcap, None);
    assert_eq!(c.rope_scaling, RopeScaling::None);
}

/// The Gemma 3 270M config.json reads as the values it states, and as the same
/// architecture that the real Gemma 3 GGUF's metadata describes.
#[test]
fn gemma3_config_matches_its_gguf() {
    let hf = ModelConfig::from_hf_json(&gemma3_270m_config()).unwrap();
    check_gemma3_270m(&hf);
    // Gemma's safetensors norms hold w − 1.
    assert_eq!(hf.norm_weight_offset, 1.0);

    let path = model_path(GEMMA3);
    let src = WeightSource::open_gguf(&path).unwrap();
    let content = src.gguf_content().unwrap();
    let gguf = ModelConfig::from_gguf(content, |n| content.tensor_infos.contains_key(n)).unwrap();
    assert_same_architecture(&hf, &gguf);
    assert_eq!(gguf.norm_weight_offset, 0.0);
    assert_eq!(gguf.rope_layout, hf.rope_layout);

    // `layer_types` is what decides which layers are windowed, not the default 5:1
    // pattern: a config that says otherwise must be followed.
    let mut cfg = gemma3_270m_config();
    let alternating: Vec<&str> = (0..18)
        .map(|i| {
            if i % 2 == 0 {
                "sliding_attention"
            } else {
                "full_attention"
            }
        })
        .collect();
    cfg["layer_types"] = json!(alternating);
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_eq!(
        c.layer_is_local,
        (0..18).map(|i| i % 2 == 0).collect::<Vec<_>>()
    );

    // query_pre_attn_scalar, not head_dim, sets the attention scale.
    cfg["query_pre_attn_scalar"] = json!(144);
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_eq!(c.attn_scale, 1.0 / 12.0);

    // The multimodal wrapper nests the same decoder under text_config.
    let wrapped = json!({"model_type": "gemma3", "text_config": gemma3_270m_config()});
    check_gemma3_270m(&ModelConfig::from_hf_json(&wrapped).unwrap());
}

/// Gemma 3 as transformers 5 writes it: one `rope_parameters` entry per layer type, no
/// `rope_theta` / `rope_local_base_freq`, `dtype`.
#[test]
fn gemma3_transformers5_config() {
    let mut cfg = gemma3_270m_config();
    let obj = cfg.as_object_mut().unwrap();
    for k in [
        "rope_theta",
        "rope_local_base_freq",
        "rope_scaling",
        "torch_dtype",
        "_sliding_window_pattern",
    ] {
        obj.remove(k);
    }
    obj.insert("dtype".into(), json!("bfloat16"));
    obj.insert("transformers_version".into(), json!("5.0.0"));
    obj.insert(
        "rope_parameters".into(),
        json!({
            "full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}
        }),
    );
    check_gemma3_270m(&ModelConfig::from_hf_json(&cfg).unwrap());

    // Scaling of the global layers (Gemma 3 4B and up: linear, factor 8) is read from the
    // full_attention entry.
    cfg["rope_parameters"]["full_attention"] =
        json!({"rope_theta": 1000000.0, "rope_type": "linear", "factor": 8.0});
    let c = ModelConfig::from_hf_json(&cfg).unwrap();
    assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 8.0 });
    assert_eq!((c.rope_theta, c.rope_theta_local), (1e6, 1e4));
}
