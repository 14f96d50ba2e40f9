//! Run-time CPU feature detection.
//!
//! The SIMD paths are compiled for every x86-64 build with `#[target_feature]` and chosen
//! at run time, so one binary runs on any x86-64 CPU and uses AVX2 where it exists.

use std::sync::OnceLock;

/// The instruction set a kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust; every kernel has it and it is the reference the SIMD paths are
    /// tested against.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// [`Isa::Avx2`] plus AVX-512 F/VL/BW and VNNI: the block-32 prefill tiles use
    /// `vpdpbusd` on 256-bit vectors and 32 vector registers; everything else runs the
    /// AVX2 code.
    Avx512Vnni,
}

impl Isa {
    /// The best instruction set this CPU supports. `VIGIL_KERNELS=scalar` (or `avx2`) in
    /// the environment caps it (for comparisons); it is read once.
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let cap = std::env::var("VIGIL_KERNELS").unwrap_or_default();
            if cap.eq_ignore_ascii_case("scalar") {
                Isa::Scalar
            } else if Isa::vnni_available() && !cap.eq_ignore_ascii_case("avx2") {
                Isa::Avx512Vnni
            } else if Isa::avx2_available() {
                Isa::Avx2
            } else {
                Isa::Scalar
            }
        })
    }

    /// Whether the VNNI path can run here (the AVX2 path's features plus AVX-512 F, VL, BW
    /// and VNNI).
    pub fn vnni_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            Isa::avx2_available()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Every instruction set this CPU can run, the portable one first (for tests that
    /// compare them).
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni]
            .into_iter()
            .filter(|&i| i.checked() == i)
            .collect()
    }

    /// Whether the AVX2 path can run here (AVX2, FMA and F16C all present).
    pub fn avx2_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// `self` if it can run on this CPU, else [`Isa::Scalar`].
    pub(crate) fn checked(self) -> Isa {
        match self {
            Isa::Avx512Vnni if Isa::vnni_available() => Isa::Avx512Vnni,
            Isa::Avx2 | Isa::Avx512Vnni if Isa::avx2_available() => Isa::Avx2,
            _ => Isa::Scalar,
        }
    }
}
