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
}

impl Isa {
    /// The best instruction set this CPU supports. `VIGIL_KERNELS=scalar` in the
    /// environment forces the scalar path (for comparisons); it is read once.
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            if std::env::var("VIGIL_KERNELS").is_ok_and(|v| v.eq_ignore_ascii_case("scalar")) {
                return Isa::Scalar;
            }
            if Isa::avx2_available() {
                Isa::Avx2
            } else {
                Isa::Scalar
            }
        })
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
            Isa::Avx2 if Isa::avx2_available() => Isa::Avx2,
            _ => Isa::Scalar,
        }
    }
}
