//! `doppel bench index`: measures the vector index on .npy data (written by the index work).

use clap::Args;

/// Flags of `doppel bench index`.
#[derive(Args, Debug)]
pub struct BenchIndexArgs {}

/// Runs the benchmark.
pub fn run(_args: &BenchIndexArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench index is being written")
}
