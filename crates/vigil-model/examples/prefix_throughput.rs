//! Many prompts that share a prefix (the scanner's and evaluator's case: one system prompt,
//! then each endpoint's code), run through vigil two ways, for `tools/bench_prefix.py`:
//!
//! * `whole`: every prompt from scratch (prefix + its own tokens);
//! * `prefix`: the prefix once, then each prompt's own tokens on a [`KvState::fork`];
//! * `batched`: the prefix once, then the prompts' own tokens `BATCH` rows at a time,
//!   right-padded on [`KvState::fork_rows`] (how vigil extracts head features).
//!
//! Each prompt ends with its last-position logits (what a verdict reads). Usage:
//! `prefix_throughput MODEL PROMPTS.json` with `{"prefix": [ids], "suffixes": [[ids], …]}`;
//! threads from `RAYON_NUM_THREADS`. Prints one JSON line: prompts/s per way, and how many
//! prompts' argmax agree with the `whole` way's.

use std::time::Instant;
use vigil_model::{Decoder, ForwardOptions, KvState, LogitsFor, Model};

fn run(decoder: &Decoder, state: &mut KvState, ids: &[u32]) -> anyhow::Result<u32> {
    let input = candle_core::Tensor::new(ids, &candle_core::Device::Cpu)?.unsqueeze(0)?;
    let opts = ForwardOptions {
        logits: LogitsFor::Last,
        ..Default::default()
    };
    let logits = decoder
        .forward(&input, state, &opts)?
        .logits
        .expect("asked for");
    let row: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    Ok(vigil_model::sampling::argmax(&row))
}

/// Rows per batch in the `batched` way (the feature extractor's default is 16 rows or
/// 4096 tokens).
const BATCH: usize = 8;

/// The argmax at each row's last real token, for rows that continue `base`.
fn run_batch(decoder: &Decoder, base: &KvState, rows: &[&[u32]]) -> anyhow::Result<Vec<u32>> {
    let (input, lens) = vigil_model::decoder::right_padded_batch(rows, 0)?;
    let same = lens.iter().all(|&l| l == lens[0]);
    let opts = ForwardOptions {
        // Equal lengths: every row's last token is the batch's last position.
        logits: if same {
            LogitsFor::Last
        } else {
            LogitsFor::All
        },
        ..Default::default()
    };
    let logits = decoder
        .forward(&input, &mut base.fork_rows(rows.len())?, &opts)?
        .logits
        .expect("asked for");
    lens.iter()
        .enumerate()
        .map(|(r, &len)| {
            let at = if same { 0 } else { len - 1 };
            let row: Vec<f32> = logits.get(r)?.get(at)?.to_vec1()?;
            Ok(vigil_model::sampling::argmax(&row))
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    vigil_model::settle_runtime();
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 3,
        "usage: prefix_throughput MODEL PROMPTS.json"
    );
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args[2])?)?;
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect()
    };
    let prefix = ids(&spec["prefix"]);
    let suffixes: Vec<Vec<u32>> = spec["suffixes"]
        .as_array()
        .map(|a| a.iter().map(ids).collect())
        .unwrap_or_default();
    anyhow::ensure!(!prefix.is_empty() && !suffixes.is_empty(), "no prompts");
    let model = Model::load(std::path::Path::new(&args[1]))?;
    let decoder = &model.decoder;
    candle_core::Device::Cpu.with_context(|| {
        // Warm-up: one prompt each way.
        let whole0: Vec<u32> = prefix.iter().chain(&suffixes[0]).copied().collect();
        run(decoder, &mut decoder.new_state(vec![0]), &whole0)?;

        let t0 = Instant::now();
        let mut whole = Vec::new();
        for s in &suffixes {
            let ids: Vec<u32> = prefix.iter().chain(s).copied().collect();
            whole.push(run(decoder, &mut decoder.new_state(vec![0]), &ids)?);
        }
        let whole_s = t0.elapsed().as_secs_f64();

        let t0 = Instant::now();
        let mut base = decoder.new_state(vec![0]);
        let none = ForwardOptions {
            logits: LogitsFor::None,
            ..Default::default()
        };
        let input =
            candle_core::Tensor::new(prefix.as_slice(), &candle_core::Device::Cpu)?.unsqueeze(0)?;
        decoder.forward(&input, &mut base, &none)?;
        let mut forked = Vec::new();
        for s in &suffixes {
            forked.push(run(decoder, &mut base.fork()?, s)?);
        }
        let prefix_s = t0.elapsed().as_secs_f64();

        let t0 = Instant::now();
        let mut base = decoder.new_state(vec![0]);
        decoder.forward(&input, &mut base, &none)?;
        let mut batched = Vec::new();
        for chunk in suffixes.chunks(BATCH) {
            let rows: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            batched.extend(run_batch(decoder, &base, &rows)?);
        }
        let batched_s = t0.elapsed().as_secs_f64();
        let agree = whole.iter().zip(&forked).filter(|(a, b)| a == b).count();
        let batched_agree = whole.iter().zip(&batched).filter(|(a, b)| a == b).count();
        println!(
            "{}",
            serde_json::json!({
                "prompts": suffixes.len(),
                "whole_prompts_s": suffixes.len() as f64 / whole_s,
                "prefix_prompts_s": suffixes.len() as f64 / prefix_s,
                "batched_prompts_s": suffixes.len() as f64 / batched_s,
                "argmax_agree": agree,
                "batched_argmax_agree": batched_agree,
            })
        );
        Ok(())
    })
}
