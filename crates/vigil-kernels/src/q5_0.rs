//! Q5_0 weights × Q8_0 activations.
//!
//! Block layout (22 bytes, 32 weights, ggml `block_q5_0`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | `d`: f16 scale |
//! | 2..6 | `qh`: u32 little-endian; bit `j` is bit 4 of weight `j` |
//! | 6..22 | `qs[16]`: low 4 bits; weight `j` (0..16) in the low nibble of `qs[j]`, weight `j + 16` in its high nibble |
//!
//! Value = `d · (code − 16)` with `code = nibble | (bit << 4)` in 0..32. The kernels
//! multiply the unsigned codes and subtract `16 · Σ y`.

use crate::block32::Fmt32;
use crate::format::QuantType;

/// Marker type of the format.
pub struct Q5_0;

impl Fmt32 for Q5_0 {
    const QTYPE: QuantType = QuantType::Q5_0;
    const MIN: bool = false;
    const BIAS: i32 = 16;
    const SIGNED: bool = false;

    fn codes(block: &[u8]) -> [i32; 32] {
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let mut c = [0i32; 32];
        for j in 0..16 {
            let b = block[6 + j];
            c[j] = ((b & 0x0F) as u32 | ((qh >> j) & 1) << 4) as i32;
            c[j + 16] = ((b >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4) as i32;
        }
        c
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn codes_avx2(block: *const u8) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        let lo = crate::x86::nibbles32(block.add(6));
        let qh = (block.add(2) as *const u32).read_unaligned();
        _mm256_or_si256(lo, crate::x86::fifth_bits(qh))
    }
}

block32_api!(Q5_0);
