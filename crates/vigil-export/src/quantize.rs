//! [`quantize_rows`]: f32 rows → the bytes of one ggml type, spread over rayon threads in
//! chunks of whole rows (as llama.cpp splits its work), so the result does not depend on
//! the thread count.
//!
//! Block formats come from candle's ggml ports (`QTensor::quantize`), whose reference
//! quantisers reproduce ggml's `quantize_row_*_ref`; the fixtures under `tests/data/`
//! check that byte for byte. f16 and bf16 round to nearest-even like ggml.

use crate::error::{ExportError, Result};
use crate::kquants as kq;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rayon::prelude::*;

/// Quantises one 256-value block into its bytes.
type BlockQuantiser = fn(&[f32], &mut [u8]);

/// Values per work item, as in llama.cpp (32 × 512).
const CHUNK_VALUES: usize = 32 * 512;

/// Quantises `data` (rows of `row_len` values) to `dtype`. `name` is for error messages.
pub fn quantize_rows(
    name: &str,
    data: &[f32],
    row_len: usize,
    dtype: GgmlDType,
) -> Result<Vec<u8>> {
    if row_len == 0 || !data.len().is_multiple_of(row_len) {
        return Err(ExportError::tensor(
            name,
            format!("{} values are not whole rows of {row_len}", data.len()),
        ));
    }
    match dtype {
        GgmlDType::F32 => return Ok(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        GgmlDType::F16 => {
            return Ok(data
                .par_iter()
                .flat_map_iter(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect())
        }
        GgmlDType::BF16 => {
            return Ok(data
                .par_iter()
                .flat_map_iter(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect())
        }
        _ => {}
    }
    let block = dtype.block_size();
    if !row_len.is_multiple_of(block) {
        return Err(ExportError::tensor(
            name,
            format!("rows of {row_len} values are not a multiple of the {block}-value blocks of {dtype:?}"),
        ));
    }
    // K-quants: vigil's own reference-exact quantisers (see kquants.rs).
    let kquant: Option<(usize, BlockQuantiser)> = match dtype {
        GgmlDType::Q4K => Some((kq::Q4K_BYTES, kq::quantize_block_q4k)),
        GgmlDType::Q5K => Some((kq::Q5K_BYTES, kq::quantize_block_q5k)),
        GgmlDType::Q6K => Some((kq::Q6K_BYTES, kq::quantize_block_q6k)),
        _ => None,
    };
    if let Some((bytes, f)) = kquant {
        let rows_per_chunk = CHUNK_VALUES.div_ceil(row_len).max(1);
        let parts: Vec<Vec<u8>> = data
            .par_chunks(rows_per_chunk * row_len)
            .map(|c| kq::quantize_k(c, bytes, f))
            .collect();
        return Ok(parts.concat());
    }
    let rows_per_chunk = CHUNK_VALUES.div_ceil(row_len).max(1);
    let parts: Vec<Result<Vec<u8>>> = data
        .par_chunks(rows_per_chunk * row_len)
        .map(|chunk| {
            let rows = chunk.len() / row_len;
            let t = Tensor::from_slice(chunk, (rows, row_len), &Device::Cpu)
                .map_err(|e| ExportError::tensor(name, e))?;
            let q = QTensor::quantize(&t, dtype).map_err(|e| ExportError::tensor(name, e))?;
            let bytes = q.data().map_err(|e| ExportError::tensor(name, e))?;
            Ok(bytes.into_owned())
        })
        .collect();
    let mut out = Vec::with_capacity(data.len() / block * dtype.type_size());
    for p in parts {
        out.extend_from_slice(&p?);
    }
    Ok(out)
}

/// Dense f32 values of raw ggml data (`dims` outermost first). Float types and the block
/// formats vigil-kernels reads are converted straight into one buffer (no intermediate
/// tensors, so a large tensor costs its f32 size once); the rest go through candle.
pub fn dequantize_bytes(
    name: &str,
    bytes: &[u8],
    dims: &[usize],
    dtype: GgmlDType,
) -> Result<Vec<f32>> {
    use vigil_kernels::QuantType as K;
    let n: usize = dims.iter().product();
    let expect = n / dtype.block_size() * dtype.type_size();
    if bytes.len() != expect || !n.is_multiple_of(dtype.block_size()) {
        return Err(ExportError::tensor(
            name,
            format!(
                "{} bytes for {dims:?} of {dtype:?} (expected {expect})",
                bytes.len()
            ),
        ));
    }
    let kernel = match dtype {
        GgmlDType::Q4_0 => Some(K::Q4_0),
        GgmlDType::Q4_1 => Some(K::Q4_1),
        GgmlDType::Q5_0 => Some(K::Q5_0),
        GgmlDType::Q8_0 => Some(K::Q8_0),
        GgmlDType::Q4K => Some(K::Q4K),
        GgmlDType::Q6K => Some(K::Q6K),
        _ => None,
    };
    let mut out = vec![0f32; n];
    match (dtype, kernel) {
        (GgmlDType::F32, _) => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        (GgmlDType::F16, _) => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        (GgmlDType::BF16, _) => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        (_, Some(k)) => {
            // Whole blocks per work item, so any split point is valid.
            let (bv, bb) = (dtype.block_size() * 64, dtype.type_size() * 64);
            out.par_chunks_mut(bv)
                .zip(bytes.par_chunks(bb))
                .for_each(|(o, w)| vigil_kernels::dequantize_row(k, w, o));
        }
        _ => {
            let q = candle_core::quantized::ggml_file::qtensor_from_ggml(
                dtype,
                bytes,
                dims.to_vec(),
                &Device::Cpu,
            )
            .map_err(|e| ExportError::tensor(name, e))?;
            out = q
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| ExportError::tensor(name, e))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_by_hand() {
        // One block of 32: max |x| = 12.7 → d = 0.1, q = round(x / 0.1).
        let mut x = [0f32; 32];
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i as f32 - 5.0) * 0.1;
        }
        x[31] = 12.7;
        let b = quantize_rows("t", &x, 32, GgmlDType::Q8_0).unwrap();
        assert_eq!(b.len(), 34);
        let d = half::f16::from_le_bytes([b[0], b[1]]);
        assert_eq!(d, half::f16::from_f32(0.1));
        assert_eq!(b[2] as i8, -5);
        assert_eq!(b[2 + 10] as i8, 5);
        assert_eq!(b[2 + 31] as i8, 127);
    }

    #[test]
    fn chunking_does_not_change_bytes() {
        // 300 rows × 64 → several chunks; quantising row by row must give the same bytes.
        let x: Vec<f32> = (0..300 * 64)
            .map(|i| ((i * 7919) % 1000) as f32 / 333.0 - 1.5)
            .collect();
        let whole = quantize_rows("t", &x, 64, GgmlDType::Q4_0).unwrap();
        let mut by_row = Vec::new();
        for r in x.chunks(64) {
            by_row.extend(quantize_rows("t", r, 64, GgmlDType::Q4_0).unwrap());
        }
        assert_eq!(whole, by_row);
    }

    #[test]
    fn ragged_rows_are_refused_by_name() {
        let e = quantize_rows("blk.0.attn_q.weight", &[0.0; 100], 100, GgmlDType::Q4K).unwrap_err();
        assert!(e.to_string().contains("blk.0.attn_q.weight"), "{e}");
    }
}
