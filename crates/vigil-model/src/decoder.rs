//! `Decoder`: one pre-norm transformer decoder for every supported family.
//!
//! Reads top to bottom like the papers: embed → N × (attention block, MLP block) → norm →
//! output projection. Llama / Mistral / SmolLM2, Qwen2 and Gemma 3 differ only in what the
//! [`ModelConfig`] switches on (biases, q/k norms, sandwich norms, GeGLU, scaled
//! embeddings, sliding windows, rope layout and bases).
//!
//! Batches are left-padded: every row ends at the same slot, and a row's pad slots are
//! masked out as keys. A [`KvState`] holds the cache and the pad counts of one batch, so
//! one loaded decoder can serve many independent sequences. A pass of one new token per
//! row in inference goes through `token_step` (the same ops on buffers kept for the step,
//! no candle tensors but the cache); everything else through candle tensors.

use crate::config::{Activation, ModelConfig};
use crate::error::{ModelError, Result};
use crate::ggml_ops::KeySlots;
use crate::layers::{
    softmax_last, Embedding, Linear, LinearWeight, Pass, Precision, RecomputedAttention, RmsNorm,
    RotaryEmbedding,
};
use crate::lora::LoraConfig;
use crate::weights::{Weight, WeightSource};
use candle_core::{DType, Device, Tensor};
use candle_nn::kv_cache::KvCache;
use std::collections::BTreeMap;

mod token_step;

/// Self-attention with grouped key/value heads.
#[derive(Debug, Clone)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    /// Position in the stack (names traced tensors).
    index: usize,
}

/// Gated feed-forward network: down(act(gate(x)) * up(x)).
#[derive(Debug, Clone)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    activation: Activation,
}

/// One decoder layer.
#[derive(Debug, Clone)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub post_attn_norm: Option<RmsNorm>,
    pub ffn_norm: RmsNorm,
    pub mlp: Mlp,
    pub post_ffn_norm: Option<RmsNorm>,
    /// Sliding-window layer (local rope base, windowed mask).
    pub local: bool,
    /// Position in the stack (names traced tensors).
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct Decoder {
    pub config: ModelConfig,
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    pub lm_head: Linear,
    rope_global: RotaryEmbedding,
    rope_local: RotaryEmbedding,
    /// Which kernels forward passes use (the trainer switches to differentiable ones).
    pub precision: Precision,
    /// Loaded LoRA adapters by name; their weights live on the linear layers.
    pub(crate) adapters: BTreeMap<String, LoraConfig>,
}

/// Which positions need logits: computing the output head (vocab × hidden) for every
/// position of a prompt is wasted work when only the next token is wanted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogitsFor {
    None,
    #[default]
    Last,
    All,
    /// One position per row (`[b, 1, vocab]`): each right-padded row's last real token.
    At(Vec<usize>),
}

#[derive(Debug, Clone, Default)]
pub struct ForwardOptions {
    pub logits: LogitsFor,
    /// Hidden states to return, numbered as in Hugging Face's `hidden_states`: 0 is the
    /// embedding output, `i` the output of layer `i - 1`, and `num_layers` the final
    /// output after the last norm.
    pub hidden_layers: Vec<usize>,
    /// The LoRA adapter to run with, by name; `None` runs the base model.
    pub adapter: Option<String>,
}

/// What a training forward pass needs besides the tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainPass<'a> {
    pub adapter: Option<&'a str>,
    /// Seed for the adapters' dropout masks; `None` disables dropout (evaluation).
    pub dropout_seed: Option<u64>,
    /// Flat positions (`row * t + i`, u32) whose logits are wanted; `None` = all.
    pub logit_rows: Option<&'a Tensor>,
}

#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// `[b, 1, vocab]` for `LogitsFor::Last`, `[b, t, vocab]` for `All`.
    pub logits: Option<Tensor>,
    /// `(index, [b, t, hidden])`, in the order asked for.
    pub hidden: Vec<(usize, Tensor)>,
}

/// The per-sequence state of a batch: KV cache per layer, pad count per row, length so far.
#[derive(Debug, Clone)]
pub struct KvState {
    caches: Vec<KvCache>,
    pad: Vec<usize>,
    len: usize,
}

