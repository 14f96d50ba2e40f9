//! One teacher-forced forward pass over the token ids given on the command line, with every
//! traced tensor written to `$VIGIL_TRACE_DIR` (see `vigil_model::trace`):
//!
//!     VIGIL_TRACE_DIR=/tmp/vdump cargo run --release --example trace_forward -- MODEL.gguf 1 2 3
use vigil_model::{ForwardOptions, LogitsFor, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: trace_forward MODEL.gguf ID…")?;
    let ids: Vec<u32> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let model = Model::load(std::path::Path::new(&path))?;
    let tokens =
        candle_core::Tensor::new(ids.as_slice(), &candle_core::Device::Cpu)?.unsqueeze(0)?;
    let mut state = model.decoder.new_state(vec![0]);
    let opts = ForwardOptions {
        logits: LogitsFor::All,
        ..Default::default()
    };
    let out = model.decoder.forward(&tokens, &mut state, &opts)?;
    vigil_model::trace::trace("result_output", &out.logits.ok_or("no logits")?);
    Ok(())
}
