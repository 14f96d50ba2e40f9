//! The classifier half of vigil's dual head (MISSION M4).
//!
//! Principal types and how they connect:
//! - [`FeatureSpec`] says which hidden state a head reads: the layers (one, or several
//!   averaged), the [`Pooling`] (mean over real tokens or the last token) and the adapter.
//! - [`HiddenStatePool`] runs prompts through a [`vigil_model::Decoder`] in length-sorted,
//!   left-padded batches and pools their hidden states into one vector each;
//!   [`FeatureCache`] keeps those vectors on disk keyed by model, adapter, spec and prompt,
//!   so a head retrains in seconds once the features exist.
//! - [`MlpHead`] is the classifier: standardised input → hidden layers → class logits, of a
//!   configurable [`HeadShape`]. [`train_head`] fits it with AdamW, class weights and early
//!   stopping on a validation set; [`HeadFile`] saves it as safetensors + JSON (with the
//!   feature spec, class names and the calibrated thresholds) and loads it by directory.
//! - [`cross_validate`] gives k-fold held-out predictions of a binary head (each fold
//!   tested once, the next one validating), for `vigil eval`.
//! - The dual-head inference itself (one prefill feeding the head and the generation) lives
//!   in `vigil-analyst`; it calls [`HiddenStatePool::pool`] on the prefill's hidden states.

mod crossval;
mod error;
mod features;
mod mlp;

pub use crossval::{cross_validate, FoldPrediction};
pub use error::{HeadError, Result};
pub use features::{FeatureCache, FeatureSpec, HiddenStatePool, Pooling};
pub use mlp::{
    train_head, Activation, HeadFile, HeadMeta, HeadShape, HeadTrainConfig, HeadTrainReport,
    MlpHead, Thresholds,
};
