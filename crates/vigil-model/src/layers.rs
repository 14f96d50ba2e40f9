//! The building blocks of a decoder block: `Linear`, `Embedding`, `RmsNorm` and
//! `RotaryEmbedding`.
//!
//! Each has a fused fast path for inference and, where candle's fused op has no backward
//! pass (rms_norm, rope, softmax — see REFERENCE.md), a differentiable path selected by
//! [`Precision::Differentiable`], so the trainer can use the same types.

use crate::config::{ModelConfig, RopeLayout, RopeScaling};
use crate::error::Result;
use crate::lora::{seed_for, LoraWeights};
use crate::weights::Weight;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Module, Shape, Tensor, D};
use std::sync::Arc;

/// Which kernels a forward pass may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Fused kernels without backward passes: fastest, for inference.
    #[default]
    Inference,
    /// Only ops whose gradients candle computes: for training.
    Differentiable,
}

/// Weight storage of a frozen linear layer, dense or block-quantised. Faster kernels and
/// memory-mapped storage slot in here without touching the model code.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// `[out, in]` f32.
    Dense(Tensor),
    /// `[out, in]` in a GGML block format, multiplied without dequantising.
    Quantized {
        tensor: Arc<QTensor>,
        matmul: QMatMul,
        /// The copy decode streams, for weights mapped from the file: in vigil-kernels'
        /// row-group layout on a CPU with the decode kernel for it, otherwise row-major,
        /// on huge pages either way ([`vigil_kernels::QuantMatrix::decode_copy_in`],
        /// [`Linear::new_with_copy`]). Inference multiplies this copy (bit-identical, faster
        /// to decode) and training dequantises it; `tensor` stays for adapters and
        /// export. The mapped pages are handed back as the copy is made, so the weights
        /// are held once. Weights in memory of their own (read with `VIGIL_NO_MMAP`,
        /// quantised in the process) get no copy: it would double them.
        decode_copy: Option<Arc<vigil_kernels::QuantMatrix<'static>>>,
    },
}

impl LinearWeight {
    /// A block-quantised weight, used as it is.
    pub fn quantized(tensor: Arc<QTensor>) -> Result<Self> {
        Ok(LinearWeight::Quantized {
            matmul: QMatMul::from_arc(tensor.clone())?,
            tensor,
            decode_copy: None,
        })
    }

    /// A block-quantised weight with its copy for decode, placed in `arena`, where the
    /// kernels have its format. While the copy is built, `release(prefix)` gets the part
    /// of the tensor's bytes already copied (`vigil_kernels::QuantMatrix::decode_copy_in`),
    /// for a mapped file to take back.
    pub fn quantized_with_copy(
        tensor: Arc<QTensor>,
        arena: &mut vigil_kernels::StreamArena,
        release: &mut dyn FnMut(&[u8]),
    ) -> Result<Self> {
        let decode_copy = row_major_matrix(&tensor)?
            .map(|m| Arc::new(m.decode_copy_in(vigil_kernels::Isa::detect(), arena, release)));
        Ok(LinearWeight::Quantized {
            matmul: QMatMul::from_arc(tensor.clone())?,
            tensor,
            decode_copy,
        })
    }
}

/// How one forward pass runs: which kernels, which adapter, and — while training — the
/// seed that dropout masks are drawn from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass<'a> {
    pub precision: Precision,
    /// The LoRA adapter to apply, by name; `None` runs the base model.
    pub adapter: Option<&'a str>,
    /// `Some` while training with dropout.
    pub dropout_seed: Option<u64>,
}

/// `y = x Wᵀ + b` over the last dimension of `x`, with a frozen `W` and any number of
/// named LoRA adapters, one of which a pass may switch on.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: LinearWeight,
    pub bias: Option<Tensor>,
    pub in_dim: usize,
    pub out_dim: usize,
    /// Hugging Face module path (`model.layers.3.self_attn.q_proj`): the adapter key.
    pub path: String,
    /// Adapters by name.
    pub lora: Vec<(String, LoraWeights)>,
}

impl Linear {
    pub fn new(weight: Weight, bias: Option<Tensor>) -> Result<Self> {
        Self::with_weight(weight, bias, LinearWeight::quantized)
    }

    /// [`Linear::new`] with a quantised weight's copy for decode in `arena`, its bytes
    /// handed to `release` as they are copied ([`LinearWeight::quantized_with_copy`]): for
    /// weights mapped from the file.
    pub fn new_with_copy(
        weight: Weight,
        bias: Option<Tensor>,
        arena: &mut vigil_kernels::StreamArena,
        release: &mut dyn FnMut(&[u8]),
    ) -> Result<Self> {
        Self::with_weight(weight, bias, |q| {
            LinearWeight::quantized_with_copy(q, arena, release)
        })
    }

