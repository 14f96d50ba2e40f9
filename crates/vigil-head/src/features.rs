//! Pooled hidden-state features: what a head reads from the decoder.

use crate::error::{HeadError, Result};
use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use vigil_model::decoder::{left_padded_batch, right_padded_batch};
use vigil_model::{Decoder, ForwardOptions, LogitsFor, PromptPrefix};

/// How the per-token hidden states of a prompt become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean over the prompt's real (non-pad) tokens.
    #[default]
    Mean,
    /// The last token's state: what a causal model has read the whole prompt into.
    Last,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "last" => Ok(Pooling::Last),
            o => Err(format!("unknown pooling `{o}` (mean | last)")),
        }
    }
}

/// Which hidden state a head reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Hugging Face `hidden_states` indices (0 = embeddings, `num_layers` = final normed
    /// output); several are averaged.
    pub layers: Vec<usize>,
    pub pooling: Pooling,
    /// The LoRA adapter active while the features are computed (`None` = base model).
    pub adapter: Option<String>,
}

impl FeatureSpec {
    /// The final hidden state, mean-pooled, on the base model.
    pub fn final_layer(num_layers: usize) -> FeatureSpec {
        FeatureSpec {
            layers: vec![num_layers],
            pooling: Pooling::Mean,
            adapter: None,
        }
    }

    /// A layer index counted from the end when negative (`-1` = final output).
    pub fn resolve_layer(index: i64, num_layers: usize) -> Result<usize> {
        let n = num_layers as i64;
        let l = if index < 0 { n + 1 + index } else { index };
        if !(0..=n).contains(&l) {
            return Err(HeadError::Invalid(format!(
                "layer {index} is outside 0..={n} (or -1..=-{})",
                n + 1
            )));
        }
        Ok(l as usize)
    }

    fn check(&self, num_layers: usize) -> Result<()> {
        if self.layers.is_empty() {
            return Err(HeadError::Invalid("a feature spec needs a layer".into()));
        }
        if let Some(l) = self.layers.iter().find(|&&l| l > num_layers) {
            return Err(HeadError::Invalid(format!(
                "layer {l} asked for; the model has {num_layers} layers"
            )));
        }
        Ok(())
    }
}

/// Runs prompts through a decoder and pools their hidden states.
pub struct HiddenStatePool<'m> {
    decoder: &'m Decoder,
    pad_id: u32,
    /// Most tokens (rows × padded length) per forward pass.
    pub batch_tokens: usize,
    /// Most rows per forward pass.
    pub batch_rows: usize,
}

impl<'m> HiddenStatePool<'m> {
    pub fn new(decoder: &'m Decoder, pad_id: u32) -> Self {
        HiddenStatePool {
            decoder,
            pad_id,
            batch_tokens: 4096,
            batch_rows: 16,
        }
    }

