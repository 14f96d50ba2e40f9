//! `vigil score`: teacher-forced next-token logits for text on stdin (conformance checks).
//!
//! Output: `{"tokens":[ids…],"positions":[{"top":[[id,logit],…]},…]}`, one entry per input
//! token: the top-k logits for the token that follows it.

use super::common::{read_stdin, ModelOpts};
use candle_core::{Device, Tensor};
use clap::Args;
use vigil_model::{ForwardOptions, LogitsFor};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelOpts,
    /// How many of the highest logits to report per position.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Do not add the model's default BOS/EOS.
    #[arg(long)]
    pub no_special: bool,
    /// Treat the text of control tokens (`<|im_start|>`) as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Print JSON (the only format; accepted for clarity in scripts).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let text = read_stdin()?;
    let model = args.model.load()?;
    let ids = model
        .tokenizer
        .encode(&text, !args.no_special, !args.no_parse_special)?;
    anyhow::ensure!(!ids.is_empty(), "the input has no tokens");
    let logits = Device::Cpu.with_context(|| -> anyhow::Result<Vec<Vec<f32>>> {
        let mut state = model.decoder.new_state(vec![0]);
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let out = model.decoder.forward(
            &input,
            &mut state,
            &ForwardOptions {
                logits: LogitsFor::All,
                hidden_layers: vec![],
                adapter: args.model.active_adapter(),
            },
        )?;
        Ok(out.logits.expect("logits").squeeze(0)?.to_vec2::<f32>()?)
    })?;
    let positions: Vec<serde_json::Value> = logits
        .iter()
        .map(|row| serde_json::json!({ "top": top_k(row, args.top_k) }))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "tokens": ids, "positions": positions })
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The k largest (id, logit) pairs, largest first; ties keep the lower id first.
pub fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(row.len());
    if k == 0 {
        return vec![];
    }
    let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    idx.select_nth_unstable_by(k - 1, cmp);
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, row[i as usize])).collect()
}