    fn with_weight(
        weight: Weight,
        bias: Option<Tensor>,
        quantized: impl FnOnce(Arc<QTensor>) -> Result<LinearWeight>,
    ) -> Result<Self> {
        let dims = weight.dims();
        let (out_dim, in_dim) = (dims[0], dims[1]);
        let weight = match weight {
            Weight::Dense(t) => LinearWeight::Dense(t.contiguous()?),
            Weight::Quantized(q) => quantized(q)?,
        };
        Ok(Linear {
            weight,
            bias,
            in_dim,
            out_dim,
            path: String::new(),
            lora: Vec::new(),
        })
    }

    /// Names the layer by its Hugging Face module path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The base layer alone, with the fast kernels.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_pass(x, &Pass::default())
    }

    pub fn forward_pass(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        Ok(Self::forward_group(&[self], x, pass)?.remove(0))
    }

    /// What [`Linear::forward_pass`] gives for each layer, for layers that read the same
    /// input (q, k and v; gate and up). In inference, when every weight is a format
    /// vigil-kernels multiplies, the frozen products run as one
    /// ([`vigil_kernels::matmul_group`]): the input is quantised once and all the
    /// products share one parallel section, and the biases are added in place (candle's
    /// broadcast add cost ~6 µs per layer of a one-token step, for three short vectors).
    /// The results are the same bit for bit.
    pub fn forward_group(layers: &[&Linear], x: &Tensor, pass: &Pass) -> Result<Vec<Tensor>> {
        if pass.precision == Precision::Inference {
            if let Some(ys) = grouped_quantized_matmul(layers, x)? {
                return layers
                    .iter()
                    .zip(ys)
                    .map(|(l, y)| l.add_adapter(x, y, pass))
                    .collect();
            }
        }
        layers
            .iter()
            .map(|l| {
                let y = match pass.precision {
                    Precision::Inference => frozen_matmul(&l.weight, x, l.out_dim)?,
                    // The frozen weight must not get a gradient: candle would compute a
                    // weight-sized one for a plain matmul (REFERENCE.md), so the product
                    // is a custom op whose backward returns only the input's gradient.
                    Precision::Differentiable => x.apply_op1(FrozenMatmul {
                        weight: l.weight.clone(),
                        out_dim: l.out_dim,
                    })?,
                };
                let y = match &l.bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                l.add_adapter(x, y, pass)
            })
            .collect()
    }

    /// `y` (the frozen product `x Wᵀ` plus the bias) plus the pass's adapter, if any.
    fn add_adapter(&self, x: &Tensor, y: Tensor, pass: &Pass) -> Result<Tensor> {
        let Some(lora) = pass.adapter.and_then(|name| self.adapter(name)) else {
            return Ok(y);
        };
        let dims = x.dims();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let seed = pass.dropout_seed.map(|s| seed_for(s, &self.path));
        let differentiable = pass.precision == Precision::Differentiable;
        let delta = lora.forward(&x.reshape((rows, self.in_dim))?, seed, differentiable)?;
        let shape = y.shape().clone();
        Ok((y + delta.reshape(shape)?)?)
    }

    /// The weight as a vigil-kernels matrix (its copy for decode where there is one), if
    /// the kernels multiply its format; what the inference products run on.
    pub(crate) fn kernel_weight(&self) -> Result<Option<vigil_kernels::QuantMatrix<'_>>> {
        match &self.weight {
            LinearWeight::Quantized {
                tensor,
                matmul,
                decode_copy,
            } => kernel_weight_of(tensor, matmul, decode_copy.as_deref()),
            LinearWeight::Dense(_) => Ok(None),
        }
    }

    /// Adds the layer's bias, if it has one, to every row of `y` (`[rows, out]`): one f32
    /// add per value, the rounding of candle's broadcast add.
    pub(crate) fn add_bias(&self, y: &mut [f32]) -> Result<()> {
        add_bias(self.bias.as_ref(), self.out_dim, y)
    }

    /// The adapter of that name on this layer, if it has one.
    pub fn adapter(&self, name: &str) -> Option<&LoraWeights> {
        self.lora.iter().find(|(n, _)| n == name).map(|(_, w)| w)
    }

    /// The weight as a dense `[out, in]` f32 tensor.
    pub fn dense_weight(&self) -> Result<Tensor> {
        dense_of(&self.weight)
    }
}

