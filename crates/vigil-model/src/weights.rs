//! `WeightSource`: named tensors from a GGUF file or from (sharded) safetensors.
//!
//! Tensors are always asked for by their llama.cpp (GGUF) name — `blk.3.attn_q.weight` —
//! and a safetensors source translates that to the Hugging Face module path with
//! [`hf_tensor_name`], so the decoder has one naming scheme whatever the file.
//!
//! A GGUF file's block-quantised tensors are used where they lie: the file is mapped into
//! memory ([`MappedFile`]) and each tensor's storage is a typed view of its bytes
//! ([`MappedBlocks`]), so loading copies nothing, the pages come from the page cache on
//! first use, and processes running the same model share them. `VIGIL_NO_MMAP=1` reads
//! the tensors into memory instead (as llama.cpp's `--no-mmap`), e.g. for a model on a
//! network file system that may change under the process.

use crate::config::Family;
use crate::error::{ModelError, Result};
use candle_core::quantized::{gguf_file, GgmlDType, GgmlType, QStorage, QTensor, QuantizedType};
use candle_core::{CpuStorage, DType, Device, Tensor};
use memmap2::MmapMut;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vigil_kernels::StreamArena;

/// One stored tensor: still quantised, or dense f32.
#[derive(Debug, Clone)]
pub enum Weight {
    Quantized(Arc<QTensor>),
    Dense(Tensor),
}

impl Weight {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Weight::Quantized(q) => q.shape().dims().to_vec(),
            Weight::Dense(t) => t.dims().to_vec(),
        }
    }

    /// A dense f32 copy (dequantising if needed).
    pub fn to_dense(&self) -> Result<Tensor> {
        Ok(match self {
            Weight::Quantized(q) => q.dequantize(&Device::Cpu)?,
            Weight::Dense(t) => t.to_dtype(DType::F32)?,
        })
    }

    /// Float types stored in a GGUF are used densely; block-quantised ones stay quantised.
    fn from_qtensor(q: QTensor) -> Result<Self> {
        Ok(match q.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                Weight::Dense(q.dequantize(&Device::Cpu)?)
            }
            _ => Weight::Quantized(Arc::new(q)),
        })
    }
}

/// Where the decoder's tensors come from.
pub enum WeightSource {
    Gguf {
        path: PathBuf,
        file: File,
        content: gguf_file::Content,
        /// The whole file mapped; `None` where mapping is off or failed (then tensors are
        /// read into memory).
        map: Option<Arc<MappedFile>>,
    },
    Safetensors {
        dir: PathBuf,
        family: Family,
        tensors: candle_core::safetensors::MmapedSafetensors,
    },
}

impl WeightSource {
    /// Opens a GGUF file and reads its header (metadata and tensor directory).
    pub fn open_gguf(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| ModelError::file(path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| ModelError::file(path, e))?
            .len();
        let content = gguf_file::Content::read(&mut file).map_err(|e| {
            // candle reports running off the end as an I/O error or a bounds check on the
            // remaining bytes; say what that means.
            let text = e.to_string();
            if text.contains("failed to fill whole buffer") || text.contains("remaining") {
                ModelError::file(
                    path,
                    format!(
                        "truncated or corrupt GGUF file: the header runs past the end of the \
                         file ({file_len} bytes): {text}"
                    ),
                )
            } else {
                ModelError::file(path, format!("not a readable GGUF file: {text}"))
            }
        })?;
        // Check every tensor lies inside the file now, so a truncated download fails here
        // with one clear message rather than on whichever tensor is read first.
        let mut needed = 0u64;
        for (name, info) in &content.tensor_infos {
            let dtype = info.ggml_dtype;
            let bytes = info
                .shape
                .dims()
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .map(|n| (n / dtype.block_size()).saturating_mul(dtype.type_size()))
                .ok_or_else(|| {
                    ModelError::file(
                        path,
                        format!("tensor '{name}' has an impossible shape {:?}", info.shape),
                    )
                })?;
            let end = content
                .tensor_data_offset
                .saturating_add(info.offset)
                .saturating_add(bytes as u64);
            needed = needed.max(end);
        }
        if needed > file_len {
            return Err(ModelError::file(
                path,
                format!(
                    "truncated GGUF file: its tensors need {needed} bytes, the file has {file_len}"
                ),
            ));
        }
        let map = if mmap_disabled() {
            None
        } else {
            match MappedFile::new(&file) {
                Ok(map) => Some(Arc::new(map)),
                Err(e) => {
                    tracing::debug!("{}: not mapped, reading instead: {e}", path.display());
                    None
                }
            }
        };
        Ok(WeightSource::Gguf {
            path: path.to_path_buf(),
            file,
            content,
            map,
        })
    }

