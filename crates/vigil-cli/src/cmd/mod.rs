//! One module per subcommand; `common` holds the options shared by model commands.
pub mod analyst;
pub mod chat;
pub mod common;
pub mod data;
pub mod eval;
pub mod export;
pub mod generate;
pub mod model;
pub mod scan;
pub mod score;
pub mod train;
pub mod triage;