    /// One feature vector per prompt, in the prompts' order. Prompts are grouped by length
    /// so padding stays small; `progress` is called with the number of prompts done.
    ///
    /// Leading tokens that every prompt shares (a task's system prompt and the chat
    /// template around it) are run once ([`PromptPrefix::common`]):
    /// each batch then continues a copy of that prefix's cache with its rows' own tokens,
    /// and each row pools the prefix's states joined to its own, as a whole-prompt prefill
    /// would give them.
    pub fn features(
        &self,
        prompts: &[Vec<u32>],
        spec: &FeatureSpec,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        spec.check(self.decoder.config.num_layers)?;
        if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
            return Err(HeadError::Invalid(format!("prompt {i} has no tokens")));
        }
        let prefix = PromptPrefix::common(
            self.decoder,
            prompts,
            spec.adapter.clone(),
            spec.layers.clone(),
        )?;
        let skip = prefix.as_ref().map_or(0, |p| p.tokens().len());
        let own = |i: usize| &prompts[i][skip..];
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(|&i| prompts[i].len());
        let mut out = vec![Vec::new(); prompts.len()];
        let mut done = 0;
        let mut start = 0;
        while start < order.len() {
            // Rows sorted by length: the last row of a group sets its padded length.
            let mut end = start + 1;
            while end < order.len()
                && end - start < self.batch_rows
                && (end - start + 1) * own(order[end]).len() <= self.batch_tokens
            {
                end += 1;
            }
            let rows: Vec<&[u32]> = order[start..end].iter().map(|&i| own(i)).collect();
            let pooled = Device::Cpu.with_context(|| match &prefix {
                Some(p) => self.batch_after(p, &rows, spec),
                None => self.batch(&rows, spec),
            })?;
            for (k, v) in pooled.into_iter().enumerate() {
                out[order[start + k]] = v;
            }
            done += end - start;
            progress(done);
            start = end;
        }
        Ok(out)
    }

    fn options(spec: &FeatureSpec) -> ForwardOptions {
        ForwardOptions {
            logits: LogitsFor::None,
            hidden_layers: spec.layers.clone(),
            adapter: spec.adapter.clone(),
        }
    }

    fn batch(&self, rows: &[&[u32]], spec: &FeatureSpec) -> Result<Vec<Vec<f32>>> {
        let rows: Vec<Vec<u32>> = rows.iter().map(|r| r.to_vec()).collect();
        let (input, pads) = left_padded_batch(&rows, self.pad_id)?;
        let mut state = self.decoder.new_state(pads.clone());
        let out = self
            .decoder
            .forward(&input, &mut state, &HiddenStatePool::options(spec))?;
        HiddenStatePool::pool(&out.hidden, &pads, spec.pooling)
    }

    /// Rows that continue `prefix`: right-padded after it, each pooled over the prefix's
    /// states and its own real tokens.
    fn batch_after(
        &self,
        prefix: &PromptPrefix,
        rows: &[&[u32]],
        spec: &FeatureSpec,
    ) -> Result<Vec<Vec<f32>>> {
        let (input, lens) = right_padded_batch(rows, self.pad_id)?;
        let mut state = prefix.fork_rows(rows.len())?;
        let out = self
            .decoder
            .forward(&input, &mut state, &HiddenStatePool::options(spec))?;
        let mut pooled = Vec::with_capacity(rows.len());
        for (r, &len) in lens.iter().enumerate() {
            let own = out
                .hidden
                .iter()
                .map(|(i, h)| Ok((*i, h.narrow(0, r, 1)?.narrow(1, 0, len)?)))
                .collect::<Result<Vec<_>>>()?;
            let whole = prefix.join_hidden(own)?;
            pooled.extend(HiddenStatePool::pool(&whole, &[0], spec.pooling)?);
        }
        Ok(pooled)
    }

    /// Pools `(index, [b, t, hidden])` states of a left-padded batch (`pads[r]` pad tokens
    /// at the start of row `r`); several layers are averaged. Used on a generation's
    /// prefill too, so the head sees exactly what it was trained on.
    pub fn pool(
        hidden: &[(usize, Tensor)],
        pads: &[usize],
        pooling: Pooling,
    ) -> Result<Vec<Vec<f32>>> {
        let Some((_, first)) = hidden.first() else {
            return Err(HeadError::Invalid("no hidden states to pool".into()));
        };
        let (b, t, _) = first.dims3()?;
        if pads.len() != b {
            return Err(HeadError::Invalid(format!(
                "{} pad counts for a batch of {b}",
                pads.len()
            )));
        }
        let mut sum: Option<Tensor> = None;
        for (_, h) in hidden {
            let h = h.to_dtype(DType::F32)?;
            sum = Some(match sum {
                None => h,
                Some(s) => (s + h)?,
            });
        }
        let mixed = (sum.expect("one layer at least") / hidden.len() as f64)?;
        let mut out = Vec::with_capacity(b);
        for (r, &pad) in pads.iter().enumerate() {
            if pad >= t {
                return Err(HeadError::Invalid(format!("row {r} is all padding")));
            }
            let row = mixed.get(r)?;
            let v = match pooling {
                Pooling::Last => row.get(t - 1)?,
                Pooling::Mean => row.narrow(0, pad, t - pad)?.mean(D::Minus2)?,
            };
            out.push(v.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}

/// Feature vectors on disk, one small file per (model, spec, prompt) key.
///
/// The key hashes everything that changes the vector: the model's identity (its file hash),
/// the adapter's identity, the layers, the pooling and the prompt tokens. A stale or corrupt
/// entry (wrong length) is treated as a miss, never as data.
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    pub fn new(dir: impl Into<PathBuf>) -> FeatureCache {
        FeatureCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache key of one prompt's features.
    pub fn key(
        model_id: &str,
        adapter_id: Option<&str>,
        spec: &FeatureSpec,
        prompt: &[u32],
    ) -> String {
        let mut h = Sha256::new();
        h.update(b"vigil-features-v1\0");
        h.update(vigil_model::ARITHMETIC_REVISION.to_le_bytes());
        h.update(model_id.as_bytes());
        h.update(b"\0");
        h.update(adapter_id.unwrap_or("-").as_bytes());
        h.update(b"\0");
        h.update(serde_json::to_vec(&(&spec.layers, spec.pooling)).unwrap_or_default());
        for t in prompt {
            h.update(t.to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.f32"))
    }

    /// The vector stored under `key`, if present and `dim` long.
    pub fn get(&self, key: &str, dim: usize) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        if bytes.len() != dim * 4 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    /// Stores a vector (atomically: a reader never sees half a file).
    pub fn put(&self, key: &str, v: &[f32]) -> Result<()> {
        let path = self.path(key);
        let parent = path.parent().expect("cache path has a parent");
        std::fs::create_dir_all(parent).map_err(|e| HeadError::file(parent, e))?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| HeadError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| HeadError::file(&path, e))?;
        Ok(())
    }

    /// Features for every prompt: cached ones are read, the rest computed with `pool` in
    /// one batched pass and stored. Returns the vectors and how many were computed.
    pub fn features(
        &self,
        pool: &HiddenStatePool,
        model_id: &str,
        adapter_id: Option<&str>,
        prompts: &[Vec<u32>],
        spec: &FeatureSpec,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Vec<f32>>, usize)> {
        let dim = pool.decoder.config.hidden_size;
        let keys: Vec<String> = prompts
            .iter()
            .map(|p| FeatureCache::key(model_id, adapter_id, spec, p))
            .collect();
        let mut out: Vec<Option<Vec<f32>>> = keys.iter().map(|k| self.get(k, dim)).collect();
        let missing: Vec<usize> = (0..prompts.len()).filter(|&i| out[i].is_none()).collect();
        let cached = prompts.len() - missing.len();
        progress(cached);
        if !missing.is_empty() {
            let todo: Vec<Vec<u32>> = missing.iter().map(|&i| prompts[i].clone()).collect();
            let computed = pool.features(&todo, spec, &mut |n| progress(cached + n))?;
            for (&i, v) in missing.iter().zip(computed) {
                self.put(&keys[i], &v)?;
                out[i] = Some(v);
            }
        }
        Ok((
            out.into_iter().map(|v| v.expect("filled")).collect(),
            missing.len(),
        ))
    }
}
