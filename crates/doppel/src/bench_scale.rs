//! `doppel bench scale`: one node at N customers, measured from outside.
//!
//! The node runs as a child process (`doppel serve --role all` on the embedded store with a
//! snapshot directory), so its memory is measured alone, not with the generator's. The bench
//! then, in one run:
//! 1. uploads N customers (ads and on-site consent) and M items over gRPC;
//! 2. imports generated vectors (a Gaussian mixture, generated on a separate thread while
//!    sending) and times the build, with the node's peak RSS during it;
//! 3. activates the version and reads RSS at rest and `DescribeIndex`'s memory breakdown;
//! 4. times lookalikes of 100 seeds at count 100, 1 % and 10 % of the population (CENTROID;
//!    CLASSIFIER too at 1 %), and
//!    RecommendOffers throughput;
//! 5. measures the machine's memory bandwidth with a STREAM-like triad and the exact
//!    scan's bytes per second against it (a `min_score` audience: every customer scored,
//!    almost nothing streamed);
//! 6. stops the node and starts it again, timing the restart from the version snapshot;
//!    with `--events-per-customer`, first reading the whole event log (no checkpoints),
//!    then from the event checkpoints the node wrote when it stopped;
//! 7. with `--hot-swap`, builds and activates a second version on the restarted node while
//!    the first serves (`bench_scale_swap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tonic::transport::Channel;

use crate::memory_bandwidth::triad_bytes_per_second;
use crate::node_process::NodeProcess;

