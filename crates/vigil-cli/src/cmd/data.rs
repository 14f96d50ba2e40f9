//! `vigil data …` (owned by the dataset work; see issue 3).
use clap::Args;

#[derive(Args)]
pub struct DataArgs {}

pub fn run(_args: DataArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`vigil data` is not built yet")
}