fn dense_of(weight: &LinearWeight) -> Result<Tensor> {
    Ok(match weight {
        LinearWeight::Dense(w) => w.clone(),
        // From the copy for decode, so that training does not fault the mapped pages back in.
        LinearWeight::Quantized {
            decode_copy: Some(m),
            ..
        } => Tensor::from_vec(m.dequantize(), (m.rows(), m.cols()), &Device::Cpu)?,
        LinearWeight::Quantized { tensor, .. } => tensor.dequantize(&Device::Cpu)?,
    })
}

/// `x Wᵀ` for any storage; `x` is `[.., in]`.
fn frozen_matmul(weight: &LinearWeight, x: &Tensor, out_dim: usize) -> Result<Tensor> {
    Ok(match weight {
        LinearWeight::Quantized {
            tensor,
            matmul,
            decode_copy,
        } => quantized_matmul(tensor, matmul, decode_copy.as_deref(), x)?,
        LinearWeight::Dense(w) => {
            // Fold leading dimensions into rows: one GEMM instead of a batched one.
            let dims = x.dims().to_vec();
            let in_dim = *dims.last().expect("x has at least one dimension");
            let rows: usize = dims[..dims.len() - 1].iter().product();
            let y = x.reshape((rows, in_dim))?.matmul(&w.t()?)?;
            let mut out = dims;
            *out.last_mut().expect("x has at least one dimension") = out_dim;
            y.reshape(out)?
        }
    })
}

/// `x Wᵀ` as an autograd op whose backward gives `x` its gradient `g W` and `W` none.
/// A quantised `W` is dequantised for the backward pass only.
struct FrozenMatmul {
    weight: LinearWeight,
    out_dim: usize,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = tensor_of(storage, layout, "frozen-matmul")?;
        // A quantised weight is dequantised for the product, as bitsandbytes' QLoRA does:
        // training batches are hundreds of rows, where an f32 GEMM beats quantised dot
        // products, and the f32 copy lives only for this one product.
        let weight = match &self.weight {
            LinearWeight::Quantized { .. } => LinearWeight::Dense(
                dense_of(&self.weight).map_err(|e| candle_core::Error::Msg(e.to_string()))?,
            ),
            dense => dense.clone(),
        };
        let y = frozen_matmul(&weight, &x, self.out_dim)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        storage_of(&y)
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let w = dense_of(&self.weight).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let rows = grad.elem_count() / self.out_dim;
        let g = grad.reshape((rows, self.out_dim))?.matmul(&w)?;
        Ok(Some(g.reshape(arg.shape())?))
    }
}

/// `x Wᵀ` for a block-quantised `W` `[out, in]`; `x` is `[.., in]` f32.
///
/// vigil-kernels for the block formats it has (activations quantised with ggml's x86
/// rounding, as llama.cpp does); candle's QMatMul for everything else, including weights
/// candle was told to keep dense (CANDLE_DEQUANTIZE_ALL). [`kernel_matrix`] is the one
/// place that decides, here and in [`grouped_quantized_matmul`].
fn quantized_matmul(
    tensor: &Arc<QTensor>,
    matmul: &QMatMul,
    decode_copy: Option<&vigil_kernels::QuantMatrix<'static>>,
    x: &Tensor,
) -> Result<Tensor> {
    match kernel_matrix(tensor, matmul, decode_copy, x)? {
        Some(w) => Ok(kernel_products(&[w], &[None], x)?.remove(0)),
        None => Ok(matmul.forward(x)?),
    }
}

/// The frozen products `x Wᵢᵀ` of layers that read the same `x`, as one
/// [`vigil_kernels::matmul_group`], each plus its layer's bias; `None` unless every weight
/// is one vigil-kernels multiplies.
fn grouped_quantized_matmul(layers: &[&Linear], x: &Tensor) -> Result<Option<Vec<Tensor>>> {
    let mut ws = Vec::with_capacity(layers.len());
    for layer in layers {
        let LinearWeight::Quantized {
            tensor,
            matmul,
            decode_copy,
        } = &layer.weight
        else {
            return Ok(None);
        };
        match kernel_matrix(tensor, matmul, decode_copy.as_deref(), x)? {
            Some(w) => ws.push(w),
            None => return Ok(None),
        }
    }
    let biases: Vec<Option<&Tensor>> = layers.iter().map(|l| l.bias.as_ref()).collect();
    Ok(Some(kernel_products(&ws, &biases, x)?))
}