    /// Opens the safetensors of a Hugging Face model directory (one file or an index of
    /// shards).
    pub fn open_safetensors(dir: &Path, family: Family) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| ModelError::file(&index, e))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::file(&index, format!("invalid JSON: {e}")))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::file(&index, "no 'weight_map' object"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            shards.sort();
            shards.dedup();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            vec![dir.join("model.safetensors")]
        };
        for f in &files {
            if !f.exists() {
                return Err(ModelError::file(f, "safetensors file not found"));
            }
        }
        // SAFETY: the files are mapped read-only; like every mmap-based loader we rely on
        // them not being truncated while the model is loading (tensors are copied out).
        let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| {
                ModelError::file(
                    dir,
                    format!("cannot read safetensors ({}): {e}", files.len()),
                )
            })?;
        Ok(WeightSource::Safetensors {
            dir: dir.to_path_buf(),
            family,
            tensors,
        })
    }

    /// Forgets these GGUF metadata keys (large arrays already used, so their memory is
    /// not held while the weights load).
    pub fn drop_metadata(&mut self, keys: &[&str]) {
        if let WeightSource::Gguf { content, .. } = self {
            for k in keys {
                content.metadata.remove(*k);
            }
        }
    }

    /// Whether the tensors come from a mapping of the GGUF file (see the module docs).
    pub fn is_mapped(&self) -> bool {
        matches!(self, WeightSource::Gguf { map: Some(_), .. })
    }

    /// This source reading its tensors into memory instead of mapping the file.
    pub fn without_mapping(mut self) -> Self {
        if let WeightSource::Gguf { map, .. } = &mut self {
            *map = None;
        }
        self
    }

    /// Whether `bytes` lie inside this source's mapping of the file (a tensor's storage
    /// is then a view of the file, not a copy).
    pub fn maps(&self, bytes: &[u8]) -> bool {
        let WeightSource::Gguf { map: Some(m), .. } = self else {
            return false;
        };
        let (start, end) = (m.base as usize, m.base as usize + m.len());
        let p = bytes.as_ptr() as usize;
        start <= p && p + bytes.len() <= end
    }

    /// The arena for decode copies of this source's mapped tensors (see [`MappedFile`]);
    /// `None` if nothing is mapped.
    pub fn copy_arena(&self) -> Option<&Mutex<StreamArena>> {
        match self {
            WeightSource::Gguf { map: Some(m), .. } => Some(&m.copies),
            _ => None,
        }
    }

    /// Hands the pages wholly inside `bytes` back to the page cache, if `bytes` lie in
    /// this source's mapping: for a tensor whose values now live elsewhere (a layer's
    /// copy for decode, see `LinearWeight::Quantized`), so the process does not hold them
    /// twice. A page touched again reads back from the file; a page only partly inside
    /// `bytes` (shared with a neighbouring tensor) stays. Returns how far into `bytes`
    /// the last page boundary lies, where a caller releasing a tensor piece by piece
    /// goes on from.
    pub fn release_pages(&self, bytes: &[u8]) -> usize {
        let WeightSource::Gguf { map: Some(m), .. } = self else {
            return 0;
        };
        if !self.maps(bytes) {
            return 0;
        }
        m.release(bytes.as_ptr() as usize - m.base as usize, bytes.len())
    }

    pub fn gguf_content(&self) -> Option<&gguf_file::Content> {
        match self {
            WeightSource::Gguf { content, .. } => Some(content),
            WeightSource::Safetensors { .. } => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            WeightSource::Gguf { path, .. } => path,
            WeightSource::Safetensors { dir, .. } => dir,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            WeightSource::Gguf { content, .. } => content.tensor_infos.contains_key(name),
            WeightSource::Safetensors {
                tensors, family, ..
            } => hf_tensor_name(name, *family)
                .map(|n| tensors.get(&n).is_ok())
                .unwrap_or(false),
        }
    }

    /// Loads a tensor by GGUF name and checks it has the expected shape (outermost first).
    pub fn get(&mut self, name: &str, expect: &[usize]) -> Result<Weight> {
        let w = self.get_unchecked(name)?;
        if w.dims() != expect {
            // A safetensors user knows the tensor by its Hugging Face name.
            let whence = match self {
                WeightSource::Safetensors { dir, family, .. } => {
                    match hf_tensor_name(name, *family) {
                        Some(hf) => format!("{} ('{hf}')", dir.display()),
                        None => dir.display().to_string(),
                    }
                }
                WeightSource::Gguf { path, .. } => path.display().to_string(),
            };
            return Err(ModelError::weight(
                name,
                format!(
                    "{whence}: shape {:?} does not match the configuration's {:?}",
                    w.dims(),
                    expect
                ),
            ));
        }
        Ok(w)
    }

    fn get_unchecked(&mut self, name: &str) -> Result<Weight> {
        match self {
            WeightSource::Gguf {
                path,
                file,
                content,
                map,
            } => {
                if !content.tensor_infos.contains_key(name) {
                    return Err(ModelError::weight(
                        name,
                        format!("{}: tensor missing", path.display()),
                    ));
                }
                let q = read_qtensor(file, map.as_ref(), content, name)
                    .map_err(|e| ModelError::weight(name, format!("{}: {e}", path.display())))?;
                Weight::from_qtensor(q)
            }
            WeightSource::Safetensors {
                dir,
                family,
                tensors,
            } => {
                let hf = hf_tensor_name(name, *family).ok_or_else(|| {
                    ModelError::weight(
                        name,
                        format!("{}: no Hugging Face name for this tensor", dir.display()),
                    )
                })?;
                let t = tensors.load(&hf, &Device::Cpu).map_err(|e| {
                    ModelError::weight(name, format!("{} ('{hf}'): {e}", dir.display()))
                })?;
                Ok(Weight::Dense(t.to_dtype(DType::F32)?))
            }
        }
    }
}

