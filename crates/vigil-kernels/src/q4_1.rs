//! Q4_1 weights × Q8_1 activations.
//!
//! Block layout (20 bytes, 32 weights, ggml `block_q4_1`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | `d`: f16 scale |
//! | 2..4 | `m`: f16 minimum |
//! | 4..20 | `qs[16]`: weight `j` (0..16) is the low nibble of `qs[j]`, weight `j + 16` its high nibble |
//!
//! Value = `d · nibble + m`. Activations: [`crate::act`] Q8_1, whose stored
//! `s = f16(d_y · Σ q_y)` supplies the `m · Σ y` term: `w · y = d_w d_y Σ nibble·q_y + m_w s_y`.

use crate::block32::Fmt32;
use crate::format::QuantType;

/// Marker type of the format.
pub struct Q4_1;

impl Fmt32 for Q4_1 {
    const QTYPE: QuantType = QuantType::Q4_1;
    const MIN: bool = true;
    const BIAS: i32 = 0;
    const SIGNED: bool = false;

    fn codes(block: &[u8]) -> [i32; 32] {
        let mut c = [0i32; 32];
        for j in 0..16 {
            let b = block[4 + j];
            c[j] = (b & 0x0F) as i32;
            c[j + 16] = (b >> 4) as i32;
        }
        c
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn codes_avx2(block: *const u8) -> std::arch::x86_64::__m256i {
        crate::x86::nibbles32(block.add(4))
    }
}

block32_api!(Q4_1);
