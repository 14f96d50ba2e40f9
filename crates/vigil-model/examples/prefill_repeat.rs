//! One prompt prefilled again and again in one process, for profiling the forward pass
//! without the model load in the picture: `prefill_repeat MODEL TOKENS REPEATS`
//! (threads from `RAYON_NUM_THREADS`). The prompt is `TOKENS` ids spread over the
//! vocabulary; after one warm-up pass, prints the median prefill time and tokens/s.

use std::time::Instant;
use vigil_model::{Decoder, ForwardOptions, LogitsFor};

fn main() -> anyhow::Result<()> {
    vigil_model::settle_runtime();
    let args: Vec<String> = std::env::args().collect();
    let [_, model, tokens, repeats] = &args[..] else {
        anyhow::bail!("usage: prefill_repeat MODEL TOKENS REPEATS");
    };
    let (tokens, repeats): (usize, usize) = (tokens.parse()?, repeats.parse()?);
    let decoder = Decoder::open(std::path::Path::new(model))?;
    let vocab = decoder.config.vocab_size as u64;
    let ids: Vec<u32> = (0..tokens as u64)
        .map(|i| (100 + i * 7919 % (vocab - 200)) as u32)
        .collect();
    let input =
        candle_core::Tensor::new(ids.as_slice(), &candle_core::Device::Cpu)?.unsqueeze(0)?;
    let opts = ForwardOptions {
        logits: LogitsFor::Last,
        ..Default::default()
    };
    // On candle's CPU pool, as the product runs its passes (`Generator`, features): the
    // pass's parallel sections then split work among that pool's threads.
    let mut times = candle_core::Device::Cpu.with_context(|| -> anyhow::Result<Vec<f64>> {
        let mut times = Vec::new();
        // One warm-up pass: the first touches the weights' pages and starts the pools.
        for _ in 0..=repeats.max(1) {
            let mut state = decoder.new_state(vec![0]);
            let t0 = Instant::now();
            decoder.forward(&input, &mut state, &opts)?;
            times.push(t0.elapsed().as_secs_f64());
        }
        times.remove(0);
        Ok(times)
    })?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{tokens} tokens: median {:.1} ms, {:.1} tok/s (best {:.1} ms)",
        median * 1e3,
        tokens as f64 / median,
        times[0] * 1e3
    );
    Ok(())
}