/// The KV cache grows in steps of this many slots.
const KV_GROW: usize = 512;

impl KvState {
    /// A state for `pad.len()` rows whose first `pad[r]` slots are padding.
    pub fn new(config: &ModelConfig, pad: Vec<usize>) -> Self {
        KvState {
            caches: (0..config.num_layers)
                .map(|_| KvCache::new(2, KV_GROW))
                .collect(),
            pad,
            len: 0,
        }
    }
    pub fn batch_size(&self) -> usize {
        self.pad.len()
    }
    /// Slots used so far (including padding).
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn pad(&self) -> &[usize] {
        &self.pad
    }
    pub fn reset(&mut self) {
        self.caches.iter_mut().for_each(KvCache::reset);
        self.len = 0;
    }

    /// An independent copy of the cache so far: a shared prefix (a system prompt) is run
    /// once, and every prompt that continues it forwards only its own tokens on a fork.
    /// (`clone` shares the cache buffers, which the next append writes in place.)
    pub fn fork(&self) -> Result<KvState> {
        self.fork_rows(1)
    }

    /// A copy of a one-row state for a batch of `rows` rows that all continue it: many
    /// prompts after one prefix in a single forward pass. Their own tokens go after the
    /// prefix, right-padded (a pad after a row's last token is in its future, so masked).
    pub fn fork_rows(&self, rows: usize) -> Result<KvState> {
        if rows != 1 && self.batch_size() != 1 {
            return Err(ModelError::Generation(format!(
                "only a one-row state can be repeated, this one has {} rows",
                self.batch_size()
            )));
        }
        let caches = self
            .caches
            .iter()
            .map(|c| {
                let mut copy = KvCache::new(2, KV_GROW);
                if let (Some(k), Some(v)) = (c.k()?, c.v()?) {
                    let repeat = |x: Tensor| match rows {
                        1 => x.contiguous(),
                        n => x.repeat((n, 1, 1, 1)),
                    };
                    copy.append(&repeat(k)?, &repeat(v)?)?;
                }
                Ok(copy)
            })
            .collect::<Result<_>>()?;
        let pad = match rows {
            1 => self.pad.clone(),
            n => vec![self.pad[0]; n],
        };
        Ok(KvState {
            caches,
            pad,
            len: self.len,
        })
    }
}

/// A linear layer over `w`. A quantised weight mapped from the file gets its copy for
/// decode (packed in row groups where the CPU has that kernel; `LinearWeight::Quantized`),
/// and its mapped pages go back as the copy is made, so the weights are held once, even
/// at the peak of loading.
fn linear_from(src: &WeightSource, w: Weight, bias: Option<Tensor>) -> Result<Linear> {
    let mapped = match &w {
        Weight::Quantized(q) => src.maps(&q.data()?),
        Weight::Dense(_) => false,
    };
    let Some(arena) = src.copy_arena().filter(|_| mapped) else {
        return Linear::new(w, bias);
    };
    // Loading is one thread, so the lock is never contended; a panic elsewhere leaves
    // the arena consistent (it only ever hands out fresh bytes).
    let mut arena = arena.lock().unwrap_or_else(|e| e.into_inner());
    let mut released = 0;
    Linear::new_with_copy(w, bias, &mut arena, &mut |copied: &[u8]| {
        released += src.release_pages(&copied[released..]);
    })
}

