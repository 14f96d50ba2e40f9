//! [`TrainRng`]: the trainer's one source of randomness during training (dropout masks).
//!
//! It is a SplitMix64 generator: one `u64` of state, so a checkpoint stores it exactly and a
//! resumed run draws the same numbers an uninterrupted run would. Data order does not use it:
//! each epoch's order is a pure function of (seed, epoch) ([`crate::data::epoch_order`]), so
//! resuming in the middle of an epoch needs only the position in that order.

use serde::{Deserialize, Serialize};

/// A small, seedable, serialisable random number generator (SplitMix64).
///
/// The trainer owns one, seeds it from the config's seed, passes it to
/// [`crate::TrainTask::loss`] for training micro-batches (a fresh copy for evaluation, so
/// evaluating never changes the training stream) and saves its state in every checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRng {
    state: u64,
}

impl TrainRng {
    /// A generator whose stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        // Mix the seed once so that seeds 0, 1, 2 … start far apart.
        let mut r = TrainRng {
            state: seed ^ 0x5DEE_CE66_D1CE_4E5B,
        };
        r.next_u64();
        r
    }

    /// Restores a generator from [`TrainRng::state`].
    pub fn from_state(state: u64) -> Self {
        TrainRng { state }
    }

    /// The whole state (what a checkpoint stores).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits. A LoRA task typically draws one per micro-batch and uses
    /// it as the dropout seed of that forward pass.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias worth caring about
    /// (multiply-shift on 64 bits).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_seeds_differ() {
        let mut a = TrainRng::new(7);
        a.next_u64();
        let mut b = TrainRng::from_state(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(TrainRng::new(1).next_u64(), TrainRng::new(2).next_u64());
        let mut r = TrainRng::new(3);
        for _ in 0..1000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(5) < 5);
        }
    }
}