/// `tensor` as a vigil-kernels matrix (its copy for decode where there is one), if the
/// kernels can multiply it by `x` (a format they have, f32 CPU activations of the right
/// width, kept quantised by candle).
fn kernel_matrix<'a>(
    tensor: &'a Arc<QTensor>,
    matmul: &QMatMul,
    decode_copy: Option<&'a vigil_kernels::QuantMatrix<'static>>,
    x: &Tensor,
) -> Result<Option<vigil_kernels::QuantMatrix<'a>>> {
    let in_dim = tensor.shape().dims().last().copied();
    if x.dtype() != DType::F32 || !x.device().is_cpu() || x.dims().last().copied() != in_dim {
        return Ok(None);
    }
    kernel_weight_of(tensor, matmul, decode_copy)
}

/// [`kernel_matrix`] without the activations: whether the kernels have the weight at all.
fn kernel_weight_of<'a>(
    tensor: &'a Arc<QTensor>,
    matmul: &QMatMul,
    decode_copy: Option<&'a vigil_kernels::QuantMatrix<'static>>,
) -> Result<Option<vigil_kernels::QuantMatrix<'a>>> {
    if !matches!(matmul, QMatMul::QTensor(_)) || !tensor.device().is_cpu() {
        return Ok(None);
    }
    match decode_copy {
        Some(m) => Ok(Some(m.view())),
        None => row_major_matrix(tensor),
    }
}

/// A CPU `tensor` of a format vigil-kernels multiplies, as a matrix over its own bytes
/// (nothing copied); `None` for other formats, shapes or devices.
fn row_major_matrix(tensor: &Arc<QTensor>) -> Result<Option<vigil_kernels::QuantMatrix<'_>>> {
    use candle_core::quantized::GgmlDType;
    use vigil_kernels::{QuantMatrix, QuantType};
    if !tensor.device().is_cpu() {
        return Ok(None);
    }
    let qtype = match tensor.dtype() {
        GgmlDType::Q4_0 => QuantType::Q4_0,
        GgmlDType::Q4_1 => QuantType::Q4_1,
        GgmlDType::Q5_0 => QuantType::Q5_0,
        GgmlDType::Q8_0 => QuantType::Q8_0,
        GgmlDType::Q4K => QuantType::Q4K,
        GgmlDType::Q6K => QuantType::Q6K,
        _ => return Ok(None),
    };
    let &[out_dim, in_dim] = tensor.shape().dims() else {
        return Ok(None);
    };
    // On the CPU `data()` borrows the tensor's own bytes: nothing is copied per call.
    let bytes = tensor.data()?;
    let w = QuantMatrix::new(bytes, qtype, out_dim, in_dim).map_err(kernel_err)?;
    Ok(Some(w))
}

fn kernel_err(e: vigil_kernels::Error) -> candle_core::Error {
    candle_core::Error::Msg(format!("vigil-kernels: {e}"))
}