impl Attention {
    fn load(src: &mut WeightSource, cfg: &ModelConfig, i: usize) -> Result<Self> {
        let (h, kv, d, e) = (
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim,
            cfg.hidden_size,
        );
        let linear = |src: &mut WeightSource, name: &str, out: usize, inp: usize, bias: bool| {
            let w = src.get(&format!("blk.{i}.{name}.weight"), &[out, inp])?;
            let path = module_path(i, name, cfg);
            let b = if bias {
                Some(crate::layers::vector(
                    src.get(&format!("blk.{i}.{name}.bias"), &[out])?,
                )?)
            } else {
                None
            };
            Ok::<_, ModelError>(linear_from(src, w, b)?.with_path(path))
        };
        let norm = |src: &mut WeightSource, name: &str| -> Result<RmsNorm> {
            let w = crate::layers::vector(src.get(&format!("blk.{i}.{name}.weight"), &[d])?)?;
            RmsNorm::new(w, cfg.norm_weight_offset, cfg.rms_norm_eps)
        };
        Ok(Attention {
            q_proj: linear(src, "attn_q", h * d, e, cfg.qkv_bias)?,
            k_proj: linear(src, "attn_k", kv * d, e, cfg.qkv_bias)?,
            v_proj: linear(src, "attn_v", kv * d, e, cfg.qkv_bias)?,
            o_proj: linear(src, "attn_output", e, h * d, false)?,
            q_norm: cfg.qk_norm.then(|| norm(src, "attn_q_norm")).transpose()?,
            k_norm: cfg.qk_norm.then(|| norm(src, "attn_k_norm")).transpose()?,
            num_heads: h,
            num_kv_heads: kv,
            head_dim: d,
            scale: cfg.attn_scale as f64,
            index: i,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: (&RotaryEmbedding, &Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
        pass: &Pass,
        slots: &KeySlots,
    ) -> Result<Tensor> {
        let precision = pass.precision;
        let layer = self.index;
        let (b, t, _) = x.dims3()?;
        let (h, kv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?)
        };
        let [q, k, v]: [Tensor; 3] =
            Linear::forward_group(&[&self.q_proj, &self.k_proj, &self.v_proj], x, pass)?
                .try_into()
                .expect("one output per layer");
        let mut q = heads(q, h)?;
        let mut k = heads(k, kv)?;
        let v = heads(v, kv)?;
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q, precision)?;
            k = kn.forward(&k, precision)?;
        }
        let (rope, cos, sin) = rope;
        let q = rope.apply(&q, cos, sin, precision)?;
        let k = rope.apply(&k, cos, sin, precision)?;
        if crate::trace::enabled() {
            crate::trace::trace_layer("Qcur", layer, &q);
            crate::trace::trace_layer("Kcur", layer, &k);
            crate::trace::trace_layer("Vcur", layer, &v);
        }
        // Training runs whole sequences without a cache: the cache's in-place append is
        // invisible to autograd.
        let (k, v) = match cache {
            Some(cache) => cache.append(&k, &v)?,
            None => (k, v),
        };
        let s = k.dim(2)?;
        // Grouped-query attention without copying K/V per query head: the query heads that
        // share a K/V head are stacked along the sequence axis.
        let group = h / kv;
        let q = q.reshape((b, kv, group * t, d))?;
        let out = if precision == Precision::Differentiable {
            q.apply_op3(
                &k.contiguous()?,
                &v.contiguous()?,
                RecomputedAttention {
                    mask: mask.cloned(),
                    scale: self.scale,
                    heads: h,
                    t,
                },
            )?
        } else if q.dtype() == DType::F32 {
            let q = q.reshape((b, h, t, d))?;
            crate::ggml_ops::attention(&q, &k, &v, mask, self.scale as f32, slots, layer)?
        } else {
            let scores = (q.matmul(&k.contiguous()?.t()?)? * self.scale)?;
            let scores = scores.reshape((b, h, t, s))?;
            let scores = match mask {
                Some(m) => scores.broadcast_add(m)?,
                None => scores,
            };
            let probs = softmax_last(&scores, precision)?;
            crate::trace::trace_layer("kq_soft_max", layer, &probs);
            let probs = probs.reshape((b, kv, group * t, s))?;
            probs.matmul(&v.contiguous()?)?
        };
        let out = out.reshape((b, h, t, d))?;
        let out = out.transpose(1, 2)?.reshape((b, t, h * d))?;
        crate::trace::trace_layer("kqv_out", layer, &out);
        self.o_proj.forward_pass(&out, pass)
    }
}

