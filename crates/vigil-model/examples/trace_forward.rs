//! A teacher-forced forward pass over the token ids given on the command line, with every
//! traced tensor written to `$VIGIL_TRACE_DIR` (see `vigil_model::trace`):
//!
//!     VIGIL_TRACE_DIR=/tmp/vdump cargo run --release --example trace_forward -- MODEL.gguf 1 2 3
//!
//! With `--prefill N` before the ids, the first N ids run as one batch and the rest one at
//! a time (decode steps), as `tools/dump_ggml_tensors.py --prefill N` does.
use vigil_model::{ForwardOptions, LogitsFor, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: trace_forward MODEL.gguf [--prefill N] ID…";
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or(usage)?;
    let mut rest: Vec<String> = args.collect();
    let mut prefill = None;
    if rest.first().map(String::as_str) == Some("--prefill") {
        prefill = Some(rest.get(1).ok_or(usage)?.parse::<usize>()?);
        rest.drain(..2);
    }
    let ids: Vec<u32> = rest.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let model = Model::load(std::path::Path::new(&path))?;
    let split = prefill.unwrap_or(ids.len()).min(ids.len());
    let mut steps = vec![&ids[..split]];
    steps.extend(ids[split..].chunks(1));
    let mut state = model.decoder.new_state(vec![0]);
    let opts = ForwardOptions {
        logits: LogitsFor::All,
        ..Default::default()
    };
    for step in steps.into_iter().filter(|s| !s.is_empty()) {
        let tokens = candle_core::Tensor::new(step, &candle_core::Device::Cpu)?.unsqueeze(0)?;
        let out = model.decoder.forward(&tokens, &mut state, &opts)?;
        vigil_model::trace::trace("result_output", &out.logits.ok_or("no logits")?);
    }
    Ok(())
}