/// `x Wᵢᵀ + bᵢ` for matrices that all take `x` (`[.., in]` f32), one tensor each; `bᵢ`
/// (f32, one value per output) is added to every row where it is given.
fn kernel_products(
    ws: &[vigil_kernels::QuantMatrix],
    biases: &[Option<&Tensor>],
    x: &Tensor,
) -> Result<Vec<Tensor>> {
    let x = x.contiguous()?;
    let in_dim = *x.dims().last().expect("x has at least one dimension");
    let rows = x.elem_count() / in_dim;
    let mut ys: Vec<Vec<f32>> = ws
        .iter()
        .map(|w| Vec::with_capacity(rows * w.rows()))
        .collect();
    {
        let (storage, layout) = x.storage_and_layout();
        let (candle_core::Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        else {
            let msg = "quantized matmul: expected contiguous f32 CPU activations";
            return Err(candle_core::Error::Msg(msg.into()).into());
        };
        let mut outs: Vec<_> = ys
            .iter_mut()
            .zip(ws)
            .map(|(y, w)| &mut y.spare_capacity_mut()[..rows * w.rows()])
            .collect();
        let refs: Vec<_> = ws.iter().collect();
        vigil_kernels::matmul_group(&refs, &data[start..end], rows, &mut outs)
            .map_err(kernel_err)?;
    }
    ws.iter()
        .zip(ys)
        .zip(biases)
        .map(|((w, mut y), bias)| {
            // SAFETY: `matmul_group` returned Ok, so it wrote all `rows * out` values.
            unsafe { y.set_len(rows * w.rows()) };
            add_bias(*bias, w.rows(), &mut y)?;
            let mut dims = x.dims().to_vec();
            *dims.last_mut().expect("x has at least one dimension") = w.rows();
            Ok(Tensor::from_vec(y, dims, &Device::Cpu)?)
        })
        .collect()
}

/// Adds `bias` (one f32 per output, `out` of them), if given, to every row of `y`: one
/// f32 add per value, the rounding of candle's broadcast add.
fn add_bias(bias: Option<&Tensor>, out: usize, y: &mut [f32]) -> Result<()> {
    let Some(b) = bias.filter(|_| out > 0) else {
        return Ok(());
    };
    if b.dims() != [out] {
        let msg = format!("bias of shape {:?} for {out} outputs", b.dims());
        return Err(candle_core::Error::Msg(msg).into());
    }
    crate::ggml_ops::with_f32(b, |b| {
        for row in y.chunks_exact_mut(out) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    })?;
    Ok(())
}

/// `ys[i] = x Wᵢᵀ + bᵢ` (plus the named adapter's product, on layers that have it) into
/// buffers the caller keeps: `x` is `[rows, in]`, `Wᵢ` the weight of `layers[i]`
/// ([`Linear::kernel_weight`], which must exist), `ys[i]` `[rows, outᵢ]`. What
/// [`Linear::forward_group`] computes in inference, bit for bit.
pub(crate) fn products_into(
    layers: &[&Linear],
    x: &[f32],
    rows: usize,
    ys: &mut [&mut [f32]],
    adapter: Option<&str>,
) -> Result<()> {
    let ws = layers
        .iter()
        .map(|l| {
            l.kernel_weight()?.ok_or_else(|| {
                candle_core::Error::Msg(format!("{}: no kernel for this weight", l.path)).into()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<_> = ws.iter().collect();
    vigil_kernels::matmul_group_into(&refs, x, rows, ys).map_err(kernel_err)?;
    let mut input = None;
    for (layer, y) in layers.iter().zip(ys.iter_mut()) {
        layer.add_bias(y)?;
        if let Some(lora) = adapter.and_then(|name| layer.adapter(name)) {
            let x = match &input {
                Some(x) => x,
                None => input.insert(Tensor::from_slice(x, (rows, layer.in_dim), &Device::Cpu)?),
            };
            // As `add_adapter`: the product row by row, then one f32 add per value.
            let delta = lora.forward(x, None, false)?;
            crate::ggml_ops::with_f32(&delta, |d| y.iter_mut().zip(d).for_each(|(v, d)| *v += d))?;
        }
    }
    Ok(())
}

/// A tensor (a copy) from a custom op's input storage, which must be contiguous f32.
fn tensor_of(storage: &CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<Tensor> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} expects f32 input")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu),
        None => candle_core::bail!("{op} expects a contiguous input"),
    }
}

/// A custom op's output storage (a copy) from a tensor.
fn storage_of(t: &Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    Ok((
        CpuStorage::F32(t.flatten_all()?.to_vec1::<f32>()?),
        t.shape().clone(),
    ))
}

/// Scaled dot-product attention for training, `softmax(q kᵀ · scale + mask) v`, that keeps
/// nothing quadratic for the backward pass: the probabilities are recomputed there from
/// `q` and `k` (one extra `q kᵀ`, small next to the linear layers). Built from candle's
/// primitives, attention kept ~5 `[b, heads, t, t]` tensors per layer alive until the
/// backward pass — 20 GB for a batch of 4 × 512 tokens on the default model.
///
/// Layout (grouped-query attention without copies): `q` is `[b, kv_heads, group·t, d]`
/// (the query heads sharing a K/V head stacked along the sequence axis), `k` and `v` are
/// `[b, kv_heads, s, d]`; `mask` is the additive `[b, 1, t, s]` mask or `None`.
pub struct RecomputedAttention {
    pub mask: Option<Tensor>,
    pub scale: f64,
    pub heads: usize,
    pub t: usize,
}

impl RecomputedAttention {
    fn probs(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let (b, kv, gt, _) = q.dims4()?;
        let s = k.dim(2)?;
        let scores = (q.matmul(&k.t()?)? * self.scale)?;
        let scores = match &self.mask {
            Some(m) => scores
                .reshape((b, self.heads, self.t, s))?
                .broadcast_add(m)?
                .reshape((b, kv, gt, s))?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores)
    }
}

impl candle_core::CustomOp3 for RecomputedAttention {
    fn name(&self) -> &'static str {
        "recomputed-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let q = tensor_of(s1, l1, self.name())?;
        let k = tensor_of(s2, l2, self.name())?;
        let v = tensor_of(s3, l3, self.name())?;
        let out = self.probs(&q, &k)?.matmul(&v)?;
        storage_of(&out)
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Detached: these products are gradients, not part of any graph.
        let (q, k, v, g) = (q.detach(), k.detach(), v.detach(), grad.detach());
        let p = self.probs(&q, &k)?;
        let dv = p.t()?.matmul(&g)?;
        let dp = g.matmul(&v.t()?)?;
        // Softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)); the mask is a constant.
        let row = (&dp * &p)?.sum_keepdim(D::Minus1)?;
        let ds = ((p * dp.broadcast_sub(&row)?)? * self.scale)?;
        let dq = ds.matmul(&k)?;
        let dk = ds.t()?.matmul(&q)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Token embeddings; quantised tables are looked up row by row without an f32 copy.
#[derive(Debug, Clone)]
pub enum Embedding {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
    /// A mapped quantised table that is also the output head (tied embeddings), looked up
    /// in the head's copy for decode (`LinearWeight::Quantized`): the mapped table is then
    /// never read after loading, where each lookup would fault 64 KiB of it back in.
    HeadCopy {
        table: Arc<QTensor>,
        rows: Arc<vigil_kernels::QuantMatrix<'static>>,
    },
}

impl Embedding {
    pub fn new(weight: Weight) -> Self {
        match weight {
            Weight::Dense(t) => Embedding::Dense(t),
            Weight::Quantized(q) => Embedding::Quantized(q),
        }
    }

    /// `ids`: `[b, t]` u32 → `[b, t, hidden]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Embedding::Quantized(q) => q.embedding(ids)?,
            Embedding::HeadCopy { rows, .. } => {
                let (b, t) = ids.dims2()?;
                let hidden = rows.cols();
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let mut out = vec![0f32; ids.len() * hidden];
                for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
                    if id as usize >= rows.rows() {
                        return Err(candle_core::Error::Msg(format!(
                            "token id {id} is outside the {}-row embedding",
                            rows.rows()
                        ))
                        .into());
                    }
                    rows.dequantize_row(id as usize, dst);
                }
                Tensor::from_vec(out, (b, t, hidden), &Device::Cpu)?
            }
            Embedding::Dense(w) => {
                let (b, t) = ids.dims2()?;
                w.index_select(&ids.flatten_all()?, 0)?
                    .reshape((b, t, w.dim(1)?))?
            }
        })
    }

    /// The table as a weight (shared, not copied): the output projection's, for tied
    /// embeddings.
    pub fn weight(&self) -> Weight {
        match self {
            Embedding::Dense(w) => Weight::Dense(w.clone()),
            Embedding::Quantized(q) | Embedding::HeadCopy { table: q, .. } => {
                Weight::Quantized(q.clone())
            }
        }
    }
}

