//! Times LoRA training steps (forward + backward) on a model file: a quick probe of where
//! training time goes. `cargo run --release -p vigil-model --example lora_step -- MODEL [SEQ] [TARGETS]`
use candle_core::{Device, Tensor};
use std::time::Instant;
use vigil_model::loss::{causal_lm_loss, NextTokenTargets};
use vigil_model::{LoraConfig, Model, TargetModules};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(&args[1]);
    let seq: usize = args.get(2).map_or(256, |s| s.parse().unwrap());
    let targets = args
        .get(3)
        .map_or("q_proj,k_proj,v_proj,o_proj", String::as_str);
    let mut model = Model::load(&path)?;
    if std::env::var_os("DENSE").is_some() {
        let b = model.decoder.dequantize_linears()?;
        println!("dense base: {} MB", b >> 20);
    }
    let cfg = LoraConfig::new(16, 32.0, TargetModules::parse(targets)?);
    let n = model.decoder.add_lora("a", &cfg, 0)?;
    let ids: Vec<u32> = (0..seq as u32).map(|i| (i * 7919) % 30000 + 100).collect();
    let tokens = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let t = NextTokenTargets::new(&[ids.clone()], &[vec![true; seq]])?;
    println!("{n} adapted layers, seq {seq}");
    for step in 0..4 {
        let t0 = Instant::now();
        let (sum, count) = causal_lm_loss(&model.decoder, &tokens, &[0], &t, Some("a"), None)?;
        let loss = (sum / count as f64)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        for (_, v) in model.decoder.lora_vars("a") {
            let g = grads.get(v.as_tensor()).unwrap();
            v.set(&(v.as_tensor() - (g * 1e-3)?)?)?;
        }
        println!(
            "step {step}: loss {:.4} fwd {:.2}s bwd {:.2}s => {:.1} tok/s",
            loss.to_scalar::<f32>()?,
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            seq as f64 / (t2 - t0).as_secs_f64()
        );
    }
    Ok(())
}
