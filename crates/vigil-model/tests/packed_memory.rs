//! The quantised layers of a mapped model run on copies of their weights made for decode
//! (in vigil-kernels' row groups on a CPU with that kernel, AVX2 and up; row-major
//! elsewhere and for the K-quants), and the mapped pages of those weights go back to the
//! page cache: loaded and run, the process holds the weights once (peak RSS is one of
//! issue 8's targets). Its own test binary, so that no other test's passes touch the
//! mappings it measures.

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::Device;
use common::{logits_one, model_path, GEMMA3, SMOLLM2};
use std::path::Path;
use vigil_kernels::{Isa, Layout};
use vigil_model::layers::LinearWeight;
use vigil_model::{Decoder, Model, ModelConfig, WeightSource};

/// Resident bytes of this process's mappings of `path`, from `/proc/self/smaps`.
fn resident_bytes_of(path: &Path) -> usize {
    let path = path.canonicalize().unwrap();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_file = false;
    let mut kb = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, perms, offset, device, inode, then the path.
            in_file = fields.nth(4).map(Path::new) == Some(path.as_path());
        } else if in_file && first == "Rss:" {
            kb += fields.next().unwrap().parse::<usize>().unwrap();
        }
    }
    kb * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn copied_layers_hold_their_weights_once() {
    let grouped = Isa::detect() != Isa::Scalar;
    for name in [SMOLLM2, GEMMA3] {
        let path = model_path(name);
        let file_len = std::fs::metadata(&path).unwrap().len() as usize;
        let model = Model::load(&path).unwrap();
        let mut copied_bytes = 0;
        for lin in model.decoder.linears() {
            let LinearWeight::Quantized {
                tensor,
                decode_copy,
                ..
            } = &lin.weight
            else {
                continue;
            };
            let packable = matches!(
                tensor.dtype(),
                GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q8_0
            ) && lin.out_dim >= 8;
            let copy = decode_copy
                .as_ref()
                .unwrap_or_else(|| panic!("{name} {}: no copy for decode", lin.path));
            let layout = if grouped && packable {
                Layout::RowGroups
            } else {
                Layout::RowMajor
            };
            assert_eq!(copy.layout(), layout, "{name} {}", lin.path);
            copied_bytes += copy.data().len();
        }
        assert!(
            copied_bytes > file_len / 2,
            "{name}: only {copied_bytes} of {file_len} bytes copied"
        );
        // A pass reads the copies; the mapped bytes of those layers stay untouched
        // (the embedding lookups touch a few rows of the table).
        let out = logits_one(&model.decoder, &[1, 20, 300, 4000, 5]);
        assert_eq!(out.len(), 5);
        let resident = resident_bytes_of(&path);
        // Whatever has no copy may be resident (norms, the header); the copied layers'
        // pages must not be, but for those shared with a neighbour.
        let slack = 4 << 20;
        assert!(
            resident <= file_len - copied_bytes + slack,
            "{name}: {resident} bytes of the mapped file resident, {copied_bytes} of \
             {file_len} are copies"
        );
        // Training dequantises the copies: the values candle gives for the file's
        // bytes, bit for bit.
        for lin in model.decoder.linears() {
            let LinearWeight::Quantized { tensor, .. } = &lin.weight else {
                continue;
            };
            let ours = lin.dense_weight().unwrap().flatten_all().unwrap();
            let theirs = tensor
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap();
            let (a, b) = (
                ours.to_vec1::<f32>().unwrap(),
                theirs.to_vec1::<f32>().unwrap(),
            );
            assert!(
                a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name} {}: dequantised values differ",
                lin.path
            );
        }
    }
}

#[test]
fn weights_read_into_memory_get_no_copy() {
    // A copy would double them: only weights mapped from the file, whose pages go back,
    // are copied.
    let path = model_path(SMOLLM2);
    let mut src = WeightSource::open_gguf(&path).unwrap().without_mapping();
    let content = src.gguf_content().unwrap();
    let config = ModelConfig::from_gguf(content, |n| content.tensor_infos.contains_key(n)).unwrap();
    let decoder = Decoder::load(config, &mut src).unwrap();
    for lin in decoder.linears() {
        if let LinearWeight::Quantized { decode_copy, .. } = &lin.weight {
            assert!(decode_copy.is_none(), "{}", lin.path);
        }
    }
}