/// Root-mean-square layer norm: `x / rms(x) * w`.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
    /// The weight as a vector, for the ggml-exact inference kernel.
    weight_f32: Vec<f32>,
}

impl RmsNorm {
    pub fn new(weight: Tensor, offset: f32, eps: f64) -> Result<Self> {
        let weight = if offset != 0.0 {
            (weight + offset as f64)?
        } else {
            weight
        };
        let weight_f32 = weight.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(RmsNorm {
            weight,
            eps,
            weight_f32,
        })
    }

    pub fn forward(&self, x: &Tensor, precision: Precision) -> Result<Tensor> {
        Ok(match precision {
            Precision::Inference if x.dtype() == DType::F32 => {
                crate::ggml_ops::rms_norm(x, &self.weight_f32, self.eps as f32)?
            }
            Precision::Inference => candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?,
            // The fused kernel forward, and a hand-written backward for the input (the
            // weight is frozen): candle's differentiable version keeps five intermediates
            // per norm alive for the backward pass.
            Precision::Differentiable => x.contiguous()?.apply_op1(RmsNormOp {
                weight: self.weight.clone(),
                eps: self.eps,
            })?,
        })
    }

    /// One row in inference: what [`RmsNorm::forward`] gives for each row of an f32 input.
    pub(crate) fn forward_row(&self, x: &[f32], y: &mut [f32]) {
        crate::ggml_ops::rms_norm_row(x, &self.weight_f32, self.eps as f32, y)
    }

    /// The number of values a row has.
    pub(crate) fn width(&self) -> usize {
        self.weight_f32.len()
    }
}

struct RmsNormOp {
    weight: Tensor,
    eps: f64,
}

