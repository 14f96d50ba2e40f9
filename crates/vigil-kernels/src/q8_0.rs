//! Q8_0 weights × Q8_0 activations.
//!
//! Block layout (34 bytes, 32 weights, ggml `block_q8_0`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | `d`: f16 scale |
//! | 2..34 | `qs[32]`: signed bytes, weight `j` = `qs[j]` |
//!
//! Value = `d · qs[j]`. Activations: [`crate::act`] Q8_0 (the same layout). Weights may
//! hold −128; the AVX2 kernel multiplies `|w|` by `y` with `w`'s sign, which is exact for it.

use crate::block32::Fmt32;
use crate::format::QuantType;

/// Marker type of the format.
pub struct Q8_0;

impl Fmt32 for Q8_0 {
    const QTYPE: QuantType = QuantType::Q8_0;
    const MIN: bool = false;
    const BIAS: i32 = 0;
    const SIGNED: bool = true;

    fn codes(block: &[u8]) -> [i32; 32] {
        let mut c = [0i32; 32];
        for (j, v) in c.iter_mut().enumerate() {
            *v = block[2 + j] as i8 as i32;
        }
        c
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn codes_avx2(block: *const u8) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        _mm256_loadu_si256(block.add(2) as *const __m256i)
    }
}

block32_api!(Q8_0);
