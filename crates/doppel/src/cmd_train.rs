//! `doppel train`: learn a new model version from a running server's event log (implicit
//! ALS), with a progress bar; optionally activate it.

use clap::Args;
use doppel_proto::v1 as pb;
use indicatif::{ProgressBar, ProgressStyle};

use crate::als_flags::AlsFlags;
use crate::cmd_query::DEFAULT_ADDR;
use doppel_client::{activate, connect};

/// Flags of `doppel train`. Unset hyper-parameters take the server's defaults (factors 128,
/// regularization 0.0084 with exponent 1, unobserved weight 1, alpha 3, iterations 10,
/// half-life 30 days, seed 42: chosen by `doppel evaluate --tune` on validation).
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// Name of the new version (default: `als-<unix ms>`).
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// ALS settings.
    #[command(flatten)]
    pub als: AlsFlags,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Activate the version once it is ready.
    #[arg(long)]
    pub activate: bool,
    /// What exact audience scans of the new version read: `f32` or `int8` (a quarter of the
    /// bytes, same answers).
    #[arg(long, default_value = "f32", value_parser = ["f32", "int8"])]
    pub scan_vectors: String,
}

impl TrainArgs {
    /// The request these flags describe.
    pub fn request(&self) -> pb::TrainRequest {
        pb::TrainRequest {
            model_version: self.model_version.clone(),
            factors: self.als.factors,
            regularization: self.als.regularization,
            unobserved_weight: self.als.unobserved_weight,
            regularization_exponent: self.als.regularization_exponent,
            alpha: self.als.alpha,
            iterations: self.als.iterations,
            half_life_days: self.als.half_life_days,
            seed: self.seed,
            scan_vectors: self.scan_vectors.clone(),
            recent_popularity_weight: self.als.recent_popularity_weight,
            recent_popularity_days: self.als.recent_popularity_days,
            recency_weight: self.als.recency_weight,
            ..Default::default()
        }
    }
}

/// Streams a training run into a progress bar; returns the final progress message.
pub async fn train_with_bar(
    channel: tonic::transport::Channel,
    request: pb::TrainRequest,
) -> anyhow::Result<pb::TrainProgress> {
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} iterations {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let tick = bar.clone();
    let done = doppel_client::train(channel, request, move |p| {
        tick.set_message(p.stage.clone());
        if p.iterations > 0 {
            tick.set_length(u64::from(p.iterations));
            tick.set_position(u64::from(p.iteration));
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(done)
}

/// Runs `doppel train`.
pub async fn run(args: TrainArgs) -> anyhow::Result<()> {
    let channel = connect(&args.addr).await?;
    let done = train_with_bar(channel.clone(), args.request()).await?;
    println!(
        "trained {} on {} events: {} customers, {} items in {:.1}s",
        done.model_version, done.events, done.customers, done.items, done.elapsed_seconds
    );
    if args.activate {
        activate(channel, &done.model_version).await?;
        println!("activated {}", done.model_version);
    }
    Ok(())
}