impl CustomOp1 for RmsNormOp {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = tensor_of(storage, layout, self.name())?;
        let y = candle_nn::ops::rms_norm(&x, &self.weight, self.eps as f32)?;
        storage_of(&y)
    }

    /// `y = w ⊙ x · r`, `r = (mean(x²) + eps)^(−1/2)`, so
    /// `dx = r · (w ⊙ g) − x · r³ · mean(x ⊙ w ⊙ g)`.
    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (x, g) = (x.detach(), g.detach());
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let gw = g.broadcast_mul(&self.weight)?;
        let proj = (&x * &gw)?.mean_keepdim(D::Minus1)?;
        let r3 = r.powf(3.0)?;
        let dx = (gw.broadcast_mul(&r)? - x.broadcast_mul(&(r3 * proj)?)?)?;
        Ok(Some(dx))
    }
}

/// Rotary position embedding with per-row positions (rows of a left-padded batch start at
/// different offsets).
///
/// The angles are computed as ggml's `ggml_rope_cache_init` does, so they match llama.cpp's
/// to the last bit: pair `i`'s angle is `freq_scale · (θᵢ / divisorᵢ)` with `θ₀ = p` and
/// `θᵢ₊₁ = θᵢ · base^(−2/d)` (a running product in f32, not a power per pair).
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    /// `base^(−2/head_dim)`, in f32 as ggml computes it.
    theta_scale: f32,
    /// Linear position scaling (1 / factor).
    freq_scale: f32,
    /// Per-pair divisors of the angle: llama.cpp's `rope_freqs` tensor, or Llama 3 scaling
    /// computed from config.json; `None` for plain rope.
    divisors: Option<Vec<f32>>,
    half: usize,
    layout: RopeLayout,
}

impl RotaryEmbedding {
    /// `freq_factors`: llama.cpp's optional `rope_freqs` tensor (Llama 3.1 scaling).
    pub fn new(cfg: &ModelConfig, theta: f32, freq_factors: Option<&[f32]>) -> Self {
        let half = cfg.head_dim / 2;
        let mut freq_scale = 1.0f32;
        let mut divisors = freq_factors.map(|ff| ff[..half].to_vec());
        match cfg.rope_scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => freq_scale = 1.0 / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position,
            } if freq_factors.is_none() => {
                // What llama.cpp's converter stores as `rope_freqs`.
                let old = original_max_position as f32;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                let d = (0..half)
                    .map(|i| {
                        let f = 1.0 / theta.powf(2.0 * i as f32 / cfg.head_dim as f32);
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        if wavelen > low_wavelen {
                            factor
                        } else if wavelen >= high_wavelen {
                            let smooth = (old / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            1.0 / ((1.0 - smooth) / factor + smooth)
                        } else {
                            1.0
                        }
                    })
                    .collect();
                divisors = Some(d);
            }
            RopeScaling::Llama3 { .. } => {}
        }
        RotaryEmbedding {
            theta_scale: theta.powf(-2.0 / cfg.head_dim as f32),
            freq_scale,
            divisors,
            half,
            layout: cfg.rope_layout,
        }
    }

    /// cos and sin tables `[b, t, head_dim/2]` for the given positions.
    pub fn tables(&self, positions: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        let b = positions.len();
        let t = positions.first().map_or(0, Vec::len);
        let half = self.half;
        let mut cos = Vec::with_capacity(b * t * half);
        let mut sin = Vec::with_capacity(b * t * half);
        for row in positions {
            for &p in row {
                self.push_angles(p, &mut cos, &mut sin);
            }
        }
        let cos = Tensor::from_vec(cos, (b, t, half), &Device::Cpu)?;
        let sin = Tensor::from_vec(sin, (b, t, half), &Device::Cpu)?;
        Ok((cos, sin))
    }

    /// Appends the `head_dim / 2` cosines and sines of position `p`.
    pub(crate) fn push_angles(&self, p: u32, cos: &mut Vec<f32>, sin: &mut Vec<f32>) {
        let mut theta = p as f32;
        for i in 0..self.half {
            let extrap = match &self.divisors {
                Some(d) => theta / d[i],
                None => theta,
            };
            let angle = self.freq_scale * extrap;
            cos.push(angle.cos());
            sin.push(angle.sin());
            theta *= self.theta_scale;
        }
    }

    /// Whether rotated pairs are adjacent values (llama.cpp's "normal" rope) rather than
    /// `head_dim / 2` apart (NeoX).
    pub(crate) fn interleaved(&self) -> bool {
        self.layout == RopeLayout::Interleaved
    }

    /// Rotates `x`: `[b, heads, t, head_dim]`, contiguous.
    pub fn apply(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        precision: Precision,
    ) -> Result<Tensor> {
        if precision == Precision::Differentiable {
            return Ok(x.apply_op1(RopeOp {
                cos: cos.clone(),
                sin: sin.clone(),
                layout: self.layout,
            })?);
        }
        if x.dtype() == DType::F32 {
            return Ok(crate::ggml_ops::rope(x, cos, sin, self.interleaved())?);
        }
        Ok(rope_fused(x, cos, sin, self.layout)?)
    }
}