/// Whether `VIGIL_NO_MMAP` asks for tensors to be read into memory rather than mapped.
fn mmap_disabled() -> bool {
    std::env::var_os("VIGIL_NO_MMAP").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A GGUF file mapped privately (copy-on-write): pages are read from the page cache on
/// first touch and shared with every process mapping the same file; a write (only
/// re-quantising a tensor in place would do one) stays private to this process.
///
/// Like every memory-mapped loader (llama.cpp's included), this relies on the file not
/// being truncated while the model is in use: a page past the new end would fault.
/// [`WeightSource::open_gguf`] has checked that every tensor lies inside the file.
pub struct MappedFile {
    map: MmapMut,
    /// `map`'s start, taken once from a unique borrow: the views write through it.
    base: *mut u8,
    /// Where the decode copies of this file's tensors go (`LinearWeight::Quantized`): one
    /// region the size of the file, so they all lie on huge pages (vigil_kernels' `pages`
    /// module); what the copies leave unused is never touched.
    copies: Mutex<StreamArena>,
}

// SAFETY: the mapping is plain memory owned by this value; the views hand out disjoint
// ranges of it, each borrowed under the usual `&`/`&mut` rules of its owner.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl MappedFile {
    fn new(file: &File) -> std::io::Result<Self> {
        // SAFETY: see the type's doc: the file must not be truncated while mapped.
        let mut map = unsafe { memmap2::MmapOptions::new().map_copy(file)? };
        // Start reading ahead now; a model's weights are all used on the first pass.
        let _ = map.advise(memmap2::Advice::WillNeed);
        let base = map.as_mut_ptr();
        let copies = Mutex::new(StreamArena::with_region_size(map.len()));
        Ok(MappedFile { map, base, copies })
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops the process's copies of the whole pages in `offset..offset + len`; returns
    /// the length up to the last page boundary in that range (0 if there is none).
    fn release(&self, offset: usize, len: usize) -> usize {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let base = self.base as usize;
        let start = (base + offset).next_multiple_of(page) - base;
        let end = (base + offset + len) / page * page - base;
        if start < end {
            // SAFETY: the mapping is private and weight pages are never written, so a page
            // dropped here reads back from the file with the bytes it held.
            let advised = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
            if let Err(e) = advised {
                tracing::debug!("could not release mapped weight pages: {e}");
            }
        }
        end.saturating_sub(offset)
    }
}

/// A tensor's blocks of type `T`, viewed in place in a [`MappedFile`]: a candle
/// `QuantizedType`, so a `QTensor` over it works like one over its own vector.
pub struct MappedBlocks<T> {
    file: Arc<MappedFile>,
    offset: usize,
    len: usize,
    _blocks: PhantomData<T>,
}

impl<T: GgmlType> MappedBlocks<T> {
    /// The view of `len` blocks at byte `offset`, or `None` if they do not lie inside the
    /// file or are not aligned for `T` (a GGUF aligns its tensors to 32 bytes by default).
    fn new(file: &Arc<MappedFile>, offset: usize, len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let fits = offset
            .checked_add(bytes)
            .is_some_and(|end| end <= file.len());
        let aligned = (file.base as usize + offset).is_multiple_of(std::mem::align_of::<T>());
        (fits && aligned).then(|| MappedBlocks {
            file: Arc::clone(file),
            offset,
            len,
            _blocks: PhantomData,
        })
    }

    fn blocks(&self) -> &[T] {
        // SAFETY: `new` checked the range and its alignment; ggml blocks are plain bytes
        // (any bit pattern is a value); the mapping lives as long as `self.file`.
        unsafe { std::slice::from_raw_parts(self.file.base.add(self.offset) as *const T, self.len) }
    }

    fn blocks_mut(&mut self) -> &mut [T] {
        // SAFETY: as `blocks`; the range belongs to this view alone and `&mut self` makes
        // the borrow unique. The mapping is private, so the file is never written.
        unsafe {
            std::slice::from_raw_parts_mut(self.file.base.add(self.offset) as *mut T, self.len)
        }
    }
}

impl<T: GgmlType + 'static> QuantizedType for MappedBlocks<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn matmul_t(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[f32],
        dst: &mut [f32],
    ) -> candle_core::Result<()> {
        candle_core::quantized::k_quants::matmul(mkn, lhs, self.blocks(), dst)
    }

    fn matmul_t_f16(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[half::f16],
        dst: &mut [half::f16],
    ) -> candle_core::Result<()> {
        candle_core::quantized::k_quants::matmul_f16(mkn, lhs, self.blocks(), dst)
    }

    fn embedding(
        &self,
        ids: &[u32],
        rows: usize,
        hidden: usize,
    ) -> candle_core::Result<CpuStorage> {
        if hidden == 0
            || !hidden.is_multiple_of(T::BLCK_SIZE)
            || self.len != rows * (hidden / T::BLCK_SIZE)
        {
            candle_core::bail!(
                "embedding of {rows} rows of {hidden} values over {} blocks of {:?}",
                self.len,
                T::DTYPE
            );
        }
        let per_row = hidden / T::BLCK_SIZE;
        let blocks = self.blocks();
        let mut out = vec![0f32; ids.len() * hidden];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
            let row = id as usize;
            if row >= rows {
                candle_core::bail!("token id {row} is outside the {rows}-row embedding");
            }
            T::to_float(&blocks[row * per_row..(row + 1) * per_row], dst);
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> candle_core::Result<CpuStorage> {
        if elem_count != self.len * T::BLCK_SIZE {
            candle_core::bail!(
                "{elem_count} values asked of {} blocks of {:?}",
                self.len,
                T::DTYPE
            );
        }
        let mut values = vec![0f32; elem_count];
        T::to_float(self.blocks(), &mut values);
        Ok(CpuStorage::F32(values))
    }

    fn storage_size_in_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    fn as_ptr(&self) -> *const u8 {
        self.blocks().as_ptr() as *const u8
    }

    fn block_size(&self) -> usize {
        T::BLCK_SIZE
    }

    fn from_float(&mut self, xs: &[f32]) {
        T::from_float(xs, self.blocks_mut())
    }

    fn from_float_imatrix(&mut self, xs: &[f32], imatrix_weights: &[f32], n_per_row: usize) {
        T::from_float_imatrix(xs, self.blocks_mut(), imatrix_weights, n_per_row)
    }

    fn size(&self) -> usize {
        self.storage_size_in_bytes()
    }
}

