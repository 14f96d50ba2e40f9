//! [`ExportType`] and [`tensor_type`]: which ggml type each tensor gets, by the rules of
//! llama.cpp's quantiser (`llama_tensor_get_type`, no importance matrix) for the types vigil
//! exports, so a vigil Q4_K_M file has the same per-tensor types as llama.cpp's.

use candle_core::quantized::GgmlDType;
use std::str::FromStr;

/// The file types `vigil export gguf --type` offers, plus `Keep` (every tensor keeps its
/// source type: a re-write that must be bit-identical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4KM,
    Q5KM,
    Q6K,
    Keep,
}

impl ExportType {
    pub const ALL: [ExportType; 7] = [
        ExportType::F16,
        ExportType::Bf16,
        ExportType::Q8_0,
        ExportType::Q4_0,
        ExportType::Q4KM,
        ExportType::Q5KM,
        ExportType::Q6K,
    ];

    /// The type most tensors get.
    pub fn base_type(self) -> Option<GgmlDType> {
        Some(match self {
            ExportType::F16 => GgmlDType::F16,
            ExportType::Bf16 => GgmlDType::BF16,
            ExportType::Q8_0 => GgmlDType::Q8_0,
            ExportType::Q4_0 => GgmlDType::Q4_0,
            ExportType::Q4KM => GgmlDType::Q4K,
            ExportType::Q5KM => GgmlDType::Q5K,
            ExportType::Q6K => GgmlDType::Q6K,
            ExportType::Keep => return None,
        })
    }

    /// llama.cpp's `llama_ftype` number, stored as `general.file_type`.
    pub fn file_type(self) -> Option<u32> {
        Some(match self {
            ExportType::F16 => 1,
            ExportType::Q4_0 => 2,
            ExportType::Q8_0 => 7,
            ExportType::Q4KM => 15,
            ExportType::Q5KM => 17,
            ExportType::Q6K => 18,
            ExportType::Bf16 => 32,
            ExportType::Keep => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ExportType::F16 => "f16",
            ExportType::Bf16 => "bf16",
            ExportType::Q8_0 => "q8_0",
            ExportType::Q4_0 => "q4_0",
            ExportType::Q4KM => "q4_k_m",
            ExportType::Q5KM => "q5_k_m",
            ExportType::Q6K => "q6_k",
            ExportType::Keep => "keep",
        }
    }
}

impl FromStr for ExportType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        ExportType::ALL
            .into_iter()
            .chain([ExportType::Keep])
            .find(|t| t.name() == lower)
            .ok_or_else(|| {
                format!("unknown export type '{s}' (expected f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k or keep)")
            })
    }
}

impl std::fmt::Display for ExportType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`tensor_type`] needs to know about the model as a whole.
#[derive(Debug, Clone, Copy)]
pub struct ModelShape {
    pub n_layer: usize,
    /// Whether the file has its own `output.weight` (else the embedding is tied and
    /// `token_embd` is treated as the output tensor).
    pub has_output: bool,
}