impl Mlp {
    fn load(src: &mut WeightSource, cfg: &ModelConfig, i: usize) -> Result<Self> {
        let (e, f) = (cfg.hidden_size, cfg.intermediate_size);
        let mut linear = |name: &str, out: usize, inp: usize| {
            let w = src.get(&format!("blk.{i}.{name}.weight"), &[out, inp])?;
            Ok::<_, ModelError>(linear_from(src, w, None)?.with_path(module_path(i, name, cfg)))
        };
        Ok(Mlp {
            gate_proj: linear("ffn_gate", f, e)?,
            up_proj: linear("ffn_up", f, e)?,
            down_proj: linear("ffn_down", e, f)?,
            activation: cfg.activation,
        })
    }

    fn forward(&self, x: &Tensor, pass: &Pass, layer: usize) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] =
            Linear::forward_group(&[&self.gate_proj, &self.up_proj], x, pass)?
                .try_into()
                .expect("one output per layer");
        crate::trace::trace_layer("ffn_gate", layer, &gate);
        crate::trace::trace_layer("ffn_up", layer, &up);
        // Inference follows ggml's rounding; training needs candle's differentiable ops.
        let ggml = pass.precision == Precision::Inference && gate.dtype() == DType::F32;
        let (act, act_name) = match self.activation {
            Activation::Silu if ggml => (crate::ggml_ops::swiglu(&gate, &up)?, "ffn_swiglu"),
            Activation::GeluTanh if ggml => (crate::ggml_ops::geglu(&gate, &up)?, "ffn_geglu"),
            Activation::Silu => ((candle_nn::ops::silu(&gate)? * up)?, "ffn_swiglu"),
            Activation::GeluTanh => ((gate.gelu()? * up)?, "ffn_geglu"),
        };
        crate::trace::trace_layer(act_name, layer, &act);
        self.down_proj.forward_pass(&act, pass)
    }
}

