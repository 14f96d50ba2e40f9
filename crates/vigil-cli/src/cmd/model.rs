//! `vigil model pull|list|info`.
use clap::Args;

#[derive(Args)]
pub struct ModelArgs {}

pub fn run(_args: ModelArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`vigil model` is not built yet")
}
