//! [`GgufWriter`]: writes a GGUF v3 file as a stream — the header (metadata and tensor
//! directory) first, then each tensor's bytes in directory order — so an export holds one
//! tensor in memory at a time.

use crate::error::{ExportError, Result};
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// GGUF's default data alignment; `general.alignment` overrides it.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// ggml's numeric id of a tensor type, as stored in the tensor directory.
pub fn ggml_type_id(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

/// One tensor of the directory: its GGUF name, shape (outermost dimension first, as candle
/// and PyTorch write it; GGUF stores the reverse) and storage type.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dims: Vec<usize>,
    pub dtype: GgmlDType,
}

impl TensorEntry {
    /// Bytes of the tensor's data; an error when the innermost dimension is not a whole
    /// number of blocks (ggml cannot store such a row) or the size overflows.
    pub fn byte_len(&self) -> Result<usize> {
        let block = self.dtype.block_size();
        let row = *self.dims.last().unwrap_or(&1);
        if !row.is_multiple_of(block) {
            return Err(ExportError::tensor(
                &self.name,
                format!(
                    "rows of {row} values are not a multiple of the {block}-value blocks of {:?}",
                    self.dtype
                ),
            ));
        }
        self.dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| (n / block).checked_mul(self.dtype.type_size()))
            .ok_or_else(|| {
                ExportError::tensor(&self.name, format!("shape {:?} overflows", self.dims))
            })
    }
}

/// A GGUF file being written: header done, tensors streamed in directory order.
pub struct GgufWriter {
    path: PathBuf,
    out: BufWriter<File>,
    entries: Vec<(TensorEntry, usize)>,
    next: usize,
    alignment: u64,
    position: u64,
}

impl GgufWriter {
    /// Creates `path` and writes the header: `metadata` in the given order, then the tensor
    /// directory with offsets computed from each entry's size.
    pub fn create(
        path: &Path,
        metadata: &[(String, Value)],
        tensors: Vec<TensorEntry>,
    ) -> Result<Self> {
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, v)) => match v.to_u32() {
                Ok(a) if a > 0 && a.is_power_of_two() => a as u64,
                _ => {
                    return Err(ExportError::file(
                        path,
                        "general.alignment must be a power of two u32",
                    ))
                }
            },
            None => DEFAULT_ALIGNMENT,
        };
        let mut names = std::collections::HashSet::new();
        let mut entries = Vec::with_capacity(tensors.len());
        for t in tensors {
            if !names.insert(t.name.clone()) {
                return Err(ExportError::file(
                    path,
                    format!("tensor '{}' listed twice", t.name),
                ));
            }
            let len = t.byte_len()?;
            entries.push((t, len));
        }
        let file = File::create(path).map_err(|e| ExportError::file(path, e))?;
        let mut w = GgufWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            entries,
            next: 0,
            alignment,
            position: 0,
        };
        w.write_header(metadata)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| ExportError::file(&self.path, e))?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn put_string(&mut self, s: &str) -> Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s.as_bytes())
    }

    fn pad(&mut self) -> Result<()> {
        let rem = self.position % self.alignment;
        if rem != 0 {
            let zeros = vec![0u8; (self.alignment - rem) as usize];
            self.put(&zeros)?;
        }
        Ok(())
    }

    fn write_header(&mut self, metadata: &[(String, Value)]) -> Result<()> {
        self.put(b"GGUF")?;
        self.put(&3u32.to_le_bytes())?;
        self.put(&(self.entries.len() as u64).to_le_bytes())?;
        self.put(&(metadata.len() as u64).to_le_bytes())?;
        for (key, value) in metadata {
            self.put_string(key)?;
            self.put(&value_type_id(value).to_le_bytes())?;
            self.put_value(key, value)?;
        }
        let mut offset = 0u64;
        let entries = std::mem::take(&mut self.entries);
        for (t, len) in &entries {
            self.put_string(&t.name)?;
            self.put(&(t.dims.len() as u32).to_le_bytes())?;
            for &d in t.dims.iter().rev() {
                self.put(&(d as u64).to_le_bytes())?;
            }
            self.put(&ggml_type_id(t.dtype).to_le_bytes())?;
            self.put(&offset.to_le_bytes())?;
            offset += (*len as u64).div_ceil(self.alignment) * self.alignment;
        }
        self.entries = entries;
        self.pad()
    }

    fn put_value(&mut self, key: &str, value: &Value) -> Result<()> {
        match value {
            Value::U8(v) => self.put(&v.to_le_bytes()),
            Value::I8(v) => self.put(&v.to_le_bytes()),
            Value::U16(v) => self.put(&v.to_le_bytes()),
            Value::I16(v) => self.put(&v.to_le_bytes()),
            Value::U32(v) => self.put(&v.to_le_bytes()),
            Value::I32(v) => self.put(&v.to_le_bytes()),
            Value::U64(v) => self.put(&v.to_le_bytes()),
            Value::I64(v) => self.put(&v.to_le_bytes()),
            Value::F32(v) => self.put(&v.to_le_bytes()),
            Value::F64(v) => self.put(&v.to_le_bytes()),
            Value::Bool(v) => self.put(&[*v as u8]),
            Value::String(s) => self.put_string(s),
            Value::Array(items) => {
                // GGUF arrays are homogeneous; an empty one is written as u8 (the type is moot).
                let elem = items.first().map(value_type_id).unwrap_or(0);
                if items.iter().any(|v| value_type_id(v) != elem) {
                    return Err(ExportError::file(
                        &self.path,
                        format!("metadata '{key}': array of mixed types"),
                    ));
                }
                self.put(&elem.to_le_bytes())?;
                self.put(&(items.len() as u64).to_le_bytes())?;
                for item in items {
                    self.put_value(key, item)?;
                }
                Ok(())
            }
        }
    }

    /// The next tensor of the directory, in order, by name; `data` must be exactly its size.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let Some((entry, len)) = self.entries.get(self.next) else {
            return Err(ExportError::file(
                &self.path,
                format!(
                    "tensor '{name}' is not in the directory (all {} written)",
                    self.next
                ),
            ));
        };
        if entry.name != name {
            return Err(ExportError::file(
                &self.path,
                format!("tensor '{name}' written where '{}' is due", entry.name),
            ));
        }
        if data.len() != *len {
            return Err(ExportError::tensor(
                name,
                format!(
                    "{} bytes given, {:?} {:?} needs {len}",
                    data.len(),
                    entry.dtype,
                    entry.dims
                ),
            ));
        }
        self.next += 1;
        self.put(data)?;
        self.pad()
    }

    /// Checks every tensor was written and flushes the file.
    pub fn finish(mut self) -> Result<()> {
        if self.next != self.entries.len() {
            return Err(ExportError::file(
                &self.path,
                format!(
                    "only {} of {} tensors written",
                    self.next,
                    self.entries.len()
                ),
            ));
        }
        self.out
            .flush()
            .map_err(|e| ExportError::file(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| ExportError::file(&self.path, e))
    }
}

/// GGUF's metadata value type ids.
fn value_type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}
