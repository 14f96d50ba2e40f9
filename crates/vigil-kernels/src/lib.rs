//! Quantised matrix × f32 activation kernels for vigil's CPU runtime.
//!
//! Weights stay in their GGUF block formats ([`QuantType`]: Q4_0, Q4_1, Q5_0, Q8_0, Q4_K,
//! Q6_K, byte-compatible with ggml); activations are quantised once per matmul to the
//! 8-bit format ggml pairs with the weight type ([`act`]: Q8_0, Q8_1, Q8_K), with ggml's
//! x86 rounding rules, and the dot products run on integers.
//!
//! * [`matmul()`]: `y = x Wᵀ` for `W` a [`QuantMatrix`] `[out, in]` and `x` `[rows, in]` f32;
//!   one parallel section per call, tiles of 8 weight rows × up to 16 activation rows.
//!   [`matmul_uninit`] writes into a fresh vector's spare capacity instead (every element
//!   written, so nothing needs zeroing first). [`matmul_group`] runs several matrices
//!   that read the same input as one product (the input quantised once, one section for
//!   all their tiles); [`matmul_group_into`] writes into buffers a caller keeps.
//! * Parallel sections ([`team::for_each_index`]) run on a [`team::WorkerTeam`]: helper
//!   threads that spin briefly between sections, so a decode step's hundred-odd short
//!   products start on every core at once (rayon's parked workers woke late on a VM).
//!   Inference opts in with [`team::with_team`]; inside other rayon pools (training)
//!   sections stay on rayon.
//! * A [`QuantMatrix`] is row-major as in the GGUF ([`Layout::RowMajor`]) or, for the
//!   32-value block formats on CPUs with AVX2 (and up), packed in groups of 8 rows
//!   ([`Layout::RowGroups`], [`QuantMatrix::packed_for`]; the `groups` module): a decode
//!   step then reads one linear stream that feeds 8 independent accumulator chains, where
//!   one row at a time is bound by a single chain's FMA latency. Products are the same
//!   bit for bit in either layout. [`QuantMatrix::decode_copy_in`] makes the copy a
//!   decode step streams (row groups where they exist, row-major otherwise) in a
//!   [`StreamArena`]: a model's copies one after another on 2 MiB pages (the `pages`
//!   module).
//! * One module per weight family ([`q4_0`], [`q4_1`], [`q5_0`], [`q8_0`], [`q4_k`],
//!   [`q6_k`]), each documenting its block layout and exposing `vec_dot_scalar`,
//!   `vec_dot_avx2` (x86-64) and `vec_dot` (run-time dispatch) for one weight row ·
//!   one quantised activation row, plus `dequantize_row`.
//! * Instruction sets ([`Isa`]), chosen at run time on x86-64: AVX2+FMA+F16C (tiles,
//!   single-row kernels and the row groups' decode kernels), and on top
//!   of it AVX-512 VNNI (`vpdpbusd`) for the tiles, the 32-value block formats' decode
//!   kernels and the K-quants' (`q4_k::vec_dot_vnni`, `q6_k::vec_dot_vnni`: a decode step
//!   reads each weight row as one linear stream); where the CPU also has GFNI, the nibble
//!   formats' decode kernels (row groups, Q4_K) take a pair of 32-code vectors out of 32
//!   bytes with one affine map; portable scalar code everywhere else (no NEON path yet).
//!   Every SIMD kernel is
//!   bit-identical to the scalar one: all compute the integer sums exactly and apply the
//!   scales in the same f32 order.
//! * That order is the one llama.cpp's x86 kernel for the format uses (documented per
//!   module; Q4_K and Q6_K have two, picked by the number of activation rows as llama.cpp
//!   picks them), so vigil's logits are llama.cpp's bit for bit. A faster kernel may
//!   block across outputs but must keep each output's order.

/// The per-format public API of a 32-value block family.
macro_rules! block32_api {
    ($fmt:ident) => {
        /// Row of weights as f32 (`out.len()` = 32 × blocks).
        pub fn dequantize_row(w: &[u8], out: &mut [f32]) {
            use crate::block32::Fmt32;
            assert_eq!(w.len() / $fmt::BYTES * 32, out.len(), "output length");
            for (b, o) in w.chunks_exact($fmt::BYTES).zip(out.chunks_exact_mut(32)) {
                crate::block32::dequantize_block::<$fmt>(b, o);
            }
        }

        /// Weight row · quantised activation row (ggml bytes), portable code.
        pub fn vec_dot_scalar(w: &[u8], a: &[u8]) -> f32 {
            crate::block32::dot_scalar::<$fmt>(w, a)
        }

        /// Weight row · quantised activation row with AVX2; bit-identical to
        /// [`vec_dot_scalar`].
        ///
        /// # Safety
        /// The CPU must have AVX2, FMA and F16C ([`crate::Isa::avx2_available`]).
        #[cfg(target_arch = "x86_64")]
        pub unsafe fn vec_dot_avx2(w: &[u8], a: &[u8]) -> f32 {
            crate::block32::avx2::dot::<$fmt>(w, a)
        }

        /// Weight row · quantised activation row, best instruction set available.
        pub fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            match crate::Isa::detect() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: detect() returns these only when the CPU has AVX2.
                crate::Isa::Avx2 | crate::Isa::Avx512Vnni => unsafe { vec_dot_avx2(w, a) },
                _ => vec_dot_scalar(w, a),
            }
        }

        impl crate::matmul::Kernel for $fmt {
            const QTYPE: crate::QuantType = <$fmt as crate::block32::Fmt32>::QTYPE;
            fn tile(
                isa: crate::Isa,
                w: &[&[u8]; 8],
                acts: &crate::act::QuantizedActs,
                a0: usize,
                a1: usize,
                out: &mut [[f32; 8]],
            ) {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the caller passes Isa::Avx2 only after checking the CPU.
                    crate::Isa::Avx2 => unsafe {
                        crate::block32::avx2::tile8::<$fmt>(w, acts, a0, a1, out)
                    },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the caller passes Isa::Avx512Vnni only after checking the CPU.
                    crate::Isa::Avx512Vnni => unsafe {
                        crate::block32::vnni::tile8::<$fmt>(w, acts, a0, a1, out)
                    },
                    _ => crate::block32::tile_scalar::<$fmt>(w, acts, a0, a1, out),
                }
            }
        }
    };
}