impl Block {
    fn load(src: &mut WeightSource, cfg: &ModelConfig, i: usize) -> Result<Self> {
        let norm = |src: &mut WeightSource, name: &str| -> Result<RmsNorm> {
            let w = crate::layers::vector(
                src.get(&format!("blk.{i}.{name}.weight"), &[cfg.hidden_size])?,
            )?;
            RmsNorm::new(w, cfg.norm_weight_offset, cfg.rms_norm_eps)
        };
        Ok(Block {
            attn_norm: norm(src, "attn_norm")?,
            attn: Attention::load(src, cfg, i)?,
            post_attn_norm: cfg
                .sandwich_norms
                .then(|| norm(src, "post_attention_norm"))
                .transpose()?,
            ffn_norm: norm(src, "ffn_norm")?,
            mlp: Mlp::load(src, cfg, i)?,
            post_ffn_norm: cfg
                .sandwich_norms
                .then(|| norm(src, "post_ffw_norm"))
                .transpose()?,
            local: cfg.layer_is_local[i],
            index: i,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: (&RotaryEmbedding, &Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
        pass: &Pass,
        slots: &KeySlots,
    ) -> Result<Tensor> {
        let precision = pass.precision;
        let layer = self.index;
        let trace = |name: &str, t: &Tensor| crate::trace::trace_layer(name, layer, t);
        let h = self.attn_norm.forward(x, precision)?;
        trace("attn_norm", &h);
        let mut h = self.attn.forward(&h, rope, mask, cache, pass, slots)?;
        trace("attn_out", &h);
        if let Some(n) = &self.post_attn_norm {
            h = n.forward(&h, precision)?;
            trace("attn_post_norm", &h);
        }
        let x = (x + h)?;
        // llama.cpp's names for the residual sum: `sa_out` in Gemma's graph.
        trace(
            if self.post_attn_norm.is_some() {
                "sa_out"
            } else {
                "ffn_inp"
            },
            &x,
        );
        let h = self.ffn_norm.forward(&x, precision)?;
        trace("ffn_norm", &h);
        let mut h = self.mlp.forward(&h, pass, layer)?;
        trace("ffn_out", &h);
        if let Some(n) = &self.post_ffn_norm {
            h = n.forward(&h, precision)?;
            trace("ffn_post_norm", &h);
        }
        let out = (x + h)?;
        trace("l_out", &out);
        Ok(out)
    }
}

impl Decoder {
    /// Builds the decoder from a weight source, checking every tensor's shape.
    pub fn load(config: ModelConfig, src: &mut WeightSource) -> Result<Self> {
        let (v, e) = (config.vocab_size, config.hidden_size);
        let mut embed = Embedding::new(src.get("token_embd.weight", &[v, e])?);
        let blocks = (0..config.num_layers)
            .map(|i| Block::load(src, &config, i))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(
            crate::layers::vector(src.get("output_norm.weight", &[e])?)?,
            config.norm_weight_offset,
            config.rms_norm_eps,
        )?;
        let head = if config.tie_embeddings {
            embed.weight()
        } else {
            src.get("output.weight", &[v, e])?
        };
        let lm_head = linear_from(src, head, None)?.with_path("lm_head");
        // A tied table whose pages went back while the head was copied for decode is read
        // from that copy from now on.
        if let (
            true,
            Embedding::Quantized(table),
            LinearWeight::Quantized {
                decode_copy: Some(rows),
                ..
            },
        ) = (config.tie_embeddings, &embed, &lm_head.weight)
        {
            embed = Embedding::HeadCopy {
                table: table.clone(),
                rows: rows.clone(),
            };
        }
        let freq_factors = if src.has("rope_freqs.weight") {
            let w = src.get("rope_freqs.weight", &[config.head_dim / 2])?;
            Some(w.to_dense()?.to_vec1::<f32>()?)
        } else {
            None
        };
        let rope_global = RotaryEmbedding::new(&config, config.rope_theta, freq_factors.as_deref());
        let rope_local =
            RotaryEmbedding::new(&config, config.rope_theta_local, freq_factors.as_deref());
        Ok(Decoder {
            config,
            embed,
            blocks,
            norm,
            lm_head,
            rope_global,
            rope_local,
            precision: Precision::Inference,
            adapters: BTreeMap::new(),
        })
    }

    pub fn new_state(&self, pad: Vec<usize>) -> KvState {
        KvState::new(&self.config, pad)
    }

    /// Runs `tokens` (`[b, t]` u32) after what `state` already holds.
    pub fn forward(
        &self,
        tokens: &Tensor,
        state: &mut KvState,
        opts: &ForwardOptions,
    ) -> Result<ForwardOutput> {
        // An inference pass is a hundred or more short parallel sections per token: they
        // run on the kernels' spinning thread team rather than through rayon hand-offs.
        vigil_kernels::team::with_team(|| self.forward_inference(tokens, state, opts))
    }

    fn forward_inference(
        &self,
        tokens: &Tensor,
        state: &mut KvState,
        opts: &ForwardOptions,
    ) -> Result<ForwardOutput> {
        let (b, t) = tokens.dims2()?;
        if b != state.batch_size() {
            return Err(ModelError::Generation(format!(
                "batch of {b} rows for a state of {} rows",
                state.batch_size()
            )));
        }
        if let Some(&bad) = opts
            .hidden_layers
            .iter()
            .find(|&&l| l > self.config.num_layers)
        {
            return Err(ModelError::Generation(format!(
                "hidden state {bad} asked for; the model has {} layers",
                self.config.num_layers
            )));
        }
        self.check_adapter(opts.adapter.as_deref())?;
        if self.token_step_applies(t, opts)? {
            return self.token_step(tokens, state, opts);
        }
        self.forward_tensors(tokens, state, opts)
    }

    /// [`Decoder::forward`] through candle tensors: any number of tokens, adapters, traced
    /// and hidden states.
    fn forward_tensors(
        &self,
        tokens: &Tensor,
        state: &mut KvState,
        opts: &ForwardOptions,
    ) -> Result<ForwardOutput> {
        let (b, t) = tokens.dims2()?;
        let pass = Pass {
            precision: self.precision,
            adapter: opts.adapter.as_deref(),
            dropout_seed: None,
        };
        let offset = state.len;
        let (x, mut hidden) = self.trunk(
            tokens,
            &state.pad,
            offset,
            Some(&mut state.caches),
            &pass,
            &opts.hidden_layers,
        )?;
        state.len += t;
        // Keep the caller's order.
        hidden.sort_by_key(|(i, _)| {
            opts.hidden_layers
                .iter()
                .position(|l| l == i)
                .unwrap_or(usize::MAX)
        });
        let logits = match &opts.logits {
            LogitsFor::None => None,
            LogitsFor::Last => Some(self.project(&x.narrow(1, t - 1, 1)?.contiguous()?, &pass)?),
            LogitsFor::All => Some(self.project(&x, &pass)?),
            LogitsFor::At(at) => {
                if at.len() != b || at.iter().any(|&i| i >= t) {
                    return Err(ModelError::Generation(format!(
                        "logits asked at {at:?} for {b} rows of {t} positions"
                    )));
                }
                let rows = at
                    .iter()
                    .enumerate()
                    .map(|(r, &i)| x.get(r)?.narrow(0, i, 1))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Some(self.project(&Tensor::stack(&rows, 0)?, &pass)?)
            }
        };
        Ok(ForwardOutput { logits, hidden })
    }

    /// A training forward pass over whole left-padded sequences: no KV cache, and only ops
    /// with backward passes, so a loss built on the result back-propagates into the
    /// adapter. Returns logits `[n, vocab]` for the flat positions `row * t + i` listed in
    /// `pass.logit_rows`, or `[b, t, vocab]` for every position when it is `None` —
    /// computing the output head only where the loss needs it saves a large share of the
    /// work for a big vocabulary.
    pub fn forward_train(
        &self,
        tokens: &Tensor,
        pad: &[usize],
        pass: &TrainPass,
    ) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        if b != pad.len() {
            return Err(ModelError::Generation(format!(
                "batch of {b} rows with {} pad counts",
                pad.len()
            )));
        }
        let layer_pass = Pass {
            precision: Precision::Differentiable,
            adapter: pass.adapter,
            dropout_seed: pass.dropout_seed,
        };
        self.check_adapter(layer_pass.adapter)?;
        let (x, _) = self.trunk(tokens, pad, 0, None, &layer_pass, &[])?;
        match pass.logit_rows {
            None => self.project(&x, &layer_pass),
            Some(rows) => {
                let x = x
                    .reshape((b * t, self.config.hidden_size))?
                    .index_select(rows, 0)?;
                self.project(&x, &layer_pass)
            }
        }
    }

    fn check_adapter(&self, adapter: Option<&str>) -> Result<()> {
        match adapter {
            Some(name) if !self.has_adapter(name) => Err(ModelError::Adapter(format!(
                "no adapter named '{name}' is loaded (loaded: {})",
                self.adapter_names().join(", ")
            ))),
            _ => Ok(()),
        }
    }

    /// Embedding and decoder blocks, up to and including the final norm. `caches` is
    /// `None` for training passes. Returns the final hidden state `[b, t, hidden]` and the
    /// hidden states in `want` (HF numbering).
    fn trunk(
        &self,
        tokens: &Tensor,
        pad: &[usize],
        offset: usize,
        mut caches: Option<&mut Vec<KvCache>>,
        pass: &Pass,
        want: &[usize],
    ) -> Result<(Tensor, Vec<(usize, Tensor)>)> {
        let t = tokens.dim(1)?;
        if t == 0 {
            return Err(ModelError::Generation("empty input".into()));
        }
        let positions: Vec<Vec<u32>> = pad
            .iter()
            .map(|&p| {
                (offset..offset + t)
                    .map(|slot| slot.saturating_sub(p) as u32)
                    .collect()
            })
            .collect();
        let (cos_g, sin_g) = self.rope_global.tables(&positions)?;
        let (cos_l, sin_l) = if self.config.rope_theta_local != self.config.rope_theta {
            self.rope_local.tables(&positions)?
        } else {
            (cos_g.clone(), sin_g.clone())
        };
        let mask_global = attention_mask(pad, offset, t, None)?;
        let mask_local = match self.config.sliding_window {
            Some(w) => attention_mask(pad, offset, t, Some(w))?,
            None => mask_global.clone(),
        };

        let slots = KeySlots { pad, offset };
        let mut hidden = Vec::new();
        let wanted = |i: usize| want.contains(&i);
        let mut x = self.embed_tokens(tokens)?;
        if wanted(0) {
            hidden.push((0, x.clone()));
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let (rope, mask) = if block.local {
                ((&self.rope_local, &cos_l, &sin_l), mask_local.as_ref())
            } else {
                ((&self.rope_global, &cos_g, &sin_g), mask_global.as_ref())
            };
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            x = block.forward(&x, rope, mask, cache, pass, &slots)?;
            if i + 1 < self.config.num_layers && wanted(i + 1) {
                hidden.push((i + 1, x.clone()));
            }
        }
        let x = self.norm.forward(&x, pass.precision)?;
        crate::trace::trace("result_norm", &x);
        if wanted(self.config.num_layers) {
            hidden.push((self.config.num_layers, x.clone()));
        }
        Ok((x, hidden))
    }

    /// The embeddings of `tokens` (`[b, t]`), scaled where the family scales them.
    fn embed_tokens(&self, tokens: &Tensor) -> Result<Tensor> {
        let mut x = self.embed.forward(tokens)?;
        crate::trace::trace("embd", &x);
        if let Some(scale) = self.config.embed_scale {
            x = (x * scale as f64)?;
            crate::trace::trace("inp_scaled", &x);
        }
        Ok(x)
    }

    fn project(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        self.softcap(self.lm_head.forward_pass(x, pass)?)
    }

    /// Logits squashed into `(−cap, cap)` where the family caps them.
    fn softcap(&self, logits: Tensor) -> Result<Tensor> {
        Ok(match self.config.final_logit_softcap {
            Some(cap) => ((logits / cap as f64)?.tanh()? * cap as f64)?,
            None => logits,
        })
    }
}

/// Additive mask `[b, 1, t, offset + t]`: 0 where query slot `offset + i` may see key slot
/// `j`, −∞ elsewhere. A key is visible when it is not in the future, not padding, and (for
/// sliding-window layers) less than `window` positions back. Query rows that are themselves
/// padding see only earlier padding, so their (discarded) softmax never divides by zero.
/// Returns `None` when nothing needs masking (one unpadded row, one new token).
pub fn attention_mask(
    pad: &[usize],
    offset: usize,
    t: usize,
    window: Option<usize>,
) -> Result<Option<Tensor>> {
    let s = offset + t;
    let unpadded = pad.iter().all(|&p| p == 0);
    if t == 1 && unpadded && window.is_none_or(|w| s <= w) {
        return Ok(None);
    }
    let b = pad.len();
    let mut data = vec![0f32; b * t * s];
    for (r, &p) in pad.iter().enumerate() {
        for i in 0..t {
            let q = offset + i;
            let row = &mut data[(r * t + i) * s..(r * t + i + 1) * s];
            for (k, m) in row.iter_mut().enumerate() {
                let visible = k <= q && (k >= p || q < p) && window.is_none_or(|w| q - k < w);
                if !visible {
                    *m = f32::NEG_INFINITY;
                }
            }
        }
    }
    Ok(Some(Tensor::from_vec(data, (b, 1, t, s), &Device::Cpu)?))
}

/// A left-padded `[b, t]` batch from token rows; returns the tensor and the pad counts.
pub fn left_padded_batch(rows: &[Vec<u32>], pad_id: u32) -> Result<(Tensor, Vec<usize>)> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    if t == 0 {
        return Err(ModelError::Generation("empty batch".into()));
    }
    let mut data = Vec::with_capacity(rows.len() * t);
    let mut pad = Vec::with_capacity(rows.len());
    for row in rows {
        let p = t - row.len();
        pad.push(p);
        data.extend(std::iter::repeat_n(pad_id, p));
        data.extend_from_slice(row);
    }
    Ok((Tensor::from_vec(data, (rows.len(), t), &Device::Cpu)?, pad))
}

/// `[b, t]` tokens with each row's pad after its tokens: the layout for rows that continue
/// one shared prefix ([`KvState::fork_rows`]), whose positions must all start where the
/// prefix ends. Returns the tensor and each row's length.
pub fn right_padded_batch(rows: &[&[u32]], pad_id: u32) -> Result<(Tensor, Vec<usize>)> {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if t == 0 {
        return Err(ModelError::Generation("empty batch".into()));
    }
    let mut data = Vec::with_capacity(rows.len() * t);
    for row in rows {
        data.extend_from_slice(row);
        data.extend(std::iter::repeat_n(pad_id, t - row.len()));
    }
    let lens = rows.iter().map(|r| r.len()).collect();
    Ok((Tensor::from_vec(data, (rows.len(), t), &Device::Cpu)?, lens))
}

/// How many leading tokens all `prompts` share, leaving every prompt at least one of its
/// own (a row needs a token to continue the prefix with).
pub fn shared_prefix_len(prompts: &[Vec<u32>]) -> usize {
    let Some((first, rest)) = prompts.split_first() else {
        return 0;
    };
    let mut n = first.len();
    for p in rest {
        n = n.min(first.iter().zip(p).take_while(|(a, b)| a == b).count());
    }
    let shortest = prompts.iter().map(Vec::len).min().unwrap_or(0);
    n.min(shortest.saturating_sub(1))
}

/// The Hugging Face module path of block `i`'s linear layer with GGUF name `name`.
fn module_path(i: usize, name: &str, cfg: &ModelConfig) -> String {
    crate::weights::hf_tensor_name(&format!("blk.{i}.{name}.weight"), cfg.family)
        .and_then(|p| p.strip_suffix(".weight").map(str::to_string))
        .unwrap_or_else(|| format!("blk.{i}.{name}"))
}

/// Converts a weight to an f32 tensor; shared helper for code outside this module.
pub fn dense(weight: &Weight) -> Result<Tensor> {
    Ok(weight.to_dense()?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_rows(m: &Tensor) -> Vec<Vec<Vec<bool>>> {
        let (b, _, t, s) = m.dims4().unwrap();
        let v = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (0..b)
            .map(|r| {
                (0..t)
                    .map(|i| (0..s).map(|k| v[(r * t + i) * s + k] == 0.0).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn mask_is_causal_and_hides_padding() {
        let m = attention_mask(&[0, 2], 0, 3, None).unwrap().unwrap();
        let rows = mask_rows(&m);
        assert_eq!(rows[0][0], vec![true, false, false]);
        assert_eq!(rows[0][2], vec![true, true, true]);
        // Row 1 has two pad slots: its real token (slot 2) sees only itself.
        assert_eq!(rows[1][2], vec![false, false, true]);
        // Pad query rows see earlier padding only (finite softmax).
        assert_eq!(rows[1][1], vec![true, true, false]);
    }

    #[test]
    fn sliding_window_limits_lookback() {
        let m = attention_mask(&[0], 3, 1, Some(2)).unwrap().unwrap();
        assert_eq!(mask_rows(&m)[0][0], vec![false, false, true, true]);
        assert!(attention_mask(&[0], 3, 1, None).unwrap().is_none());
    }

    #[test]
    fn left_padding_aligns_row_ends() {
        let (t, pad) = left_padded_batch(&[vec![5, 6, 7], vec![9]], 0).unwrap();
        assert_eq!(pad, vec![0, 2]);
        assert_eq!(
            t.to_vec2::<u32>().unwrap(),
            vec![vec![5, 6, 7], vec![0, 0, 9]]
        );
    }

    #[test]
    fn right_padding_aligns_row_starts() {
        let (t, lens) = right_padded_batch(&[&[5, 6, 7], &[9]], 0).unwrap();
        assert_eq!(lens, vec![3, 1]);
        assert_eq!(
            t.to_vec2::<u32>().unwrap(),
            vec![vec![5, 6, 7], vec![9, 0, 0]]
        );
        assert!(right_padded_batch(&[&[]], 0).is_err());
    }

    #[test]
    fn shared_prefix_leaves_every_prompt_a_token_of_its_own() {
        assert_eq!(shared_prefix_len(&[]), 0);
        assert_eq!(shared_prefix_len(&[vec![1, 2, 3]]), 2);
        assert_eq!(shared_prefix_len(&[vec![1, 2, 3, 4], vec![1, 2, 5]]), 2);
        // One prompt is the others' prefix: it keeps its last token.
        assert_eq!(shared_prefix_len(&[vec![1, 2, 3, 4], vec![1, 2]]), 1);
        assert_eq!(shared_prefix_len(&[vec![7, 2], vec![1, 2]]), 0);
    }
}
