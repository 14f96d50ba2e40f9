//! vigil's security dataset layer (MISSION M7, M8).
//!
//! Principal types and how they connect:
//! - [`Sample`] (`sample`): one row — an HTTP pair, a code endpoint, a report or a verbatim
//!   chat — with labels from `vigil_taxonomy`, a `group_id` (twins share it) and a split.
//! - [`Store`] (`store`): the SQLite file (WAL, migrations, application id) holding samples
//!   and the `runs` provenance table. Every other module reads or writes through it.
//! - [`prompt`]: the ONE place the task prompts are worded; [`prompt::render`] turns a sample
//!   into (system, user, assistant) with untrusted content fenced; [`prompt::parse`] inverts it.
//! - [`import`] reads JSONL / ShareGPT / OpenAI / Alpaca / the seed's `<<<<>>>>` template file
//!   / report JSON / the seed's SQLite into samples; [`export`] writes ShareGPT / OpenAI /
//!   Alpaca / JSONL via `prompt`.
//! - [`split`] assigns deterministic group-hash splits that never move old rows.
//! - [`dedup`] (MinHash + LSH) and [`check`] find duplicates, leakage and quality problems;
//!   [`report`] writes the Markdown report and plotters charts; [`tokens::TokenCounter`]
//!   lets a real tokenizer replace the chars/4 approximation.
//! - [`synth`]: the deterministic generator of vulnerable / fixed code endpoints in ten
//!   frameworks and HTTP pairs with secure twins.

pub mod check;
pub mod dedup;
pub mod error;
pub mod export;
pub mod import;
pub mod prompt;
pub mod report;
pub mod sample;
pub mod split;
pub mod store;
pub mod synth;
pub mod tokens;

pub use error::{DataError, Result};
pub use sample::{Sample, SampleKind, Split};
pub use store::{Filter, InsertStats, Store};
