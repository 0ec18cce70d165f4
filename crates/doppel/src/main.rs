//! The `doppel` binary: thin. Parses the command line and calls into the library crates.

mod allocator;
mod als_flags;
mod bench_index;
mod bench_load;
mod bench_load_caps;
mod bench_paced;
mod bench_scale;
mod bench_scale_events;
mod bench_scale_swap;
mod client_tls;
mod cmd_demo;
mod cmd_evaluate;
mod cmd_import;
mod cmd_keys;
mod cmd_query;
mod cmd_serve;
mod cmd_train;
mod demo_retail;
mod eval_context;
mod eval_data;
mod eval_lookalike;
mod eval_lookalike_population;
mod eval_metrics;
mod eval_movielens;
mod eval_offers;
mod eval_seed_sweep;
mod eval_tune;
mod heavy_priority;
mod memory_bandwidth;
mod node_process;
mod settings;
mod settings_tls;
mod telemetry;
mod upload_progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a configuration that cannot be used (BSD `EX_USAGE`).
const EXIT_BAD_CONFIG: u8 = 64;

/// doppel: lookalike audiences and next-best offers over HNSW indexes.
#[derive(Parser)]
#[command(name = "doppel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (the server's flags) costs
// nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run a server (`--role all`: one process on the embedded store).
    Serve(settings::ServeArgs),
    /// Start a server with a generated customer base, load it, and show an audience and offers.
    Demo(cmd_demo::DemoArgs),
    /// Query a running server.
    #[command(subcommand)]
    Query(cmd_query::QueryCommand),
    /// Learn a new model version from a running server's event log (implicit ALS).
    Train(cmd_train::TrainArgs),
    /// Import data into a running server.
    #[command(subcommand)]
    Import(cmd_import::ImportCommand),
    /// Evaluate doppel's learning on Online Retail (benches/eval/PROTOCOL.md).
    Evaluate(cmd_evaluate::EvaluateArgs),
    /// API keys.
    #[command(subcommand)]
    Keys(cmd_keys::KeysCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Build, freeze and search an index over .npy data; prints one JSON object.
    Index(bench_index::BenchIndexArgs),
    /// Drive RecommendOffers and FindLookalikes over gRPC; QPS, latency percentiles, statuses.
    Load(bench_load::BenchLoadArgs),
    /// One node at N customers, as a child process: import rate, build time and peak RSS,
    /// RSS at rest, memory per customer, snapshot size, restart time, lookalike latency,
    /// RecommendOffers QPS, and the scan's share of the memory bandwidth.
    Scale(bench_scale::BenchScaleArgs),
}

fn main() -> ExitCode {
    allocator::purge_freed_memory_at_once();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(BenchCommand::Index(args)) => bench_index::run(&args),
        Command::Bench(BenchCommand::Load(args)) => run_async(bench_load::run(args)),
        Command::Bench(BenchCommand::Scale(args)) => run_async(bench_scale::run(args)),
        Command::Serve(args) => match args.validate() {
            Ok(settings) => run_async(async move {
                let _telemetry = telemetry::init("doppel")?;
                let keys = match &settings.api_keys_file {
                    Some(path) => match cmd_keys::load_and_watch(path) {
                        Ok(keys) => Some(keys),
                        Err(e) => {
                            eprintln!("doppel serve: --api-keys-file: {e}");
                            std::process::exit(i32::from(EXIT_BAD_CONFIG));
                        }
                    },
                    None => None,
                };
                cmd_serve::serve(settings, keys).await
            }),
            Err(e) => {
                eprintln!("doppel serve: {e}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        },
        Command::Demo(args) => run_async(async move {
            let _telemetry = telemetry::init("doppel-demo")?;
            cmd_demo::run(args).await
        }),
        Command::Query(command) => run_async(cmd_query::run(command)),
        Command::Import(command) => run_async(cmd_import::run(command)),
        Command::Train(args) => run_async(cmd_train::run(args)),
        Command::Evaluate(args) => cmd_evaluate::run(&args),
        Command::Keys(command) => cmd_keys::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doppel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(job: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(job)
}
