//! [`export_gguf`]: re-writes a GGUF model as another file type, one tensor at a time.
//!
//! Each tensor's new type comes from [`crate::mixture::tensor_type`]; a tensor whose type
//! does not change is copied byte for byte, any other is dequantised to f32 and quantised
//! again (as llama.cpp's `--allow-requantize` does). Metadata is copied, with
//! `general.file_type` and `general.quantization_version` set for the new type.

use crate::error::{ExportError, Result};
use crate::gguf_writer::{GgufWriter, TensorEntry};
use crate::lora_gguf::{add_update, peft_updates, rope_heads, to_rope_order};
use crate::mixture::{tensor_type, ExportType, ModelShape};
use crate::quantize::{dequantize_bytes, quantize_rows};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

/// ggml's current quantisation version, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// What an export did, tensor by tensor.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// (name, source type, exported type), in file order.
    pub tensors: Vec<(String, GgmlDType, GgmlDType)>,
    /// Tensors copied unchanged.
    pub copied: usize,
    /// Size of the written file.
    pub bytes: u64,
    pub seconds: f64,
}

impl ExportReport {
    /// Fills in the written file's size and the time since `start`.
    pub(crate) fn finished(mut self, out: &Path, start: Instant) -> Result<Self> {
        self.bytes = std::fs::metadata(out)
            .map_err(|e| ExportError::file(out, e))?
            .len();
        self.seconds = start.elapsed().as_secs_f64();
        Ok(self)
    }
}

/// A GGUF file's header, with its tensors in file order.
pub struct GgufSource {
    pub content: Content,
    /// (name, dims outermost first, type, absolute offset), by offset.
    pub tensors: Vec<(String, Vec<usize>, GgmlDType, u64)>,
    file: File,
    path: std::path::PathBuf,
}

impl GgufSource {
    /// Opens and checks a GGUF file (through vigil-model's reader, which rejects truncated
    /// and corrupt files by name).
    pub fn open(path: &Path) -> Result<Self> {
        let source =
            vigil_model::WeightSource::open_gguf(path).map_err(|e| ExportError::file(path, e))?;
        let vigil_model::WeightSource::Gguf { content, file, .. } = source else {
            return Err(ExportError::file(path, "not a GGUF source"));
        };
        let mut tensors: Vec<_> = content
            .tensor_infos
            .iter()
            .map(|(n, i)| {
                (
                    n.clone(),
                    i.shape.dims().to_vec(),
                    i.ggml_dtype,
                    content.tensor_data_offset + i.offset,
                )
            })
            .collect();
        tensors.sort_by_key(|t| t.3);
        Ok(GgufSource {
            content,
            tensors,
            file,
            path: path.to_path_buf(),
        })
    }

    /// The raw stored bytes of a tensor.
    pub fn raw(&mut self, index: usize) -> Result<Vec<u8>> {
        let (name, dims, dtype, offset) = &self.tensors[index];
        let len = TensorEntry {
            name: name.clone(),
            dims: dims.clone(),
            dtype: *dtype,
        }
        .byte_len()?;
        let mut buf = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(*offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| ExportError::file(&self.path, format!("tensor '{name}': {e}")))?;
        Ok(buf)
    }

    pub fn architecture(&self) -> Result<String> {
        self.content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| ExportError::file(&self.path, "no general.architecture"))
    }

    /// Metadata in a stable order: `general.*` first, then by key.
    pub fn sorted_metadata(&self) -> Vec<(String, Value)> {
        let mut kv: Vec<(String, Value)> = self
            .content
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        kv.sort_by(|a, b| {
            (!a.0.starts_with("general."), &a.0).cmp(&(!b.0.starts_with("general."), &b.0))
        });
        kv
    }
}

/// Writes `source` (a GGUF file) to `out` as `export_type`.
pub fn export_gguf(source: &Path, out: &Path, export_type: ExportType) -> Result<ExportReport> {
    export_gguf_merged(source, out, export_type, None)
}

/// A PEFT adapter's per-tensor updates, keyed by GGUF tensor name, with the head count
/// whose rope order the rows must follow (Q and K of `llama`).
type Deltas = BTreeMap<String, (Tensor, Option<usize>)>;

fn read_deltas(adapter_dir: &Path, src: &GgufSource, arch: &str) -> Result<Deltas> {
    let meta = &src.content.metadata;
    let count = |key: &str| {
        meta.get(&format!("{arch}.{key}"))
            .and_then(|v| v.to_u32().ok().map(|n| n as usize))
    };
    let heads = count("attention.head_count");
    let kv_heads = count("attention.head_count_kv").or(heads);
    Ok(peft_updates(adapter_dir)?
        .into_iter()
        .map(|(name, d)| {
            let rope = heads
                .zip(kv_heads)
                .and_then(|(h, kv)| rope_heads(arch, &name, h, kv));
            (name, (d, rope))
        })
        .collect())
}