/// A GGUF tensor as a `QTensor` over its own storage: a view of the mapped file where
/// there is one, else read straight into typed blocks. (candle's own reader reads the bytes
/// into a buffer and then copies them into blocks: that doubled the peak memory of the
/// largest tensor — Gemma 3's 178 MB embedding — and left the freed buffers fragmenting
/// the heap.)
fn read_qtensor(
    file: &mut File,
    map: Option<&Arc<MappedFile>>,
    content: &gguf_file::Content,
    name: &str,
) -> candle_core::Result<QTensor> {
    use candle_core::quantized::k_quants::*;
    let info = &content.tensor_infos[name];
    let dtype = info.ggml_dtype;
    let elems = info.shape.elem_count();
    if !elems.is_multiple_of(dtype.block_size()) {
        candle_core::bail!("{elems} values are not whole blocks of {dtype:?}");
    }
    let n = elems / dtype.block_size();
    let start = content.tensor_data_offset.saturating_add(info.offset);
    let mut source = BlockSource {
        file,
        map,
        start,
        n,
    };
    let storage = match dtype {
        GgmlDType::F32 => source.blocks::<f32>()?,
        GgmlDType::F16 => source.blocks::<half::f16>()?,
        GgmlDType::BF16 => source.blocks::<half::bf16>()?,
        GgmlDType::Q4_0 => source.blocks::<BlockQ4_0>()?,
        GgmlDType::Q4_1 => source.blocks::<BlockQ4_1>()?,
        GgmlDType::Q5_0 => source.blocks::<BlockQ5_0>()?,
        GgmlDType::Q5_1 => source.blocks::<BlockQ5_1>()?,
        GgmlDType::Q8_0 => source.blocks::<BlockQ8_0>()?,
        GgmlDType::Q2K => source.blocks::<BlockQ2K>()?,
        GgmlDType::Q3K => source.blocks::<BlockQ3K>()?,
        GgmlDType::Q4K => source.blocks::<BlockQ4K>()?,
        GgmlDType::Q5K => source.blocks::<BlockQ5K>()?,
        GgmlDType::Q6K => source.blocks::<BlockQ6K>()?,
        _ => return content.tensor(file, name, &Device::Cpu),
    };
    QTensor::new(QStorage::Cpu(storage), info.shape.dims().to_vec())
}

