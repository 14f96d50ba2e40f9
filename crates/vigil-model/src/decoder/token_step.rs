//! A decode step on plain f32 buffers: one new token for each row of a batch.
//!
//! Through candle, a one-token step made a few dozen tensors per layer — each an
//! allocation, many a zeroed buffer or a layout copy — and that bookkeeping, not
//! arithmetic, was most of the serial time between the parallel products (a fifth of a
//! two-thread SmolLM2 step; BENCHMARKS.md, session 16). With one token per row, every
//! projection's `[b, 1, n]` output is already in the `[b, heads, 1, d]` order that rope,
//! the KV cache and attention read, so [`Decoder::token_step`] runs the block's ops in
//! [`Block::forward`]'s order over a [`StepBuffers`] that lives for the whole step: the
//! same ggml-rounded functions on the same values, so the same bits (the tests below hold
//! it to the tensor path, the conformance tests to llama.cpp). The KV cache stays candle's
//! (appended in place, read in place by [`crate::ggml_ops::attention_into`]).
//!
//! Taken in inference (with or without an adapter) when no traced tensors or hidden
//! states are asked for and every linear layer has a vigil-kernels weight; anything else
//! runs the tensor path.

use super::{Decoder, ForwardOptions, ForwardOutput, KvState, LogitsFor};
use crate::config::Activation;
use crate::error::Result;
use crate::ggml_ops::KeySlots;
use crate::layers::{products_into, Linear, Precision, RmsNorm};
use candle_core::{Device, Tensor};

/// The activations of one step, `[rows, n]` each, reused by every layer.
struct StepBuffers {
    /// The residual stream.
    x: Vec<f32>,
    /// A norm's output (the products' input, or a sandwich norm's result).
    normed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// q or k after its head norm, before rope.
    head_normed: Vec<f32>,
    q_rot: Vec<f32>,
    k_rot: Vec<f32>,
    attn: Vec<f32>,
    /// The output of o and of down.
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
}

impl StepBuffers {
    fn new(d: &Decoder, rows: usize) -> Self {
        let c = &d.config;
        let (e, f) = (rows * c.hidden_size, rows * c.intermediate_size);
        let (qn, kvn) = (
            rows * c.num_heads * c.head_dim,
            rows * c.num_kv_heads * c.head_dim,
        );
        let zeros = |n: usize| vec![0f32; n];
        StepBuffers {
            x: Vec::new(),
            normed: zeros(e),
            q: zeros(qn),
            k: zeros(kvn),
            v: zeros(kvn),
            head_normed: zeros(qn),
            q_rot: zeros(qn),
            k_rot: zeros(kvn),
            attn: zeros(qn),
            proj: zeros(e),
            gate: zeros(f),
            up: zeros(f),
            act: zeros(f),
        }
    }
}

/// `norm` over each row of `x` (rows of `norm.width()` values) into `y`.
fn norm_rows(norm: &RmsNorm, x: &[f32], y: &mut [f32]) {
    let n = norm.width();
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        norm.forward_row(xr, yr);
    }
}

/// The residual add after a sub-block: `x += y`, or `x += norm(y)` where the family has
/// a sandwich norm (`scratch` takes the norm's output); candle's add, one rounding per
/// value.
fn add_residual(x: &mut [f32], y: &[f32], post_norm: Option<&RmsNorm>, scratch: &mut [f32]) {
    let y = match post_norm {
        Some(n) => {
            norm_rows(n, y, scratch);
            &*scratch
        }
        None => y,
    };
    x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
}

