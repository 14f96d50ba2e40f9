//! LoRA against PyTorch + PEFT.
//!
//! `tools/make_peft_fixtures.py` built tiny random Llama and Qwen2 models, a PEFT adapter
//! for each (r 8 on all seven projections, nonzero B; the Qwen2 one with rsLoRA), and
//! recorded with PyTorch: logits of the base, with the adapter and after
//! `merge_and_unload`, the masked next-token loss of a left-padded batch, and the gradient
//! of that loss with respect to every `lora_A` / `lora_B`. vigil loads the same files and
//! must reproduce all of it.
//!
//! A llama model converted to GGUF has its Q/K rows in llama.cpp's rope order; the same
//! adapter on a GGUF written from the fixture model must give the same logits and, saved
//! back, the same PEFT tensors.
//!
//! Finally, an adapter trained by vigil (a few SGD steps from PEFT's initialisation) is
//! committed with vigil's logits; `tools/check_peft_load.py` loaded it in PEFT and recorded
//! the comparison in `vigil_adapter_in_peft.json`. The test regenerates that adapter and
//! checks the committed files are still what vigil writes, and that PEFT agreed.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vigil_model::decoder::left_padded_batch;
use vigil_model::lora::read_peft_dir;
use vigil_model::loss::{causal_lm_loss, NextTokenTargets};
use vigil_model::{Decoder, ForwardOptions, LogitsFor, LoraConfig, TargetModules};

const ARCHS: [&str; 2] = ["llama", "qwen2"];

fn dir(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/peft/{arch}"))
}

fn load_decoder(model_dir: &Path) -> Decoder {
    Decoder::open(model_dir).unwrap()
}

/// The recorded batch and PyTorch's results.
struct Reference {
    tensors: HashMap<String, Tensor>,
    rows: Vec<Vec<u32>>,
    pad: Vec<usize>,
    /// `scored[r][j]`: token j of row r is a loss target (label ≠ −100).
    scored: Vec<Vec<bool>>,
}

impl Reference {
    fn load(arch: &str) -> Self {
        let tensors =
            candle_core::safetensors::load(dir(arch).join("reference.safetensors"), &Device::Cpu)
                .unwrap();
        let ids = tensors["input_ids"].to_vec2::<i64>().unwrap();
        let mask = tensors["attention_mask"].to_vec2::<i64>().unwrap();
        let labels = tensors["labels"].to_vec2::<i64>().unwrap();
        let mut rows = Vec::new();
        let mut pad = Vec::new();
        for (r, m) in ids.iter().zip(&mask) {
            let p = m.iter().take_while(|&&v| v == 0).count();
            assert!(
                m[p..].iter().all(|&v| v == 1),
                "fixture must be left-padded"
            );
            pad.push(p);
            rows.push(r[p..].iter().map(|&v| v as u32).collect::<Vec<u32>>());
        }
        let scored = labels
            .iter()
            .map(|l| l.iter().map(|&v| v != -100).collect())
            .collect();
        Reference {
            tensors,
            rows,
            pad,
            scored,
        }
    }

    /// Padded ids `[b, t]` as vigil builds them (pad id 0 at the pad slots).
    fn batch(&self) -> (Tensor, Vec<usize>) {
        let (t, pad) = left_padded_batch(&self.rows, 0).unwrap();
        assert_eq!(pad, self.pad);
        (t, pad)
    }

    fn targets(&self) -> NextTokenTargets {
        let (t, _) = self.batch();
        NextTokenTargets::new(&t.to_vec2::<u32>().unwrap(), &self.scored).unwrap()
    }

    /// Max |a − b| over real (non-pad) positions of two `[b, t, v]` logit tensors.
    fn max_diff(&self, ours: &Tensor, name: &str) -> f32 {
        let theirs = self.tensors[name].to_vec3::<f32>().unwrap();
        let ours = ours.to_vec3::<f32>().unwrap();
        let mut max = 0f32;
        for (r, &p) in self.pad.iter().enumerate() {
            for j in p..theirs[r].len() {
                for (a, b) in ours[r][j].iter().zip(&theirs[r][j]) {
                    max = max.max((a - b).abs());
                }
            }
        }
        max
    }

