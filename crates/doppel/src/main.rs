//! The `doppel` binary: thin. Parses the command line and calls into the library crates.

mod bench_index;

use clap::{Parser, Subcommand};

/// doppel: lookalike audiences and next-best offers over HNSW indexes.
#[derive(Parser)]
#[command(name = "doppel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Build, freeze and search an index over .npy data; prints one JSON object.
    Index(bench_index::BenchIndexArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::Index(args)) => bench_index::run(&args),
    }
}
