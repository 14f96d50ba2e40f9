//! Switching the storage of the frozen base's linear layers.
//!
//! LoRA trains against a dense f32 base ([`Decoder::dequantize_linears`]); QLoRA keeps the
//! base in 4 bits — either the GGUF's own block-quantised weights, kept as they are, or a
//! dense (safetensors) base quantised on load ([`Decoder::quantize_linears`]) to a GGML
//! type that exports straight to GGUF. Block types need the row length to be a multiple
//! of their block; where it is not, the same fallbacks as llama.cpp's quantiser apply
//! (a k-quant falls back to Q5_0, then Q8_0; a row that fits no block stays f32).

use crate::decoder::Decoder;
use crate::error::Result;
use crate::layers::LinearWeight;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What [`Decoder::quantize_linears`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QuantizeReport {
    /// Layers per storage type after quantising (e.g. `Q4K: 150, Q5_0: 60`).
    pub types: BTreeMap<String, usize>,
    /// Bytes of linear-layer weights before and after.
    pub bytes_before: usize,
    pub bytes_after: usize,
}

/// The type a row of `in_dim` values can be stored in, starting from `wanted`.
fn fitting_type(wanted: GgmlDType, in_dim: usize) -> Option<GgmlDType> {
    let chain: &[GgmlDType] = match wanted {
        GgmlDType::Q2K | GgmlDType::Q3K | GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K => {
            &[wanted, GgmlDType::Q5_0, GgmlDType::Q8_0]
        }
        _ => &[wanted, GgmlDType::Q8_0],
    };
    chain
        .iter()
        .copied()
        .find(|t| in_dim.is_multiple_of(t.block_size()))
}

fn weight_bytes(w: &LinearWeight, in_dim: usize, out_dim: usize) -> usize {
    match w {
        LinearWeight::Dense(_) => in_dim * out_dim * 4,
        LinearWeight::Quantized { tensor, .. } => tensor.storage_size_in_bytes(),
    }
}

impl Decoder {
    /// Dequantises every quantised linear layer (the output head too) to dense f32.
    /// Returns the bytes the linear weights now take.
    pub fn dequantize_linears(&mut self) -> Result<usize> {
        let mut bytes = 0;
        for lin in self.linears_mut() {
            if let LinearWeight::Quantized { tensor, .. } = &lin.weight {
                lin.weight = LinearWeight::Dense(tensor.dequantize(&Device::Cpu)?);
            }
            bytes += lin.in_dim * lin.out_dim * 4;
        }
        Ok(bytes)
    }

    /// Quantises every dense linear layer to `dtype` (with the fallbacks above), in
    /// parallel. Already-quantised layers are left as they are. The output head is left
    /// alone when `keep_head` (its precision matters most for the loss).
    pub fn quantize_linears(
        &mut self,
        dtype: GgmlDType,
        keep_head: bool,
    ) -> Result<QuantizeReport> {
        let mut report = QuantizeReport::default();
        let mut linears = self.linears_mut();
        if keep_head {
            linears.pop();
        }
        for lin in &linears {
            report.bytes_before += weight_bytes(&lin.weight, lin.in_dim, lin.out_dim);
        }
        let results: Vec<Result<Option<Arc<QTensor>>>> = linears
            .par_iter()
            .map(|lin| {
                let LinearWeight::Dense(w) = &lin.weight else {
                    return Ok(None);
                };
                let Some(t) = fitting_type(dtype, lin.in_dim) else {
                    return Ok(None);
                };
                Ok(Some(Arc::new(QTensor::quantize(w, t)?)))
            })
            .collect();
        for (lin, q) in linears.iter_mut().zip(results) {
            if let Some(q) = q? {
                lin.weight = LinearWeight::quantized(q)?;
            }
            let name = match &lin.weight {
                LinearWeight::Dense(_) => "F32".to_string(),
                LinearWeight::Quantized { tensor, .. } => format!("{:?}", tensor.dtype()),
            };
            *report.types.entry(name).or_default() += 1;
            report.bytes_after += weight_bytes(&lin.weight, lin.in_dim, lin.out_dim);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_quants_fall_back_like_llama_cpp() {
        assert_eq!(fitting_type(GgmlDType::Q4K, 4096), Some(GgmlDType::Q4K));
        assert_eq!(fitting_type(GgmlDType::Q4K, 576), Some(GgmlDType::Q5_0));
        assert_eq!(fitting_type(GgmlDType::Q4_0, 576), Some(GgmlDType::Q4_0));
        assert_eq!(fitting_type(GgmlDType::Q4_0, 40), None);
    }
}
