//! [`TrainTask`]: what the trainer optimises. The trainer knows nothing about models; a task
//! owns the model, exposes its trainable [`Var`]s by name and computes a summed loss.

use crate::data::Batch;
use crate::error::Result;
use crate::rng::TrainRng;
use candle_core::{Tensor, Var};

/// What the trainer optimises. The LoRA SFT task implements it for a decoder with adapters;
/// the tests implement it for a toy model.
pub trait TrainTask {
    /// The trainable parameters, with stable names in a stable order. The names key the
    /// checkpoint files (`params.safetensors`, `optimizer.safetensors`); everything not
    /// listed is frozen and never saved by the trainer.
    fn parameters(&self) -> Vec<(String, Var)>;

    /// The loss **summed** over the batch's scored tokens, and how many tokens that is. The
    /// trainer divides by the total over all micro-batches of an optimizer step, so
    /// accumulating micro-batches of different sizes gives exactly the mean over the step.
    ///
    /// `train` is false for evaluation (no dropout). `rng` is the trainer's generator: draw
    /// dropout masks (or a dropout seed) from it and from nothing else, so that runs are
    /// reproducible under a seed and resume exactly.
    fn loss(&self, batch: &Batch, train: bool, rng: &mut TrainRng) -> Result<(Tensor, usize)>;
}