/// The two entry points of a K-quant tile kernel whose body is
/// `tile8_body::<VNNI>(w, acts, a0, a1, out)` (`#[inline(always)]`): `tile8_avx2` and
/// `tile8_vnni`, the same code compiled for AVX2 and for AVX-512 VNNI (whose `vpdpbusd`
/// gives the same exact lane sums).
macro_rules! tile8_entry_points {
    () => {
        /// The tile kernel with AVX2.
        ///
        /// # Safety
        /// AVX2, FMA and F16C must be available; the rows must hold `acts.nb` blocks.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn tile8_avx2(
            w: &[&[u8]; 8],
            acts: &QuantizedActs,
            a0: usize,
            a1: usize,
            out: &mut [[f32; 8]],
        ) {
            tile8_body::<false>(w, acts, a0, a1, out)
        }

        /// The tile kernel with its integer lane sums from VNNI's `vpdpbusd`.
        ///
        /// # Safety
        /// As `tile8_avx2`, plus AVX-512 F/VL/BW and VNNI.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
        unsafe fn tile8_vnni(
            w: &[&[u8]; 8],
            acts: &QuantizedActs,
            a0: usize,
            a1: usize,
            out: &mut [[f32; 8]],
        ) {
            tile8_body::<true>(w, acts, a0, a1, out)
        }
    };
}
pub(crate) use tile8_entry_points;

pub mod act;
mod block32;
mod cpu;
mod format;
mod groups;
pub mod matmul;
mod pages;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q6_k;
pub mod q8_0;
pub mod team;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use act::{quantize_row, QuantizedActs};
pub use cpu::Isa;
pub use format::{ActType, Error, Layout, QuantMatrix, QuantType};
pub use matmul::{
    matmul, matmul_group, matmul_group_into, matmul_group_with, matmul_uninit, matmul_with,
};
pub use pages::{advise_huge_pages, ArenaBytes, StreamArena};

/// Row of `qtype` weights as f32 (`out.len()` = values in the row).
pub fn dequantize_row(qtype: QuantType, w: &[u8], out: &mut [f32]) {
    match qtype {
        QuantType::Q4_0 => q4_0::dequantize_row(w, out),
        QuantType::Q4_1 => q4_1::dequantize_row(w, out),
        QuantType::Q5_0 => q5_0::dequantize_row(w, out),
        QuantType::Q8_0 => q8_0::dequantize_row(w, out),
        QuantType::Q4K => q4_k::dequantize_row(w, out),
        QuantType::Q6K => q6_k::dequantize_row(w, out),
    }
}

/// Weight row · quantised activation row (the activation format of `qtype`), with a
/// given instruction set (scalar if the CPU lacks it).
pub fn vec_dot_with(isa: Isa, qtype: QuantType, w: &[u8], a: &[u8]) -> f32 {
    match (isa.checked(), qtype) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked()` returned Avx512Vnni, so the CPU has AVX-512 VNNI (and AVX2).
        (Isa::Avx512Vnni, QuantType::Q4K) => unsafe { q4_k::vec_dot_vnni(w, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Isa::Avx512Vnni, QuantType::Q6K) => unsafe { q6_k::vec_dot_vnni(w, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked()` returned one of these, so the CPU has AVX2, FMA and F16C.
        (Isa::Avx2 | Isa::Avx512Vnni, t) => unsafe {
            match t {
                QuantType::Q4_0 => q4_0::vec_dot_avx2(w, a),
                QuantType::Q4_1 => q4_1::vec_dot_avx2(w, a),
                QuantType::Q5_0 => q5_0::vec_dot_avx2(w, a),
                QuantType::Q8_0 => q8_0::vec_dot_avx2(w, a),
                QuantType::Q4K => q4_k::vec_dot_avx2(w, a),
                QuantType::Q6K => q6_k::vec_dot_avx2(w, a),
            }
        },
        (_, QuantType::Q4_0) => q4_0::vec_dot_scalar(w, a),
        (_, QuantType::Q4_1) => q4_1::vec_dot_scalar(w, a),
        (_, QuantType::Q5_0) => q5_0::vec_dot_scalar(w, a),
        (_, QuantType::Q8_0) => q8_0::vec_dot_scalar(w, a),
        (_, QuantType::Q4K) => q4_k::vec_dot_scalar(w, a),
        (_, QuantType::Q6K) => q6_k::vec_dot_scalar(w, a),
    }
}