/// [`export_gguf`] with a PEFT adapter merged into the weights first (W + scale·B·A, with
/// B's Q/K rows in llama.cpp's rope order for `llama`), so the file needs no adapter.
pub fn export_gguf_merged(
    source: &Path,
    out: &Path,
    export_type: ExportType,
    adapter: Option<&Path>,
) -> Result<ExportReport> {
    let start = Instant::now();
    if source
        .canonicalize()
        .ok()
        .is_some_and(|s| out.canonicalize().ok() == Some(s))
    {
        return Err(ExportError::file(
            out,
            "the output would overwrite the source",
        ));
    }
    let mut src = GgufSource::open(source)?;
    let arch = src.architecture()?;
    let n_layer = src
        .content
        .metadata
        .get(&format!("{arch}.block_count"))
        .and_then(|v| {
            v.to_u32()
                .ok()
                .map(|n| n as usize)
                .or_else(|| v.to_u64().ok().map(|n| n as usize))
        })
        .ok_or_else(|| ExportError::file(source, format!("no {arch}.block_count")))?;
    let shape = ModelShape {
        n_layer,
        has_output: src.tensors.iter().any(|t| t.0 == "output.weight"),
    };

    let mut deltas = match adapter {
        Some(dir) => read_deltas(dir, &src, &arch)?,
        None => Deltas::new(),
    };
    for name in deltas.keys() {
        if !src.tensors.iter().any(|t| &t.0 == name) {
            return Err(ExportError::file(
                source,
                format!("the adapter targets '{name}', which this model does not have"),
            ));
        }
    }
    let mut metadata = src.sorted_metadata();
    set_file_type(&mut metadata, export_type);
    let plan: Vec<TensorEntry> = src
        .tensors
        .iter()
        .map(|(name, dims, dtype, _)| TensorEntry {
            name: name.clone(),
            dims: dims.clone(),
            dtype: tensor_type(export_type, name, dims, *dtype, shape),
        })
        .collect();
    let mut writer = GgufWriter::create(out, &metadata, plan.clone())?;
    let mut report = ExportReport::default();
    for (i, entry) in plan.iter().enumerate() {
        let raw = src.raw(i)?;
        let from = src.tensors[i].2;
        let delta = deltas.remove(&entry.name);
        if from == entry.dtype && delta.is_none() {
            writer.write_tensor(&entry.name, &raw)?;
            report.copied += 1;
        } else {
            let mut values = dequantize_bytes(&entry.name, &raw, &entry.dims, from)?;
            if let Some((d, rope)) = delta {
                add_delta(&entry.name, &mut values, &entry.dims, &d, rope)?;
            }
            drop(raw);
            let row = *entry.dims.last().unwrap_or(&1);
            let bytes = quantize_rows(&entry.name, &values, row, entry.dtype)?;
            writer.write_tensor(&entry.name, &bytes)?;
        }
        report.tensors.push((entry.name.clone(), from, entry.dtype));
    }
    writer.finish()?;
    report.finished(out, start)
}

/// values += update, the update's rows put in rope order first when `rope` gives a head
/// count.
fn add_delta(
    name: &str,
    values: &mut [f32],
    dims: &[usize],
    update: &Tensor,
    rope: Option<usize>,
) -> Result<()> {
    let (rows, cols) = update.dims2().map_err(|e| ExportError::tensor(name, e))?;
    if dims != [rows, cols] {
        return Err(ExportError::tensor(
            name,
            format!("adapter update is {rows}×{cols}, the weight {dims:?}"),
        ));
    }
    match rope {
        Some(h) => {
            let d: Vec<f32> = update
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(|e| ExportError::tensor(name, e))?;
            let d = to_rope_order(&d, rows, cols, h)?;
            values.iter_mut().zip(&d).for_each(|(v, x)| *v += x);
            Ok(())
        }
        None => add_update(name, values, update),
    }
}

/// `general.file_type` and `general.quantization_version` for the exported type (kept as
/// they are for `keep`).
pub(crate) fn set_file_type(kv: &mut Vec<(String, Value)>, export_type: ExportType) {
    if let Some(ft) = export_type.file_type() {
        set(kv, "general.file_type", Value::U32(ft));
        set(
            kv,
            "general.quantization_version",
            Value::U32(QUANTIZATION_VERSION),
        );
    }
}

fn set(kv: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match kv.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => kv.push((key.to_string(), value)),
    }
}