    fn scale(&self, name: &str) -> f32 {
        self.tensors[name]
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }
}

fn logits(decoder: &Decoder, reference: &Reference, adapter: Option<&str>) -> Tensor {
    let (ids, pad) = reference.batch();
    let mut state = decoder.new_state(pad);
    let opts = ForwardOptions {
        logits: LogitsFor::All,
        adapter: adapter.map(str::to_string),
        ..Default::default()
    };
    decoder
        .forward(&ids, &mut state, &opts)
        .unwrap()
        .logits
        .unwrap()
}

/// Logits must agree with PyTorch's to float rounding: these are f32 models of 2 layers.
const LOGIT_TOL: f32 = 2e-5;

#[test]
fn base_adapter_and_merged_logits_match_peft() {
    for arch in ARCHS {
        let reference = Reference::load(arch);
        let mut decoder = load_decoder(&dir(arch).join("model"));
        let base = reference.max_diff(&logits(&decoder, &reference, None), "logits_base");
        assert!(base < LOGIT_TOL, "{arch}: base logits differ by {base}");

        let config = decoder
            .load_lora("peft", &dir(arch).join("adapter"))
            .unwrap();
        assert_eq!(config.r, 8);
        // Inference with a trainable adapter records no autograd graph: one that did would
        // keep every layer's activations alive until the output is dropped.
        let (ids, pad) = reference.batch();
        let out = decoder
            .forward(
                &ids,
                &mut decoder.new_state(pad),
                &ForwardOptions {
                    hidden_layers: vec![1],
                    adapter: Some("peft".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(!out.hidden[0].1.track_op(), "{arch}: inference tracks ops");
        let lora = reference.max_diff(
            &logits(&decoder, &reference, Some("peft")),
            "logits_adapter",
        );
        assert!(lora < LOGIT_TOL, "{arch}: adapter logits differ by {lora}");
        // The adapter really changes the model, so the comparison above means something.
        let moved = reference.max_diff(&logits(&decoder, &reference, None), "logits_adapter");
        assert!(
            moved > 100.0 * LOGIT_TOL,
            "{arch}: adapter barely changes logits ({moved})"
        );
        // No adapter named: still the base model. A second, freshly initialised adapter
        // (B = 0) sits beside the first and, selected, changes nothing.
        let base_again = reference.max_diff(&logits(&decoder, &reference, None), "logits_base");
        assert!(base_again < LOGIT_TOL);
        let fresh = LoraConfig::new(4, 8.0, TargetModules::parse("q_proj,v_proj").unwrap());
        assert_eq!(decoder.add_lora("fresh", &fresh, 1).unwrap(), 4);
        let zero = reference.max_diff(&logits(&decoder, &reference, Some("fresh")), "logits_base");
        assert!(
            zero < LOGIT_TOL,
            "{arch}: a B = 0 adapter moved logits by {zero}"
        );
        let lora = reference.max_diff(
            &logits(&decoder, &reference, Some("peft")),
            "logits_adapter",
        );
        assert!(
            lora < LOGIT_TOL,
            "{arch}: the first adapter changed after adding another"
        );
        assert!(decoder.remove_lora("fresh"));

        let report = decoder.merge_lora("peft").unwrap();
        assert_eq!(report.layers, 14, "{arch}: 2 layers × 7 projections merged");
        assert_eq!(report.max_requant_error, 0.0, "dense merge is exact");
        assert!(!decoder.has_adapter("peft"));
        let merged = reference.max_diff(&logits(&decoder, &reference, None), "logits_merged");
        assert!(
            merged < LOGIT_TOL,
            "{arch}: merged logits differ by {merged}"
        );
    }
}

#[test]
fn loss_and_every_lora_gradient_match_peft() {
    for arch in ARCHS {
        let reference = Reference::load(arch);
        let mut decoder = load_decoder(&dir(arch).join("model"));
        decoder
            .load_lora("peft", &dir(arch).join("adapter"))
            .unwrap();
        let (ids, pad) = reference.batch();
        let targets = reference.targets();
        let (sum, count) =
            causal_lm_loss(&decoder, &ids, &pad, &targets, Some("peft"), None).unwrap();
        let loss = (sum / count as f64).unwrap();
        let ours = loss.to_scalar::<f32>().unwrap();
        let theirs = reference.tensors["loss"].to_vec1::<f32>().unwrap()[0];
        assert!(
            (ours - theirs).abs() < 1e-5 * theirs.abs().max(1.0),
            "{arch}: loss {ours} vs PEFT {theirs}"
        );

        let grads = loss.backward().unwrap();
        let vars = decoder.lora_vars("peft");
        let expected: Vec<&String> = reference
            .tensors
            .keys()
            .filter(|k| k.starts_with("grad."))
            .collect();
        assert_eq!(
            vars.len(),
            expected.len(),
            "{arch}: one gradient per LoRA matrix"
        );
        assert_eq!(vars.len(), 2 * 2 * 7);
        for (key, var) in &vars {
            let name = format!("grad.{key}");
            let theirs = reference
                .tensors
                .get(&name)
                .unwrap_or_else(|| panic!("{arch}: no reference gradient {name}"));
            let ours = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch}: {key} received no gradient"));
            assert_eq!(ours.dims(), theirs.dims(), "{key}");
            let scale = reference.scale(&name);
            assert!(scale > 0.0, "{arch}: reference gradient of {key} is zero");
            let diff = (ours - theirs)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                diff <= 1e-4 * scale + 1e-7,
                "{arch}: gradient of {key} differs by {diff} (reference max {scale})"
            );
        }
    }
}

#[test]
fn saved_adapter_is_peft_identical_and_reloads() {
    for arch in ARCHS {
        let tmp = tempfile::tempdir().unwrap();
        let mut decoder = load_decoder(&dir(arch).join("model"));
        decoder
            .load_lora("peft", &dir(arch).join("adapter"))
            .unwrap();
        let out = tmp.path().join("saved");
        decoder.save_lora("peft", &out).unwrap();
        let (config_in, tensors_in) = read_peft_dir(&dir(arch).join("adapter")).unwrap();
        let (config_out, tensors_out) = read_peft_dir(&out).unwrap();
        assert_eq!(config_in.r, config_out.r);
        assert_eq!(config_in.alpha, config_out.alpha);
        assert_eq!(config_in.use_rslora, config_out.use_rslora);
        assert_eq!(
            tensors_in.keys().collect::<Vec<_>>(),
            tensors_out.keys().collect::<Vec<_>>()
        );
        for (k, a) in &tensors_in {
            let b = &tensors_out[k];
            assert_eq!(
                a.to_vec2::<f32>().unwrap(),
                b.to_vec2::<f32>().unwrap(),
                "{k}"
            );
        }
    }
}

/// Writes the fixture's llama model as a GGUF the way llama.cpp's converter does: GGUF
/// tensor names, Q/K rows permuted into rope order, f32 storage.
fn write_llama_gguf(model_dir: &Path, out: &Path) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("config.json")).unwrap())
            .unwrap();
    let tensors =
        candle_core::safetensors::load(model_dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let n = |k: &str| json[k].as_u64().unwrap() as u32;
    let (heads, kv_heads) = (
        n("num_attention_heads") as usize,
        n("num_key_value_heads") as usize,
    );
    let permute = |w: &Tensor, h: usize| -> Tensor {
        let (o, i) = w.dims2().unwrap();
        w.reshape((h, 2, o / h / 2, i))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((o, i))
            .unwrap()
    };
    let mut qt: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: &Tensor| {
        qt.push((name, QTensor::quantize(t, GgmlDType::F32).unwrap()));
    };
    add(
        "token_embd.weight".into(),
        &tensors["model.embed_tokens.weight"],
    );
    add("output_norm.weight".into(), &tensors["model.norm.weight"]);
    add("output.weight".into(), &tensors["lm_head.weight"]);
    for l in 0..n("num_hidden_layers") {
        let hf = |s: &str| &tensors[&format!("model.layers.{l}.{s}.weight")];
        add(format!("blk.{l}.attn_norm.weight"), hf("input_layernorm"));
        add(
            format!("blk.{l}.ffn_norm.weight"),
            hf("post_attention_layernorm"),
        );
        add(
            format!("blk.{l}.attn_q.weight"),
            &permute(hf("self_attn.q_proj"), heads),
        );
        add(
            format!("blk.{l}.attn_k.weight"),
            &permute(hf("self_attn.k_proj"), kv_heads),
        );
        add(format!("blk.{l}.attn_v.weight"), hf("self_attn.v_proj"));
        add(
            format!("blk.{l}.attn_output.weight"),
            hf("self_attn.o_proj"),
        );
        add(format!("blk.{l}.ffn_gate.weight"), hf("mlp.gate_proj"));
        add(format!("blk.{l}.ffn_up.weight"), hf("mlp.up_proj"));
        add(format!("blk.{l}.ffn_down.weight"), hf("mlp.down_proj"));
    }
    use gguf_file::Value as V;
    let md: Vec<(&str, V)> = vec![
        ("general.architecture", V::String("llama".into())),
        ("llama.block_count", V::U32(n("num_hidden_layers"))),
        ("llama.embedding_length", V::U32(n("hidden_size"))),
        ("llama.feed_forward_length", V::U32(n("intermediate_size"))),
        ("llama.attention.head_count", V::U32(heads as u32)),
        ("llama.attention.head_count_kv", V::U32(kv_heads as u32)),
        ("llama.vocab_size", V::U32(n("vocab_size"))),
        ("llama.context_length", V::U32(n("max_position_embeddings"))),
        (
            "llama.rope.freq_base",
            V::F32(json["rope_theta"].as_f64().unwrap_or(10000.0) as f32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            V::F32(json["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
    ];
    let mut f = std::fs::File::create(out).unwrap();
    let md_refs: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qt.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
}

#[test]
fn adapter_on_a_gguf_llama_follows_the_rope_row_order() {
    let reference = Reference::load("llama");
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny-llama.gguf");
    write_llama_gguf(&dir("llama").join("model"), &gguf);
    let mut decoder = Decoder::open(&gguf).unwrap();
    assert_eq!(
        decoder.config.rope_layout,
        vigil_model::config::RopeLayout::Interleaved
    );
    let base = reference.max_diff(&logits(&decoder, &reference, None), "logits_base");
    assert!(base < LOGIT_TOL, "GGUF base logits differ by {base}");
    decoder
        .load_lora("peft", &dir("llama").join("adapter"))
        .unwrap();
    let lora = reference.max_diff(
        &logits(&decoder, &reference, Some("peft")),
        "logits_adapter",
    );
    assert!(
        lora < LOGIT_TOL,
        "adapter on the GGUF layout differs by {lora}"
    );

    // Saved back, the file is in Hugging Face's layout again: identical to the input.
    let (_, tensors_in) = read_peft_dir(&dir("llama").join("adapter")).unwrap();
    let saved = decoder.lora_tensors("peft").unwrap();
    for (k, a) in &tensors_in {
        assert_eq!(
            a.to_vec2::<f32>().unwrap(),
            saved[k].to_vec2::<f32>().unwrap(),
            "{k}"
        );
    }
    // Gradients, unpermuted, equal PEFT's too.
    let (ids, pad) = reference.batch();
    let (sum, count) = causal_lm_loss(
        &decoder,
        &ids,
        &pad,
        &reference.targets(),
        Some("peft"),
        None,
    )
    .unwrap();
    let grads = (sum / count as f64).unwrap().backward().unwrap();
    let hf_grads = decoder
        .lora_hf_layout("peft", |v| grads.get(v.as_tensor()).cloned())
        .unwrap();
    for (k, g) in hf_grads {
        let theirs = &reference.tensors[&format!("grad.{k}")];
        let diff = (g - theirs).unwrap().abs().unwrap().max_all().unwrap();
        let diff = diff.to_scalar::<f32>().unwrap();
        assert!(
            diff <= 1e-4 * reference.scale(&format!("grad.{k}")) + 1e-7,
            "{k}: {diff}"
        );
    }
}

/// vigil's own adapter: PEFT init from a seed, then a few plain SGD steps on the fixture
/// batch. Deterministic, so the committed copy can be compared with a fresh one.
fn train_vigil_adapter(arch: &str) -> (Decoder, Tensor) {
    let reference = Reference::load(arch);
    let mut decoder = load_decoder(&dir(arch).join("model"));
    let mut config = LoraConfig::new(4, 8.0, TargetModules::AllLinear);
    config.base_model = Some(format!("fixtures/peft/{arch}/model"));
    decoder.add_lora("vigil", &config, 7).unwrap();
    let (ids, pad) = reference.batch();
    let targets = reference.targets();
    for _ in 0..3 {
        let (sum, count) =
            causal_lm_loss(&decoder, &ids, &pad, &targets, Some("vigil"), None).unwrap();
        let grads = (sum / count as f64).unwrap().backward().unwrap();
        for (_, var) in decoder.lora_vars("vigil") {
            let g = grads.get(var.as_tensor()).unwrap();
            var.set(&(var.as_tensor() - (g * 0.5).unwrap()).unwrap())
                .unwrap();
        }
    }
    let l = logits(&decoder, &reference, Some("vigil"));
    (decoder, l)
}

#[test]
fn vigil_trained_adapter_loads_in_peft() {
    for arch in ARCHS {
        let fixture = dir(arch);
        let (decoder, ours) = train_vigil_adapter(arch);
        if std::env::var_os("VIGIL_WRITE_FIXTURES").is_some() {
            decoder
                .save_lora("vigil", &fixture.join("vigil_adapter"))
                .unwrap();
            let mut m = HashMap::new();
            m.insert("logits".to_string(), ours.clone());
            candle_core::safetensors::save(&m, fixture.join("vigil_adapter_logits.safetensors"))
                .unwrap();
            eprintln!(
                "wrote {}; now run tools/check_peft_load.py",
                fixture.display()
            );
            continue;
        }
        // The committed adapter is exactly what vigil writes today...
        let (_, committed) = read_peft_dir(&fixture.join("vigil_adapter")).unwrap();
        let fresh = decoder.lora_tensors("vigil").unwrap();
        assert_eq!(committed.len(), fresh.len());
        for (k, t) in &fresh {
            let d = (t - &committed[k])
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-6, "{arch}: {k} drifted");
        }
        // ...and PEFT, loading it, computed the logits vigil computes.
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture.join("vigil_adapter_in_peft.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["ok"], true, "{arch}: PEFT disagreed: {report}");
        assert!(report["max_abs_diff"].as_f64().unwrap() < 1e-4);
        let committed_logits = candle_core::safetensors::load(
            fixture.join("vigil_adapter_logits.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let d = (ours - &committed_logits["logits"])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(
            d.to_scalar::<f32>().unwrap() < 1e-5,
            "{arch}: logits drifted"
        );
    }
}

#[test]
fn bad_adapters_are_refused_with_the_reason() {
    let model_dir = dir("llama").join("model");
    let tmp = tempfile::tempdir().unwrap();
    let good = dir("llama").join("adapter");
    let copy = |name: &str| -> PathBuf {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["adapter_config.json", "adapter_model.safetensors"] {
            std::fs::copy(good.join(f), d.join(f)).unwrap();
        }
        d
    };
    let err = |d: &Path| -> String {
        let mut decoder = load_decoder(&model_dir);
        decoder.load_lora("x", d).unwrap_err().to_string()
    };

    // Missing directory / file.
    let e = err(&tmp.path().join("nope"));
    assert!(e.contains("adapter_config.json"), "{e}");
    // Truncated weights.
    let d = copy("truncated");
    let bytes = std::fs::read(d.join("adapter_model.safetensors")).unwrap();
    std::fs::write(
        d.join("adapter_model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = err(&d);
    assert!(
        e.contains("adapter_model.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    // Config that is not JSON.
    let d = copy("badjson");
    std::fs::write(d.join("adapter_config.json"), "{ r: 8").unwrap();
    let e = err(&d);
    assert!(
        e.contains("adapter_config.json") && e.contains("JSON"),
        "{e}"
    );
    // DoRA is refused, not silently run as LoRA.
    let d = copy("dora");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("adapter_config.json")).unwrap())
            .unwrap();
    cfg["use_dora"] = true.into();
    std::fs::write(d.join("adapter_config.json"), cfg.to_string()).unwrap();
    assert!(err(&d).contains("use_dora"));
    // A rank that does not match the tensors.
    let d = copy("rank");
    cfg["use_dora"] = false.into();
    cfg["r"] = 4.into();
    std::fs::write(d.join("adapter_config.json"), cfg.to_string()).unwrap();
    let e = err(&d);
    assert!(e.contains("shape") && e.contains("lora_A"), "{e}");
    // An adapter for another model (the Qwen2 fixture's has biases-free but same names;
    // a hidden size mismatch is made by a tensor of the wrong width).
    let d = copy("foreign");
    let (_, mut tensors) = read_peft_dir(&good).unwrap();
    let key = tensors.keys().next().unwrap().clone();
    tensors.insert(
        key.clone(),
        Tensor::zeros((8, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    tensors.insert(
        "base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight".into(),
        Tensor::zeros((8, 64), DType::F32, &Device::Cpu).unwrap(),
    );
    let m: HashMap<String, Tensor> = tensors.into_iter().collect();
    candle_core::safetensors::save(&m, d.join("adapter_model.safetensors")).unwrap();
    let e = err(&d);
    assert!(e.contains("shape") || e.contains("does not belong"), "{e}");

    // Two adapters with one name; an unknown adapter in a forward pass.
    let mut decoder = load_decoder(&model_dir);
    decoder.load_lora("a", &good).unwrap();
    assert!(decoder
        .load_lora("a", &good)
        .unwrap_err()
        .to_string()
        .contains("already"));
    let reference = Reference::load("llama");
    let (ids, pad) = reference.batch();
    let mut state = decoder.new_state(pad);
    let opts = ForwardOptions {
        adapter: Some("b".into()),
        ..Default::default()
    };
    let e = decoder
        .forward(&ids, &mut state, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no adapter named 'b'"), "{e}");
}

#[test]
fn merging_into_a_quantised_base_reports_the_requantisation_error() {
    // QLoRA's merge: dequantise → add ΔW → quantise to the same type. The result must sit
    // within that type's rounding of the exact merge, and the report must say how far.
    let reference = Reference::load("llama");
    let mut exact = load_decoder(&dir("llama").join("model"));
    exact
        .load_lora("peft", &dir("llama").join("adapter"))
        .unwrap();
    let mut quant = load_decoder(&dir("llama").join("model"));
    let q = quant
        .quantize_linears(candle_core::quantized::GgmlDType::Q8_0, true)
        .unwrap();
    assert_eq!(q.types.get("Q8_0"), Some(&14), "{:?}", q.types);
    assert!(q.bytes_after * 3 < q.bytes_before, "{q:?}");
    quant
        .load_lora("peft", &dir("llama").join("adapter"))
        .unwrap();
    // Unmerged adapter on the quantised base, for comparison after the merge.
    let before = logits(&quant, &reference, Some("peft"));
    let report = quant.merge_lora("peft").unwrap();
    assert_eq!(report.layers, 14);
    assert!(
        report.max_requant_error > 0.0,
        "a quantised merge is not exact: {report:?}"
    );
    assert!(
        report.rms_requant_error < 0.05 * report.rms_delta.max(1e-3) + 1e-3,
        "Q8_0 requantisation error out of proportion: {report:?}"
    );
    let after = logits(&quant, &reference, None);
    let drift = (after - &before).unwrap().abs().unwrap().max_all().unwrap();
    let drift = drift.to_scalar::<f32>().unwrap();
    // And both stay near the exact f32 model with the adapter.
    let exact_logits = logits(&exact, &reference, Some("peft"));
    let gap = reference.max_diff(&exact_logits, "logits_adapter");
    assert!(gap < LOGIT_TOL);
    assert!(
        drift < 0.05,
        "merge moved logits by {drift} beyond the unmerged quantised model"
    );
}