impl Decoder {
    /// Whether [`Decoder::forward`] over `t` tokens per row can run as a [`token_step`].
    ///
    /// [`token_step`]: Decoder::token_step
    pub(super) fn token_step_applies(&self, t: usize, opts: &ForwardOptions) -> Result<bool> {
        if t != 1
            || self.precision != Precision::Inference
            || !opts.hidden_layers.is_empty()
            || matches!(opts.logits, LogitsFor::At(_))
            || crate::trace::enabled()
        {
            return Ok(false);
        }
        let mut linears: Vec<&Linear> = vec![&self.lm_head];
        for b in &self.blocks {
            let (a, m) = (&b.attn, &b.mlp);
            linears.extend([&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj]);
            linears.extend([&m.gate_proj, &m.up_proj, &m.down_proj]);
        }
        for l in linears {
            if l.kernel_weight()?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// [`Decoder::forward`] for one new token per row (`tokens` `[b, 1]`), in inference,
    /// on [`StepBuffers`]; the caller checked [`Decoder::token_step_applies`].
    pub(super) fn token_step(
        &self,
        tokens: &Tensor,
        state: &mut KvState,
        opts: &ForwardOptions,
    ) -> Result<ForwardOutput> {
        let c = &self.config;
        let rows = state.batch_size();
        let offset = state.len;
        let (h, kv, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let adapter = opts.adapter.as_deref();
        let mut buf = StepBuffers::new(self, rows);
        buf.x = self.embed_tokens(tokens)?.flatten_all()?.to_vec1::<f32>()?;

        // Each row's position, its rope angles (`rows × d / 2`) and the masks, as the
        // tensor path makes them.
        let positions: Vec<u32> = state
            .pad
            .iter()
            .map(|&p| offset.saturating_sub(p) as u32)
            .collect();
        let angles = |rope: &crate::layers::RotaryEmbedding| {
            let (mut cos, mut sin) = (Vec::new(), Vec::new());
            for &p in &positions {
                rope.push_angles(p, &mut cos, &mut sin);
            }
            (cos, sin)
        };
        let global = angles(&self.rope_global);
        let local = if c.rope_theta_local != c.rope_theta {
            angles(&self.rope_local)
        } else {
            global.clone()
        };
        let mask_values = |m: Option<Tensor>| -> Result<Option<Vec<f32>>> {
            Ok(m.map(|m| m.flatten_all()?.to_vec1::<f32>()).transpose()?)
        };
        let mask_global = mask_values(super::attention_mask(&state.pad, offset, 1, None)?)?;
        let mask_local = match c.sliding_window {
            Some(w) => mask_values(super::attention_mask(&state.pad, offset, 1, Some(w))?)?,
            None => mask_global.clone(),
        };
        let slots = KeySlots {
            pad: &state.pad,
            offset,
        };

        for (block, cache) in self.blocks.iter().zip(state.caches.iter_mut()) {
            let (a, layer) = (&block.attn, block.index);
            let ((cos, sin), rope, mask) = if block.local {
                (&local, &self.rope_local, mask_local.as_deref())
            } else {
                (&global, &self.rope_global, mask_global.as_deref())
            };
            let half = d / 2;

            // Attention block.
            norm_rows(&block.attn_norm, &buf.x, &mut buf.normed);
            products_into(
                &[&a.q_proj, &a.k_proj, &a.v_proj],
                &buf.normed,
                rows,
                &mut [&mut buf.q, &mut buf.k, &mut buf.v],
                adapter,
            )?;
            // Head norm (Gemma 3), then rope, head by head; row r's heads use its angles.
            let mut rotate = |x: &[f32], norm: Option<&RmsNorm>, heads: usize, out: &mut [f32]| {
                let n = rows * heads * d;
                let src = match norm {
                    Some(norm) => {
                        norm_rows(norm, &x[..n], &mut buf.head_normed[..n]);
                        &buf.head_normed[..n]
                    }
                    None => &x[..n],
                };
                for (i, (xr, yr)) in src.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
                    let r = i / heads;
                    let (c, s) = (&cos[r * half..][..half], &sin[r * half..][..half]);
                    crate::ggml_ops::rotate_row(xr, yr, c, s, rope.interleaved());
                }
            };
            rotate(&buf.q, a.q_norm.as_ref(), h, &mut buf.q_rot);
            rotate(&buf.k, a.k_norm.as_ref(), kv, &mut buf.k_rot);
            let dev = &Device::Cpu;
            let (keys, values) = cache.append(
                &Tensor::from_slice(&buf.k_rot, (rows, kv, 1, d), dev)?,
                &Tensor::from_slice(&buf.v, (rows, kv, 1, d), dev)?,
            )?;
            crate::ggml_ops::attention_into(
                &buf.q_rot,
                (rows, h, 1, d),
                &keys,
                &values,
                mask,
                a.scale as f32,
                &slots,
                layer,
                &mut buf.attn,
            )?;
            products_into(&[&a.o_proj], &buf.attn, rows, &mut [&mut buf.proj], adapter)?;
            let post = block.post_attn_norm.as_ref();
            add_residual(&mut buf.x, &buf.proj, post, &mut buf.normed);

            // Feed-forward block.
            let m = &block.mlp;
            norm_rows(&block.ffn_norm, &buf.x, &mut buf.normed);
            products_into(
                &[&m.gate_proj, &m.up_proj],
                &buf.normed,
                rows,
                &mut [&mut buf.gate, &mut buf.up],
                adapter,
            )?;
            let gated = match m.activation {
                Activation::Silu => crate::ggml_ops::swiglu_row,
                Activation::GeluTanh => crate::ggml_ops::geglu_row,
            };
            let f = c.intermediate_size;
            for ((g, u), y) in buf
                .gate
                .chunks_exact(f)
                .zip(buf.up.chunks_exact(f))
                .zip(buf.act.chunks_exact_mut(f))
            {
                gated(g, u, y);
            }
            products_into(
                &[&m.down_proj],
                &buf.act,
                rows,
                &mut [&mut buf.proj],
                adapter,
            )?;
            let post = block.post_ffn_norm.as_ref();
            add_residual(&mut buf.x, &buf.proj, post, &mut buf.normed);
        }
        state.len += 1;

        let logits = match opts.logits {
            LogitsFor::None => None,
            _ => {
                norm_rows(&self.norm, &buf.x, &mut buf.normed);
                let mut logits = vec![0f32; rows * c.vocab_size];
                let head = [&self.lm_head];
                products_into(&head, &buf.normed, rows, &mut [&mut logits], adapter)?;
                let logits = Tensor::from_vec(logits, (rows, 1, c.vocab_size), &Device::Cpu)?;
                Some(self.softcap(logits)?)
            }
        };
        Ok(ForwardOutput {
            logits,
            hidden: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::left_padded_batch;

    /// A real model, pulled once into vigil's cache (as the integration tests do).
    fn decoder(name: &str) -> Decoder {
        let path = vigil_hub::pull(name)
            .unwrap_or_else(|e| panic!("cannot fetch test model {name}: {e}"))
            .path;
        crate::Model::load(&path)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
            .decoder
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Prefills left-padded `prompts` twice, then feeds both states the same tokens one
    /// at a time, through the token step and through the tensor path, and asks for the
    /// same logits bit for bit at every step.
    fn steps_match_the_tensor_path(d: &Decoder, prompts: &[Vec<u32>], steps: usize) {
        steps_match_with(d, prompts, steps, None)
    }

    /// [`steps_match_the_tensor_path`] with the named adapter on.
    fn steps_match_with(d: &Decoder, prompts: &[Vec<u32>], steps: usize, adapter: Option<&str>) {
        vigil_kernels::team::with_team(|| {
            let (input, pad) = left_padded_batch(prompts, 0).unwrap();
            let opts = ForwardOptions {
                adapter: adapter.map(str::to_string),
                ..Default::default()
            };
            let mut fast = d.new_state(pad.clone());
            let mut slow = d.new_state(pad);
            d.forward_tensors(&input, &mut fast, &opts).unwrap();
            d.forward_tensors(&input, &mut slow, &opts).unwrap();
            for step in 0..steps {
                let ids: Vec<u32> = (0..prompts.len())
                    .map(|r| (100 + 37 * step + 11 * r) as u32)
                    .collect();
                let input = Tensor::from_vec(ids, (prompts.len(), 1), &Device::Cpu).unwrap();
                assert!(d.token_step_applies(1, &opts).unwrap());
                let a = d.token_step(&input, &mut fast, &opts).unwrap();
                let b = d.forward_tensors(&input, &mut slow, &opts).unwrap();
                let (a, b) = (a.logits.unwrap(), b.logits.unwrap());
                assert_eq!(a.dims(), b.dims());
                assert!(bits(&a) == bits(&b), "step {step}: logits differ");
                assert_eq!(fast.len(), slow.len());
            }
        })
    }

    fn prompt(n: usize, seed: u32) -> Vec<u32> {
        (0..n as u32)
            .map(|i| 1 + (i * 7919 + seed) % 20000)
            .collect()
    }

    #[test]
    fn smollm2_steps_equal_the_tensor_path_bit_for_bit() {
        let d = decoder("smollm2-135m-instruct");
        steps_match_the_tensor_path(&d, &[prompt(9, 3)], 4);
        // Three rows, two of them left-padded: per-row positions, pads masked.
        steps_match_the_tensor_path(&d, &[prompt(9, 1), prompt(4, 2), prompt(6, 5)], 3);
        // Qwen2's q/k/v biases, added to the products in place.
        let mut biased = d.clone();
        for (i, b) in biased.blocks.iter_mut().enumerate() {
            for (j, l) in [&mut b.attn.q_proj, &mut b.attn.k_proj, &mut b.attn.v_proj]
                .into_iter()
                .enumerate()
            {
                let vals = crate::ggml_ops::tests::values(l.out_dim, (10 * i + j) as u64);
                l.bias = Some(Tensor::from_vec(vals, l.out_dim, &Device::Cpu).unwrap());
            }
        }
        steps_match_the_tensor_path(&biased, &[prompt(7, 8), prompt(5, 9)], 3);
    }

    #[test]
    fn gemma3_steps_equal_the_tensor_path_bit_for_bit() {
        // Head norms, sandwich norms, GeGLU, scaled embeddings and two rope bases; a
        // window of 6 so that the local layers' window mask cuts into the cache.
        let mut d = decoder("gemma3-270m");
        d.config.sliding_window = Some(6);
        steps_match_the_tensor_path(&d, &[prompt(8, 4)], 4);
        steps_match_the_tensor_path(&d, &[prompt(8, 6), prompt(3, 7)], 3);
    }

    #[test]
    fn steps_with_an_adapter_equal_the_tensor_path_bit_for_bit() {
        use crate::lora::{LoraConfig, TargetModules};
        let mut d = decoder("smollm2-135m-instruct");
        let config = LoraConfig::new(4, 8.0, TargetModules::AllLinear);
        d.add_lora("t", &config, 3).unwrap();
        // A fresh adapter's B is zero (no change to the model): give it values.
        let mut tensors = d.lora_tensors("t").unwrap();
        for (i, (key, t)) in tensors.iter_mut().enumerate() {
            if key.contains("lora_B") {
                let vals = crate::ggml_ops::tests::values(t.elem_count(), i as u64);
                let vals: Vec<f32> = vals.iter().map(|v| v * 0.05).collect();
                *t = Tensor::from_vec(vals, t.shape(), &Device::Cpu).unwrap();
            }
        }
        d.remove_lora("t");
        d.attach_lora("t", &config, &tensors).unwrap();
        steps_match_with(&d, &[prompt(7, 11)], 3, Some("t"));
        steps_match_with(&d, &[prompt(6, 12), prompt(3, 13)], 3, Some("t"));
        // And the adapter changes the logits (it is applied at all).
        vigil_kernels::team::with_team(|| {
            let input = Tensor::from_vec(prompt(5, 14), (1, 5), &Device::Cpu).unwrap();
            let one = Tensor::from_vec(vec![42u32], (1, 1), &Device::Cpu).unwrap();
            let run = |adapter: Option<&str>| {
                let opts = ForwardOptions {
                    adapter: adapter.map(str::to_string),
                    ..Default::default()
                };
                let mut state = d.new_state(vec![0]);
                d.forward(&input, &mut state, &opts).unwrap();
                bits(&d.forward(&one, &mut state, &opts).unwrap().logits.unwrap())
            };
            assert!(run(Some("t")) != run(None));
        });
    }

    #[test]
    fn traces_and_hidden_states_take_the_tensor_path() {
        let d = decoder("smollm2-135m-instruct");
        assert!(d.token_step_applies(1, &ForwardOptions::default()).unwrap());
        assert!(!d.token_step_applies(2, &ForwardOptions::default()).unwrap());
        let hidden = ForwardOptions {
            hidden_layers: vec![1],
            ..Default::default()
        };
        assert!(!d.token_step_applies(1, &hidden).unwrap());
    }
}