/// Flags of `doppel bench scale`.
#[derive(Args, Debug)]
pub struct BenchScaleArgs {
    /// Customers (each with a vector).
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Items (each with a vector).
    #[arg(long, default_value_t = 10_000)]
    pub items: usize,
    /// Clusters of the generated mixture.
    #[arg(long, default_value_t = 256)]
    pub clusters: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Data directory of the node (default: a temporary one, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Threads the node's index build may use (0: the node's default, one less than the
    /// cores).
    #[arg(long, default_value_t = 0)]
    pub build_threads: usize,
    /// Lookalikes timed per size.
    #[arg(long, default_value_t = 10)]
    pub queries: usize,
    /// Seconds of RecommendOffers load.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent RecommendOffers clients.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// What exact audience scans of the imported version read: `f32` or `int8`.
    #[arg(long, default_value = "f32", value_parser = ["f32", "int8"])]
    pub scan_vectors: String,
    /// Events per customer uploaded before the import (0: none), so the restarts have a
    /// log to read.
    #[arg(long, default_value_t = 0)]
    pub events_per_customer: usize,
    /// With --events-per-customer: after the restarts, start the node with
    /// `--event-retention-days` this many days (the events span 30), time the removal of
    /// the older events and a restart after it (0: skip).
    #[arg(long, default_value_t = 0)]
    pub event_retention_days: u64,
    /// At the end, on the restarted node: import and build a second version (the same
    /// customers, vectors drawn with seed + 1) while the first serves, activate it, and
    /// measure the node's peak RSS during the second's import and build, its RSS with both
    /// loaded, and RecommendOffers during the build and after the swap.
    #[arg(long)]
    pub hot_swap: bool,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Latency of one lookalike size.
#[derive(Debug, Serialize)]
struct LookalikeTiming {
    size: String,
    prospects: u64,
    /// The strategy asked for and used (CENTROID, and CLASSIFIER at 1 %).
    strategy: String,
    p50_ms: f64,
    max_ms: f64,
}

/// The report.
#[derive(Debug, Default, Serialize)]
struct Report {
    scan_vectors: String,
    customers: usize,
    dim: usize,
    items: usize,
    build_threads: usize,
    upload_customers_per_s: f64,
    import_rows_per_s: f64,
    build_s: f64,
    build_peak_rss_bytes: u64,
    rss_before_import_bytes: u64,
    rss_at_rest_bytes: u64,
    index_memory_bytes: u64,
    /// `DescribeIndex`'s memory breakdown, bytes per part over all customers.
    memory: BTreeMap<&'static str, u64>,
    bytes_per_customer: f64,
    snapshot_bytes: u64,
    events: usize,
    upload_events_per_s: f64,
    /// Restart reading the whole event log (no checkpoints), with events only.
    restart_whole_log_s: Option<f64>,
    restart_s: f64,
    restart_from_snapshot: bool,
    rss_after_restart_bytes: u64,
    /// With --event-retention-days: what the node removed, and a restart after it.
    retention: Option<crate::bench_scale_events::RetentionRun>,
    restart_after_retention_s: Option<f64>,
    /// With --hot-swap: the second version's import, build and activation.
    hot_swap: Option<crate::bench_scale_swap::HotSwap>,
    lookalikes: Vec<LookalikeTiming>,
    offers_qps: f64,
    offers_p99_ms: f64,
    triad_bytes_per_s: f64,
    scan_bytes_per_s: f64,
    scan_share_of_bandwidth: f64,
}

/// Runs the benchmark.
pub async fn run(args: BenchScaleArgs) -> anyhow::Result<()> {
    ensure!(args.customers >= 1_000, "--customers must be at least 1000");
    ensure!(args.items >= 10, "--items must be at least 10");
    ensure!(
        (2..=doppel_types::limits::MAX_DIM).contains(&args.dim),
        "--dim must be in 2..=4096"
    );
    ensure!(args.clusters >= 1, "--clusters must be at least 1");
    ensure!(
        args.event_retention_days == 0 || args.events_per_customer > 0,
        "--event-retention-days needs --events-per-customer"
    );
    let temp = tempfile::tempdir().context("temporary data dir")?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut report = Report {
        scan_vectors: args.scan_vectors.clone(),
        customers: args.customers,
        dim: args.dim,
        items: args.items,
        build_threads: args.build_threads,
        events: args.customers * args.events_per_customer,
        ..Report::default()
    };
    // With events, no checkpoint is written until the restart that measures them.
    let no_checkpoints: &[&str] = if args.events_per_customer > 0 {
        &["--event-checkpoint-every", "0"]
    } else {
        &[]
    };
    let node = NodeProcess::start_with(&dir, args.build_threads, no_checkpoints).await?;
    let channel = node.channel.clone();
    let mixture = Arc::new(Mixture::new(&args, args.seed));

    let started = Instant::now();
    upload_customers(&channel, args.customers).await?;
    report.upload_customers_per_s = args.customers as f64 / started.elapsed().as_secs_f64();
    upload_items(&channel, args.items).await?;
    if args.events_per_customer > 0 {
        report.upload_events_per_s = crate::bench_scale_events::upload_events(
            &channel,
            args.customers,
            args.items,
            args.events_per_customer,
            args.seed,
        )
        .await?;
    }

    node.reset_peak_rss();
    report.rss_before_import_bytes = node.status_bytes("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let summary = import(&channel, &mixture, &args, VERSION, None).await?;
    let elapsed = started.elapsed().as_secs_f64();
    report.build_s = summary.build_seconds;
    report.import_rows_per_s =
        (args.customers + args.items) as f64 / (elapsed - summary.build_seconds).max(1e-9);
    report.build_peak_rss_bytes = node.status_bytes("VmHWM:").unwrap_or(0);
    doppel_client::activate(channel.clone(), VERSION).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.rss_at_rest_bytes = node.status_bytes("VmRSS:").unwrap_or(0);
    let described = describe(&channel).await?;
    report.index_memory_bytes = described.memory_bytes;
    if let Some(m) = &described.memory {
        report.memory = memory_rows(m).into_iter().collect();
        report.bytes_per_customer = m.bytes_per_customer;
    }
    report.snapshot_bytes = wait_for_snapshot(&dir.join("snapshots")).await;

    use pb::Strategy::{Centroid, Classifier};
    use pb::lookalike_request::Size;
    let sizes = [
        ("count 100", Size::Count(100), Centroid),
        ("1 %", Size::TopPercent(1.0), Centroid),
        ("1 %", Size::TopPercent(1.0), Classifier),
        ("10 %", Size::TopPercent(10.0), Centroid),
        // Scores every eligible customer and streams almost nothing: the scan alone.
        ("min_score 0.99", Size::MinScore(0.99), Centroid),
    ];
    for (name, size, strategy) in sizes {
        report
            .lookalikes
            .push(time_lookalikes(&channel, &args, &mixture, (name, size), strategy).await?);
    }
    let (qps, p99) = offers_load(&channel, OffersLoad::of(&args)).await?;
    report.offers_qps = qps;
    report.offers_p99_ms = p99;

    report.triad_bytes_per_s = tokio::task::spawn_blocking(triad_bytes_per_second).await?;
    // The min_score audience reads every customer's padded row once (one dot each, CENTROID)
    // and streams almost nothing, so its latency is the scan's (plus the call's overhead).
    let padded = args.dim.div_ceil(16) * 16;
    if let Some(scan) = report.lookalikes.last() {
        let bytes = (args.customers * padded * 4) as f64;
        report.scan_bytes_per_s = bytes / (scan.p50_ms / 1_000.0).max(1e-9);
        report.scan_share_of_bandwidth = report.scan_bytes_per_s / report.triad_bytes_per_s;
    }

    node.stop().await?;
    if args.events_per_customer > 0 {
        // The whole log, as before event checkpoints; then a node that writes them as it
        // stops, so the timed restart below reads none of the log.
        let started = Instant::now();
        let node = NodeProcess::start_with(&dir, args.build_threads, no_checkpoints).await?;
        describe(&node.channel).await?;
        report.restart_whole_log_s = Some(started.elapsed().as_secs_f64());
        node.stop().await?;
        NodeProcess::start(&dir, args.build_threads)
            .await?
            .stop()
            .await?;
    }
    let started = Instant::now();
    let node = NodeProcess::start(&dir, args.build_threads).await?;
    let after = describe(&node.channel).await?;
    report.restart_s = started.elapsed().as_secs_f64();
    report.restart_from_snapshot = after.loaded_from_snapshot;
    report.rss_after_restart_bytes = node.status_bytes("VmRSS:").unwrap_or(0);
    let node = if args.event_retention_days > 0 {
        node.stop().await?;
        report.retention = Some(
            crate::bench_scale_events::run_retention(
                &dir,
                args.build_threads,
                args.event_retention_days,
            )
            .await?,
        );
        let started = Instant::now();
        let node = NodeProcess::start(&dir, args.build_threads).await?;
        describe(&node.channel).await?;
        report.restart_after_retention_s = Some(started.elapsed().as_secs_f64());
        node
    } else {
        node
    };
    if args.hot_swap {
        report.hot_swap = Some(crate::bench_scale_swap::run(&node, &args).await?);
    }
    drop(node);

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

pub(crate) const VERSION: &str = "scale-v1";
/// The mixture's entity codes.
const CUSTOMER: u64 = pb::Entity::Customer as u64;
/// Rows per import chunk and records per upload batch.
pub(crate) const CHUNK: usize = 8_192;

pub(crate) fn customer_id(i: usize) -> String {
    format!("c{i:09}")
}

pub(crate) fn item_id(i: usize) -> String {
    format!("i{i:07}")
}

pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A Gaussian mixture: row i of an entity is its cluster's centre plus N(0, 0.35²) noise,
/// each drawn from a hash of (seed, entity, i), so rows are generated in any order.
pub(crate) struct Mixture {
    dim: usize,
    clusters: usize,
    seed: u64,
    centres: Vec<f32>,
}

impl Mixture {
    /// The mixture of `args` drawn with `seed` (the centres too: a retrain moves them).
    pub(crate) fn new(args: &BenchScaleArgs, seed: u64) -> Self {
        let mut state = seed;
        let centres = (0..args.clusters * args.dim)
            .map(|_| gaussian(&mut state))
            .collect();
        Self {
            dim: args.dim,
            clusters: args.clusters,
            seed,
            centres,
        }
    }

    fn cluster(&self, entity: u64, i: usize) -> usize {
        let state = splitmix64(self.seed ^ (entity << 56) ^ i as u64);
        (splitmix64(state) % self.clusters as u64) as usize
    }

    fn row(&self, entity: u64, i: usize, out: &mut Vec<f32>) {
        let mut state = splitmix64(self.seed ^ (entity << 56) ^ i as u64);
        let c = self.cluster(entity, i);
        let centre = &self.centres[c * self.dim..(c + 1) * self.dim];
        out.extend(centre.iter().map(|&x| x + 0.35 * gaussian(&mut state)));
    }
}

/// A standard normal draw (Box–Muller on two splitmix64 uniforms).
fn gaussian(state: &mut u64) -> f32 {
    let mut uniform = || {
        *state = splitmix64(*state);
        ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (u, v) = (uniform(), uniform());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

pub(crate) fn bar(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} {{per_sec}} eta {{eta}}");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn upload_customers(channel: &Channel, n: usize) -> anyhow::Result<()> {
    let progress = bar(n, "customers");
    for start in (0..n).step_by(CHUNK * 16) {
        let records: Vec<pb::Customer> = (start..(start + CHUNK * 16).min(n))
            .map(|i| pb::Customer {
                id: customer_id(i),
                consent: Some(pb::Consent {
                    ads_personalization: true,
                    onsite_personalization: true,
                }),
                ..Default::default()
            })
            .collect();
        let sent = records.len() as u64;
        doppel_client::upload_customers(channel.clone(), records, |_| {}).await?;
        progress.inc(sent);
    }
    progress.finish_and_clear();
    Ok(())
}

async fn upload_items(channel: &Channel, n: usize) -> anyhow::Result<()> {
    let records: Vec<pb::Item> = (0..n)
        .map(|i| pb::Item {
            id: item_id(i),
            category: format!("cat{}", i % 50),
            price: 1.0 + (i % 100) as f64,
            in_stock: true,
            ..Default::default()
        })
        .collect();
    doppel_client::upload_items(channel.clone(), records, |_| {}).await?;
    Ok(())
}

/// Streams every customer and item vector as `version`, one import; vectors are generated
/// on a blocking thread while earlier chunks are sent, and `sent` fires once the last one
/// is handed to the stream (up to four chunks may still be in flight; the node then builds
/// until the call returns).
pub(crate) async fn import(
    channel: &Channel,
    mixture: &Arc<Mixture>,
    args: &BenchScaleArgs,
    version: &str,
    sent: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<pb::ImportSummary> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::EmbeddingChunk>(4);
    let total = args.customers + args.items;
    let progress = bar(total, "import");
    let (mixture, customers, items, dim) = (
        Arc::clone(mixture),
        args.customers,
        args.items,
        args.dim as u32,
    );
    let scan_vectors = args.scan_vectors.clone();
    let version = version.to_owned();
    let ticks = progress.clone();
    let producer = tokio::task::spawn_blocking(move || {
        for (entity, n, id) in [
            (
                pb::Entity::Customer,
                customers,
                customer_id as fn(usize) -> String,
            ),
            (pb::Entity::Item, items, item_id as fn(usize) -> String),
        ] {
            for start in (0..n).step_by(CHUNK) {
                let end = (start + CHUNK).min(n);
                let mut values = Vec::with_capacity((end - start) * dim as usize);
                for i in start..end {
                    mixture.row(entity as u64, i, &mut values);
                }
                let chunk = pb::EmbeddingChunk {
                    model_version: version.clone(),
                    entity: entity as i32,
                    dim,
                    ids: (start..end).map(id).collect(),
                    values,
                    scan_vectors: scan_vectors.clone(),
                };
                if tx.blocking_send(chunk).is_err() {
                    return;
                }
                ticks.inc((end - start) as u64);
            }
        }
        if let Some(sent) = sent {
            let _ = sent.send(());
        }
    });
    let summary = ModelAdminClient::new(channel.clone())
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .import_embeddings(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .context("ImportEmbeddings")?
        .into_inner();
    producer.await?;
    progress.finish_and_clear();
    Ok(summary)
}

pub(crate) async fn describe(channel: &Channel) -> anyhow::Result<pb::DescribeIndexResponse> {
    Ok(ModelAdminClient::new(channel.clone())
        .describe_index(pb::DescribeIndexRequest::default())
        .await
        .context("DescribeIndex")?
        .into_inner())
}

/// Bytes of the snapshot files once their total stops changing (at most 60 s).
async fn wait_for_snapshot(dir: &Path) -> u64 {
    let mut last = 0;
    for _ in 0..120 {
        let now = dir_bytes(dir);
        if now > 0 && now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Times `--queries` lookalikes of `size` with `strategy`, each from 100 seeds of one
/// cluster (a segment-like seed set), a different cluster per query.
async fn time_lookalikes(
    channel: &Channel,
    args: &BenchScaleArgs,
    mixture: &Mixture,
    (name, size): (&str, pb::lookalike_request::Size),
    strategy: pb::Strategy,
) -> anyhow::Result<LookalikeTiming> {
    let mut client = AudiencesClient::new(channel.clone());
    let queries = args.queries.max(1);
    let mut millis = Vec::with_capacity(queries);
    let mut prospects = 0;
    let mut used = String::new();
    for q in 0..queries as u64 {
        let cluster = (q as usize * 7 + 3) % args.clusters;
        let chosen: Vec<String> = (0..args.customers)
            .map(|i| (i * 7_919 + q as usize) % args.customers)
            .filter(|&i| mixture.cluster(CUSTOMER, i) == cluster)
            .take(100)
            .map(customer_id)
            .collect();
        let started = Instant::now();
        let mut stream = client
            .find_lookalikes(pb::LookalikeRequest {
                seed_customer_ids: chosen,
                size: Some(size),
                strategy: strategy as i32,
                ..Default::default()
            })
            .await
            .with_context(|| format!("FindLookalikes ({name})"))?
            .into_inner();
        prospects = 0;
        while let Some(batch) = stream.message().await? {
            prospects += batch.prospects.len() as u64;
            if batch.batch_index == 0 {
                used = batch.strategy_used().as_str_name().to_owned();
            }
        }
        millis.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    millis.sort_by(f64::total_cmp);
    Ok(LookalikeTiming {
        size: name.to_owned(),
        prospects,
        strategy: used,
        p50_ms: millis[millis.len() / 2],
        max_ms: millis[millis.len() - 1],
    })
}

/// A RecommendOffers load: `concurrency` clients calling for random customers (of the
/// first `customers`, drawn from `seed`) for `seconds`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OffersLoad {
    seconds: u64,
    concurrency: usize,
    customers: usize,
    seed: u64,
}

impl OffersLoad {
    /// The load the bench's flags ask for.
    pub(crate) fn of(args: &BenchScaleArgs) -> Self {
        Self {
            seconds: args.seconds,
            concurrency: args.concurrency,
            customers: args.customers,
            seed: args.seed,
        }
    }
}

/// Runs `load`; QPS and p99 (ms). Any failed call fails the load.
pub(crate) async fn offers_load(channel: &Channel, load: OffersLoad) -> anyhow::Result<(f64, f64)> {
    let OffersLoad {
        seconds,
        concurrency,
        customers,
        seed,
    } = load;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut client = RecommendationsClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let mut state = seed ^ (w as u64) << 32;
            let mut micros = Vec::new();
            while Instant::now() < deadline {
                state = splitmix64(state);
                let request = pb::RecommendRequest {
                    customer_id: customer_id(state as usize % customers),
                    k: 10,
                    ..Default::default()
                };
                let started = Instant::now();
                client.recommend_offers(request).await?;
                micros.push(started.elapsed().as_micros() as u64);
            }
            Ok::<_, tonic::Status>(micros)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?.context("RecommendOffers")?);
    }
    if all.is_empty() {
        bail!("no RecommendOffers call completed");
    }
    all.sort_unstable();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)] as f64 / 1_000.0;
    Ok((all.len() as f64 / seconds.max(1) as f64, p99))
}

/// The breakdown's parts by name (the proto's field names).
fn memory_rows(m: &pb::MemoryBreakdown) -> Vec<(&'static str, u64)> {
    vec![
        ("customer_vectors", m.customer_vectors),
        ("customer_graph", m.customer_graph),
        ("customer_ids", m.customer_ids),
        ("customer_bitsets", m.customer_bitsets),
        ("customer_delta", m.customer_delta),
        ("customer_scan_codes", m.customer_scan_codes),
        ("members", m.members),
        ("customer_profiles", m.customer_profiles),
        ("id_tables", m.id_tables),
        ("item_index", m.item_index),
        ("item_profiles", m.item_profiles),
    ]
}

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

fn print_report(r: &Report) {
    println!(
        "## doppel bench scale: {} customers × {} dims, {} items, {} scans (build threads {})\n",
        r.customers,
        r.dim,
        r.items,
        r.scan_vectors,
        if r.build_threads == 0 {
            "node default".to_owned()
        } else {
            r.build_threads.to_string()
        }
    );
    println!("| measure | value |\n|---|---|");
    let rows = [
        (
            "customer upload",
            format!("{:.0} /s", r.upload_customers_per_s),
        ),
        (
            "vector import",
            format!("{:.0} rows/s", r.import_rows_per_s),
        ),
        ("index build", format!("{:.1} s", r.build_s)),
        (
            "RSS before import → peak during import + build",
            format!(
                "{} → {}",
                mb(r.rss_before_import_bytes),
                mb(r.build_peak_rss_bytes)
            ),
        ),
        ("RSS at rest (one version active)", mb(r.rss_at_rest_bytes)),
        ("index memory (DescribeIndex)", mb(r.index_memory_bytes)),
        ("snapshot on disk", mb(r.snapshot_bytes)),
        (
            "restart (until DescribeIndex answers)",
            format!(
                "{:.1} s ({})",
                r.restart_s,
                if r.restart_from_snapshot {
                    "from the snapshot"
                } else {
                    "rebuilt"
                }
            ),
        ),
        ("RSS after restart", mb(r.rss_after_restart_bytes)),
        (
            "events: upload; restart reading the whole log",
            match r.restart_whole_log_s {
                Some(s) => format!(
                    "{} events at {:.0} /s; {s:.1} s (the restart above: from event checkpoints)",
                    r.events, r.upload_events_per_s
                ),
                None => "none (--events-per-customer 0)".to_owned(),
            },
        ),
        (
            "event retention: removed; restart after",
            match (&r.retention, r.restart_after_retention_s) {
                (Some(run), Some(s)) => format!(
                    "{} of {} events older than {} days in {:.1} s ({:.1} s after the start); \
                     restart {s:.1} s; one-event RecordEvents during the removal p50 {:.1} / \
                     p99 {:.1} / max {:.1} ms ({} calls, {} failed), after it p50 {:.1} / p99 \
                     {:.1} / max {:.1} ms",
                    run.events_removed,
                    r.events,
                    run.days,
                    run.compaction_ms as f64 / 1_000.0,
                    run.until_removed_s,
                    run.ingest_during.p50_ms,
                    run.ingest_during.p99_ms,
                    run.ingest_during.max_ms,
                    run.ingest_during.calls,
                    run.ingest_during.failed,
                    run.ingest_after.p50_ms,
                    run.ingest_after.p99_ms,
                    run.ingest_after.max_ms,
                ),
                _ => "not run (--event-retention-days 0)".to_owned(),
            },
        ),
        (
            "RecommendOffers",
            format!("{:.0} QPS, p99 {:.1} ms", r.offers_qps, r.offers_p99_ms),
        ),
        (
            "memory bandwidth (triad)",
            format!("{:.1} GB/s", r.triad_bytes_per_s / 1e9),
        ),
        (
            "exact scan (min_score audience)",
            format!(
                "{:.1} GB/s = {:.2} of the triad",
                r.scan_bytes_per_s / 1e9,
                r.scan_share_of_bandwidth
            ),
        ),
    ];
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
    for l in &r.lookalikes {
        println!(
            "| lookalike {} ({} prospects, {}) | p50 {:.0} ms, max {:.0} ms |",
            l.size, l.prospects, l.strategy, l.p50_ms, l.max_ms
        );
    }
    if let Some(swap) = &r.hot_swap {
        crate::bench_scale_swap::print_rows(swap);
    }
    if !r.memory.is_empty() {
        let per = |b: u64| b as f64 / r.customers as f64;
        println!("\n| bytes per customer | |\n|---|---|");
        for (k, v) in &r.memory {
            if *k != "item_index" && *k != "item_profiles" {
                println!("| {k} | {:.1} |", per(*v));
            }
        }
        println!("| **total** | **{:.1}** |", r.bytes_per_customer);
        let items = r.memory.get("item_index").copied().unwrap_or(0)
            + r.memory.get("item_profiles").copied().unwrap_or(0);
        println!(
            "\nitems (index and records, not counted per customer): {}",
            mb(items)
        );
    }
}
