//! Q4_0 weights × Q8_0 activations.
//!
//! Block layout (18 bytes, 32 weights, ggml `block_q4_0`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | `d`: f16 scale |
//! | 2..18 | `qs[16]`: weight `j` (0..16) is the low nibble of `qs[j]`, weight `j + 16` its high nibble |
//!
//! Value = `d · (nibble − 8)`. Activations: [`crate::act`] Q8_0. The kernels multiply the
//! unsigned nibbles and subtract `8 · Σ y` (the activation block's exact sum).

use crate::block32::Fmt32;
use crate::format::QuantType;

/// Marker type of the format.
pub struct Q4_0;

impl Fmt32 for Q4_0 {
    const QTYPE: QuantType = QuantType::Q4_0;
    const MIN: bool = false;
    const BIAS: i32 = 8;
    const SIGNED: bool = false;

    fn codes(block: &[u8]) -> [i32; 32] {
        let mut c = [0i32; 32];
        for j in 0..16 {
            let b = block[2 + j];
            c[j] = (b & 0x0F) as i32;
            c[j + 16] = (b >> 4) as i32;
        }
        c
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn codes_avx2(block: *const u8) -> std::arch::x86_64::__m256i {
        crate::x86::nibbles32(block.add(2))
    }
}

block32_api!(Q4_0);