/// The layers llama.cpp gives more bits in its `_M` mixtures: the first and last eighth, and
/// every third layer in between.
pub fn use_more_bits(layer: usize, n_layer: usize) -> bool {
    let (i, n) = (layer as i64, n_layer as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// Whether llama.cpp quantises this tensor at all: 2-D and up `*.weight`, not norms.
pub fn is_quantisable(name: &str, dims: &[usize]) -> bool {
    name.ends_with("weight") && dims.len() >= 2 && !name.contains("_norm.weight")
}

/// The storage type of one tensor (`dims` outermost first, so the row length is the last)
/// in an export of type `export`, given its `source` type.
pub fn tensor_type(
    export: ExportType,
    name: &str,
    dims: &[usize],
    source: GgmlDType,
    shape: ModelShape,
) -> GgmlDType {
    let Some(base) = export.base_type() else {
        return source;
    };
    if !is_quantisable(name, dims) {
        return source;
    }
    let is_block_quant = !matches!(base, GgmlDType::F16 | GgmlDType::BF16 | GgmlDType::F32);
    if !is_block_quant {
        return base;
    }
    let row = *dims.last().unwrap_or(&0);
    let mut t = base;
    let is_output = name == "output.weight" || (!shape.has_output && name == "token_embd.weight");
    if is_output {
        // The output projection gets Q6_K unless the file is Q8_0 already; Q8_0 when its
        // rows are not whole blocks of the base type.
        if !row.is_multiple_of(base.block_size()) {
            t = GgmlDType::Q8_0;
        } else if base != GgmlDType::Q8_0 {
            t = GgmlDType::Q6K;
        }
    } else if name.contains("attn_v.weight") || name.contains("ffn_down") {
        let m = matches!(export, ExportType::Q4KM | ExportType::Q5KM);
        if m {
            if let Some(i) = layer_of(name) {
                if use_more_bits(i, shape.n_layer) {
                    t = GgmlDType::Q6K;
                }
            }
        }
    } else if name.contains("attn_qkv.weight") {
        match export {
            ExportType::Q4KM => t = GgmlDType::Q5K,
            ExportType::Q5KM => t = GgmlDType::Q6K,
            _ => {}
        }
    }
    // Rows that are not whole blocks: llama.cpp's fallbacks.
    if !row.is_multiple_of(t.block_size()) {
        t = match t {
            GgmlDType::Q4K => GgmlDType::Q5_0,
            GgmlDType::Q5K => GgmlDType::Q5_1,
            GgmlDType::Q6K => GgmlDType::Q8_0,
            other => other,
        };
        if !row.is_multiple_of(t.block_size()) {
            t = GgmlDType::F16;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: ModelShape = ModelShape {
        n_layer: 30,
        has_output: false,
    };

    #[test]
    fn more_bits_layers_follow_llama_cpp_for_24_layers() {
        // n = 24: n/8 = 3, 7n/8 = 21; in between (i - 3) % 3 == 2 → 5, 8, 11, 14, 17, 20.
        let got: Vec<usize> = (0..24).filter(|&i| use_more_bits(i, 24)).collect();
        assert_eq!(got, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
    }

    #[test]
    fn q4_k_m_mixture_on_a_256_multiple_model() {
        let s = ModelShape {
            n_layer: 24,
            has_output: true,
        };
        let src = GgmlDType::F16;
        let ty = |n: &str, d: &[usize]| tensor_type(ExportType::Q4KM, n, d, src, s);
        assert_eq!(ty("output.weight", &[32000, 1024]), GgmlDType::Q6K);
        assert_eq!(ty("token_embd.weight", &[32000, 1024]), GgmlDType::Q4K);
        assert_eq!(ty("blk.0.attn_v.weight", &[256, 1024]), GgmlDType::Q6K);
        assert_eq!(ty("blk.3.attn_v.weight", &[256, 1024]), GgmlDType::Q4K);
        assert_eq!(ty("blk.5.ffn_down.weight", &[1024, 2816]), GgmlDType::Q6K);
        assert_eq!(ty("blk.6.ffn_down.weight", &[1024, 2816]), GgmlDType::Q4K);
        assert_eq!(ty("blk.6.attn_q.weight", &[1024, 1024]), GgmlDType::Q4K);
        assert_eq!(ty("blk.6.attn_norm.weight", &[1024]), GgmlDType::F16);
    }

    #[test]
    fn fallbacks_for_rows_of_576() {
        // SmolLM2-135M: hidden 576 (not a multiple of 256), tied embedding, ffn 1536.
        let ty = |e, n: &str, d: &[usize]| tensor_type(e, n, d, GgmlDType::F32, SMOL);
        assert_eq!(
            ty(ExportType::Q4KM, "token_embd.weight", &[49152, 576]),
            GgmlDType::Q8_0
        );
        assert_eq!(
            ty(ExportType::Q4KM, "blk.4.attn_q.weight", &[576, 576]),
            GgmlDType::Q5_0
        );
        assert_eq!(
            ty(ExportType::Q4KM, "blk.0.attn_v.weight", &[192, 576]),
            GgmlDType::Q8_0
        );
        assert_eq!(
            ty(ExportType::Q4KM, "blk.0.ffn_down.weight", &[576, 1536]),
            GgmlDType::Q6K
        );
        assert_eq!(
            ty(ExportType::Q4KM, "blk.4.ffn_down.weight", &[576, 1536]),
            GgmlDType::Q4K
        );
        assert_eq!(
            ty(ExportType::Q5KM, "blk.4.ffn_up.weight", &[1536, 576]),
            GgmlDType::Q5_1
        );
        assert_eq!(
            ty(ExportType::Q6K, "blk.4.ffn_up.weight", &[1536, 576]),
            GgmlDType::Q8_0
        );
        // Q4_0: the tied output gets Q6_K, which falls back to Q8_0 for 576-wide rows.
        assert_eq!(
            ty(ExportType::Q4_0, "token_embd.weight", &[49152, 576]),
            GgmlDType::Q8_0
        );
        assert_eq!(
            ty(ExportType::Q4_0, "blk.1.attn_k.weight", &[192, 576]),
            GgmlDType::Q4_0
        );
        assert_eq!(
            ty(ExportType::Q8_0, "token_embd.weight", &[49152, 576]),
            GgmlDType::Q8_0
        );
        assert_eq!(
            ty(ExportType::F16, "token_embd.weight", &[49152, 576]),
            GgmlDType::F16
        );
        assert_eq!(
            ty(ExportType::F16, "output_norm.weight", &[576]),
            GgmlDType::F32
        );
    }

    #[test]
    fn type_names_parse() {
        for t in ExportType::ALL {
            assert_eq!(t.name().parse::<ExportType>().unwrap(), t);
        }
        assert!("q3_k".parse::<ExportType>().is_err());
    }
}