/// candle's fused rope kernels, which take `[t, d/2]` tables, or `[b, t, d/2]` for b > 1.
fn rope_fused(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    layout: RopeLayout,
) -> candle_core::Result<Tensor> {
    use candle_nn::rotary_emb as re;
    let (cos, sin) = if cos.dim(0)? == 1 {
        (cos.squeeze(0)?, sin.squeeze(0)?)
    } else {
        (cos.clone(), sin.clone())
    };
    match layout {
        RopeLayout::Interleaved => re::rope_i(x, &cos, &sin),
        RopeLayout::HalfSplit => re::rope(x, &cos, &sin),
    }
}

/// Rope for training: the fused kernel forward; the backward rotates the gradient by the
/// opposite angle (the same kernel with `−sin`), since a rotation's transpose is its
/// inverse. The fused kernels themselves have no backward in candle 0.11.1.
struct RopeOp {
    cos: Tensor,
    sin: Tensor,
    layout: RopeLayout,
}

impl CustomOp1 for RopeOp {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = tensor_of(storage, layout, self.name())?;
        let y = rope_fused(&x, &self.cos, &self.sin, self.layout)?;
        storage_of(&y)
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = g.detach().contiguous()?;
        Ok(Some(rope_fused(
            &g,
            &self.cos,
            &self.sin.neg()?,
            self.layout,
        )?))
    }
}

/// Softmax over the last dimension, fused or differentiable.
pub fn softmax_last(x: &Tensor, precision: Precision) -> Result<Tensor> {
    Ok(match precision {
        Precision::Inference => candle_nn::ops::softmax_last_dim(x)?,
        Precision::Differentiable => candle_nn::ops::softmax(x, D::Minus1)?,
    })
}

/// A 1-D f32 tensor from a weight (norm weights, biases).
pub fn vector(weight: Weight) -> Result<Tensor> {
    Ok(weight.to_dense()?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_ops::tests::values;
    use candle_core::quantized::GgmlDType;

    /// A Q8_0 layer (a format the kernels multiply) of `out` outputs over 64 inputs.
    fn quantized(out: usize, seed: u64, bias: Option<Tensor>) -> Linear {
        let w = Tensor::from_vec(values(out * 64, seed), (out, 64), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        Linear::new(Weight::Quantized(q), bias).unwrap()
    }

    fn vector(n: usize, seed: u64) -> Tensor {
        Tensor::from_vec(values(n, seed), n, &Device::Cpu).unwrap()
    }

    #[test]
    fn biases_added_by_the_kernel_path_equal_candles_broadcast_add_bit_for_bit() {
        // q, k and v of a Qwen2 layer: three products of one input, each with a bias.
        let x = Tensor::from_vec(values(3 * 64, 1), (3, 64), &Device::Cpu).unwrap();
        let outs = [32, 16, 16];
        let layers: Vec<Linear> = outs
            .iter()
            .enumerate()
            .map(|(i, &o)| quantized(o, 10 + i as u64, Some(vector(o, 20 + i as u64))))
            .collect();
        let refs: Vec<&Linear> = layers.iter().collect();
        let pass = Pass::default();
        let grouped = Linear::forward_group(&refs, &x, &pass).unwrap();
        for (i, l) in layers.iter().enumerate() {
            let bare = quantized(outs[i], 10 + i as u64, None).forward(&x).unwrap();
            let expected = bare.broadcast_add(l.bias.as_ref().unwrap()).unwrap();
            let expected = expected.to_vec2::<f32>().unwrap();
            assert_eq!(grouped[i].to_vec2::<f32>().unwrap(), expected, "layer {i}");
            assert_eq!(l.forward(&x).unwrap().to_vec2::<f32>().unwrap(), expected);
            // The bias really is in there.
            assert_ne!(bare.to_vec2::<f32>().unwrap(), expected);
        }
    }

    #[test]
    fn a_bias_of_the_wrong_length_is_an_error() {
        let x = Tensor::from_vec(values(64, 2), (1, 64), &Device::Cpu).unwrap();
        let l = quantized(16, 3, Some(vector(15, 4)));
        let err = l.forward(&x).unwrap_err().to_string();
        assert!(err.contains("bias"), "{err}");
    }
}