/// Where one tensor's `n` blocks come from: a view of the mapping, or the file read at
/// byte `start`.
struct BlockSource<'a> {
    file: &'a mut File,
    map: Option<&'a Arc<MappedFile>>,
    start: u64,
    n: usize,
}

impl BlockSource<'_> {
    fn blocks<T: GgmlType + 'static>(&mut self) -> std::io::Result<Box<dyn QuantizedType>> {
        let mapped = self
            .map
            .and_then(|m| MappedBlocks::<T>::new(m, usize::try_from(self.start).ok()?, self.n));
        if let Some(view) = mapped {
            return Ok(Box::new(view));
        }
        self.file.seek(SeekFrom::Start(self.start))?;
        let mut blocks = vec![T::zeros(); self.n];
        // SAFETY: ggml blocks are plain bytes (f16s and byte arrays, no padding: their
        // size is the format's block size, which candle relies on as well), so any bytes
        // are a valid value, and the slice covers exactly the vector's initialised elements.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                blocks.as_mut_ptr() as *mut u8,
                self.n * std::mem::size_of::<T>(),
            )
        };
        self.file.read_exact(bytes)?;
        Ok(Box::new(blocks))
    }
}

/// The Hugging Face tensor name for a GGUF tensor name, per family. One table for loading
/// safetensors now and for PEFT module paths later.
pub fn hf_tensor_name(gguf: &str, family: Family) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = rest.split_once('.')?;
    let path = match (module, family) {
        ("attn_q", _) => "self_attn.q_proj",
        ("attn_k", _) => "self_attn.k_proj",
        ("attn_v", _) => "self_attn.v_proj",
        ("attn_output", _) => "self_attn.o_proj",
        ("attn_q_norm", _) => "self_attn.q_norm",
        ("attn_k_norm", _) => "self_attn.k_norm",
        ("ffn_gate", _) => "mlp.gate_proj",
        ("ffn_up", _) => "mlp.up_proj",
        ("ffn_down", _) => "mlp.down_proj",
        ("attn_norm", _) => "input_layernorm",
        // Gemma 3 has four norms per block; Llama's second norm sits where Gemma's
        // pre-feed-forward norm does.
        ("ffn_norm", Family::Gemma3) => "pre_feedforward_layernorm",
        ("ffn_norm", _) => "post_attention_layernorm",
        ("post_attention_norm", Family::Gemma3) => "post_attention_layernorm",
        ("post_ffw_norm", Family::Gemma3) => "post_feedforward_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{path}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names_follow_transformers_module_paths() {
        assert_eq!(
            hf_tensor_name("blk.3.attn_q.weight", Family::Llama).as_deref(),
            Some("model.layers.3.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.0.attn_k.bias", Family::Qwen2).as_deref(),
            Some("model.layers.0.self_attn.k_proj.bias")
        );
        assert_eq!(
            hf_tensor_name("blk.1.ffn_norm.weight", Family::Llama).as_deref(),
            Some("model.layers.1.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.1.ffn_norm.weight", Family::Gemma3).as_deref(),
            Some("model.layers.1.pre_feedforward_layernorm.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.1.post_attention_norm.weight", Family::Gemma3).as_deref(),
            Some("model.layers.1.post_attention_layernorm.weight")
        );
        assert_eq!(hf_tensor_name("blk.x.attn_q.weight", Family::Llama), None);
    }
}
