//! A GGUF's tensors used in place from the mapped file are the tensors read into memory:
//! same bytes, same values, same logits, on the two real default models (SmolLM2's Q4_1 /
//! Q8_0 / f32, Gemma 3's Q4_K / Q6_K / Q5_0 / Q8_0 / f32).

mod common;

use candle_core::{Device, Tensor};
use common::{fixture, ids, model_path, GEMMA3, SMOLLM2};
use vigil_model::{Decoder, ModelConfig, Weight, WeightSource};

fn config_of(src: &WeightSource) -> ModelConfig {
    let content = src.gguf_content().unwrap();
    ModelConfig::from_gguf(content, |n| content.tensor_infos.contains_key(n)).unwrap()
}

#[test]
fn mapped_tensors_equal_read_tensors() {
    for name in [SMOLLM2, GEMMA3] {
        let path = model_path(name);
        let mut mapped = WeightSource::open_gguf(&path).unwrap();
        let mut read = WeightSource::open_gguf(&path).unwrap().without_mapping();
        assert!(mapped.is_mapped(), "{name}: the file was not mapped");
        assert!(!read.is_mapped());
        let tensors: Vec<(String, Vec<usize>)> = mapped
            .gguf_content()
            .unwrap()
            .tensor_infos
            .iter()
            .map(|(n, i)| (n.clone(), i.shape.dims().to_vec()))
            .collect();
        let mut views = 0;
        for (tensor, dims) in &tensors {
            let (m, r) = (
                mapped.get(tensor, dims).unwrap(),
                read.get(tensor, dims).unwrap(),
            );
            match (&m, &r) {
                (Weight::Quantized(m), Weight::Quantized(r)) => {
                    assert_eq!(m.dtype(), r.dtype(), "{name} {tensor}");
                    let (mb, rb) = (m.data().unwrap(), r.data().unwrap());
                    assert!(mb[..] == rb[..], "{name} {tensor}: mapped bytes differ");
                    // The storage is the file itself, not a copy of it.
                    assert!(mapped.maps(&mb), "{name} {tensor}: copied, not mapped");
                    assert!(!read.maps(&rb));
                    let (mv, rv) = (
                        dense(&m.dequantize(&Device::Cpu).unwrap()),
                        dense(&r.dequantize(&Device::Cpu).unwrap()),
                    );
                    assert!(same_bits(&mv, &rv), "{name} {tensor}: values differ");
                    views += 1;
                }
                (Weight::Dense(m), Weight::Dense(r)) => {
                    assert!(
                        same_bits(&dense(m), &dense(r)),
                        "{name} {tensor}: values differ"
                    );
                }
                _ => panic!("{name} {tensor}: stored differently mapped and read"),
            }
        }
        assert!(views > 0, "{name}: no block-quantised tensor");

        // A token id past the vocabulary is an error from the mapped embedding, not a
        // read outside the tensor.
        let embd = "token_embd.weight";
        let dims = &tensors.iter().find(|(n, _)| n == embd).unwrap().1;
        if let Weight::Quantized(q) = mapped.get(embd, dims).unwrap() {
            let past = Tensor::new(&[dims[0] as u32], &Device::Cpu).unwrap();
            let err = q.embedding(&past).unwrap_err().to_string();
            assert!(err.contains("outside"), "{name}: {err}");
        }

        // The decoder built on the mapping computes the same logits, bit for bit.
        let fx = fixture(name, "logits.json");
        let prompt = ids(&fx["prompts"][0]["ids"]);
        let decoders = [
            Decoder::load(config_of(&mapped), &mut mapped).unwrap(),
            Decoder::load(config_of(&read), &mut read).unwrap(),
        ];
        let [m, r] = decoders.map(|d| common::logits_one(&d, &prompt));
        for (k, (m, r)) in m.iter().zip(&r).enumerate() {
            assert!(same_bits(m, r), "{name}: logits at position {k} differ");
        }
    }
}

fn dense(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
