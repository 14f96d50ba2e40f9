//! vigil's analyst: the dual head on a bundle (MISSION M4, M6, M11, M12).
//!
//! Principal types and how they connect:
//! - [`Bundle`] (`bundle`): a directory with a manifest naming the base model (with its
//!   hash), the adapters and heads per task, the prompt hashes and the eval summary it
//!   shipped with. Scans and triage name one; `default` unless told otherwise.
//! - [`Subject`] (`subject`): what is analysed — an endpoint's code or an HTTP pair — and
//!   how it is asked ([`PromptForm`]: engineered system prompt or plain). The words come
//!   from `vigil_data::prompt`, the one place prompts are worded, so inference asks in the
//!   words training used. [`Analysis`] is the answer.
//! - [`Analyst`] (`analyst`): a `vigil_model::Model` with the bundle's adapters loaded and
//!   its `vigil_head` heads. [`Analyst::analyze`] runs ONE prefill whose hidden states feed
//!   the verdict head (and the type head); the answer's verdict line is then decoded under
//!   a [`JsonSchemaConstraint`] fixed to the head's decision, and the reason and fixed code
//!   follow as free text within the token budget. Without a head it votes over sampled
//!   answers (self-consistency). [`Analyst::verdict_token_probabilities`] scores many
//!   prompts by the verdict token (the seed's SC variants); [`Analyst::features`] feeds
//!   head training.
//! - [`eval`]: the seed's six variants (SC … FT-PE-CH) scored on a split, for
//!   `vigil eval`; the metrics themselves live in `vigil-eval`.
//! - [`AnalysisCache`]: analyses on disk keyed by analyst identity, options and subject,
//!   so re-scanning unchanged code runs no model.
//! - [`TriageCall`]: another scanner's finding judged true or false positive, precision
//!   first (dismissed only below the head's calibrated "clean" threshold).
//! - [`heads`]: trains a bundle's heads from the dataset store (features on the train
//!   split, early stopping and threshold calibration on the valid split).

mod analyst;
pub mod bundle;
mod cache;
mod constraint;
mod error;
pub mod eval;
pub mod heads;
mod subject;
mod triage;

pub use analyst::{Analyst, AnalyzeOptions, Explain};
pub use bundle::{Bundle, BundleManifest};
pub use cache::AnalysisCache;
pub use constraint::{JsonSchemaConstraint, TokenVocab};
pub use error::{AnalystError, Result};
pub use subject::{Analysis, PromptForm, Subject};
pub use triage::TriageCall;
