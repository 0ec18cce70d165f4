//! `doppel bench load`: a load generator over real gRPC. Drives RecommendOffers and
//! FindLookalikes from concurrent clients for a fixed time and prints, per RPC, the request
//! count, QPS, p50/p99/p999 latency and every status code seen (not only transport
//! success). Without `--addr` it starts a `--role all` server in-process on the embedded
//! store, loads a generated customer base and learns vectors first, so a single command
//! gives a baseline; with `--addr` it drives any doppel endpoint (a node or a router) that
//! serves the generated base of the same `--customers` and `--seed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::EmbeddedStore;
use doppel_synth::SynthConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// Flags of `doppel bench load`.
#[derive(Args, Debug)]
pub struct BenchLoadArgs {
    /// Target (`http://host:port`); default: an in-process `--role all` server.
    #[arg(long)]
    pub addr: Option<String>,
    /// Customers of the generated base.
    #[arg(long, default_value_t = 20_000)]
    pub customers: usize,
    /// Generator seed (must match the target's data when `--addr` is given).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Share of requests that are FindLookalikes (the rest: RecommendOffers).
    #[arg(long, default_value_t = 0.05)]
    pub lookalike_share: f64,
    /// Seeds per lookalike request.
    #[arg(long, default_value_t = 100)]
    pub seeds: usize,
    /// Prospects per lookalike request.
    #[arg(long, default_value_t = 1_000)]
    pub audience: u64,
    /// Per-request deadline, milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub deadline_ms: u64,
    /// With `--addr`: first load the generated base into the target through its public API
    /// (upload, train, activate) — e.g. a freshly started cluster's router.
    #[arg(long, requires = "addr")]
    pub load_target: bool,
    /// Hot-swap test: train a second version before the load and activate it this many
    /// seconds in (through the target's public API, so on a router the whole cluster swaps);
    /// latency is then reported per phase.
    #[arg(long)]
    pub swap_at_seconds: Option<u64>,
    /// Frequency-cap cost: after the plain load, in the same run, offers with a context,
    /// under a contact policy (ITEM 3/day, CATEGORY 30/day, ALL 1,000/day) and both
    /// (phases of `--seconds`, two interleaved rounds); then with `record_impressions`,
    /// without the policy and under it, the latter interleaved with reads of the exposures
    /// it records; then that last pair again at a fixed rate, a share
    /// (`--caps-paced-share`) of what recording sustains (open loop). Reports each against
    /// the plain phase, and what recording adds to p99.
    #[arg(long, conflicts_with = "swap_at_seconds")]
    pub caps: bool,
    /// With `--caps`: rounds of the recording pair (closed loop, then paced), each a
    /// recording and a reading phase back to back, the order alternating; the report adds
    /// the median and range of the per-round p99 differences (1–1,000).
    #[arg(
        long,
        default_value_t = 2,
        requires = "caps",
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub caps_rounds: u16,
    /// With `--caps`: the fixed rate of the paced recording pair, as a share of what
    /// recording sustains closed loop (0.01–1). A paced request costs the process about
    /// three times the CPU of a closed-loop one (each is woken on its own), so 0.25 keeps the
    /// cores about half busy; the report prints the share of the cores the rate used.
    #[arg(long, default_value_t = 0.25, requires = "caps", value_parser = paced_share)]
    pub caps_paced_share: f64,
    /// Cancellation cost: after the load, send this many whole-population lookalikes with a
    /// 1 ms deadline, one after another, wait until the CPU is idle, and compare the process CPU they
    /// cost with that of complete calls (in-process server only).
    #[arg(long, conflicts_with = "addr")]
    pub abandon_calls: Option<usize>,
    /// Overload: after the load, run RecommendOffers alone, then beside this many clients
    /// that loop whole-population lookalikes (`top_percent` 100) — e.g. twice the heavy
    /// limit — two interleaved rounds of `--seconds` each; reports the offers' p99 against
    /// the unloaded one and every status of both RPCs.
    #[arg(long)]
    pub overload_heavy: Option<usize>,
    /// How the in-process server schedules heavy work (as `doppel serve
    /// --heavy-scheduling`).
    #[arg(long, value_enum, default_value_t, conflicts_with = "addr")]
    pub heavy_scheduling: crate::heavy_priority::HeavyScheduling,
}

/// What each RecommendOffers of a phase carries.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OfferMode {
    /// A request context (channel, device, country).
    pub(crate) context: bool,
    /// `record_impressions`.
    pub(crate) record: bool,
}

/// Latencies (µs), start times and status counts of one RPC.
#[derive(Clone, Default)]
pub(crate) struct Tally {
    micros: Vec<u64>,
    starts: Vec<Instant>,
    codes: Vec<tonic::Code>,
    /// CPU seconds the process (clients and in-process server) used over the phases that
    /// measured it, and their requests.
    cpu: Option<(f64, usize)>,
}

impl Tally {
    pub(crate) fn record(&mut self, started: Instant, status: Result<(), tonic::Status>) {
        self.record_took(started, started.elapsed(), status);
    }

    /// A call that started at `started` and took `took`.
    pub(crate) fn record_took(
        &mut self,
        started: Instant,
        took: Duration,
        status: Result<(), tonic::Status>,
    ) {
        self.micros.push(took.as_micros() as u64);
        self.starts.push(started);
        self.codes.push(match status {
            Ok(()) => tonic::Code::Ok,
            Err(s) => s.code(),
        });
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.micros.extend(other.micros);
        self.starts.extend(other.starts);
        self.codes.extend(other.codes);
        self.cpu = match (self.cpu, other.cpu) {
            (Some((a, m)), Some((b, n))) => Some((a + b, m + n)),
            (a, b) => a.or(b),
        };
    }

    /// Process CPU microseconds per request, over the phases that measured it.
    pub(crate) fn cpu_micros_per_request(&self) -> Option<f64> {
        self.cpu
            .map(|(seconds, requests)| seconds * 1e6 / requests.max(1) as f64)
    }
}

/// Runs `phase`, noting the process CPU it used in its tally (in-process server only: the
/// figure then covers the clients and the server).
pub(crate) async fn with_cpu<F>(in_process: bool, phase: F) -> anyhow::Result<Tally>
where
    F: std::future::Future<Output = anyhow::Result<Tally>>,
{
    let before = if in_process {
        Some(process_cpu_seconds()?)
    } else {
        None
    };
    let mut tally = phase.await?;
    if let Some(before) = before {
        tally.cpu = Some((process_cpu_seconds()? - before, tally.micros.len()));
    }
    Ok(tally)
}

/// The `p` quantile of `sorted` microseconds, in milliseconds (0 when empty).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1_000.0
}

/// Runs the load.
pub async fn run(args: BenchLoadArgs) -> anyhow::Result<()> {
    let config = SynthConfig {
        customers: args.customers,
        seed: args.seed,
        // With --caps, a planted context effect, so the trained version uses context and
        // the "caps + context" phase pays for the re-ranking.
        context_effect: if args.caps { 0.6 } else { 0.0 },
        ..SynthConfig::default()
    };
    let data = doppel_synth::generate(&config);
    let temp = tempfile::tempdir().context("temporary data dir")?;
    let (addr, stop) = match &args.addr {
        Some(a) => {
            if args.load_target {
                crate::cmd_demo::load_generated(a, &config, &data).await?;
            }
            (a.clone(), None)
        }
        None => {
            let (addr, stop) = start_local(temp.path(), args.heavy_scheduling).await?;
            crate::cmd_demo::load_generated(&addr, &config, &data).await?;
            (addr, Some(stop))
        }
    };
    let channel = doppel_client::connect(&addr).await?;
    if args.swap_at_seconds.is_some() {
        let request = pb::TrainRequest {
            model_version: "demo-v2".to_owned(),
            factors: Some(32),
            seed: Some(43),
            ..Default::default()
        };
        doppel_client::train(channel.clone(), request, |_| {}).await?;
    }
    let customers: Arc<Vec<String>> = Arc::new(
        data.customers
            .iter()
            .filter(|c| c.consent.onsite_personalization)
            .map(|c| c.id.clone())
            .collect(),
    );
    let seeds: Arc<Vec<String>> = Arc::new(
        data.customers
            .iter()
            .filter(|c| c.consent.ads_personalization)
            .map(|c| c.id.clone())
            .collect(),
    );
    eprintln!(
        "load: {} clients for {}s against {addr} ({:.0} % lookalikes of {} seeds → {} prospects)",
        args.concurrency,
        args.seconds,
        args.lookalike_share * 100.0,
        args.seeds,
        args.audience
    );
    let args = Arc::new(args);
    let workers = spawn_load(&args, &channel, &customers, &seeds, OfferMode::default());
    let swap = match args.swap_at_seconds {
        Some(at) => {
            tokio::time::sleep(Duration::from_secs(at)).await;
            let started = Instant::now();
            doppel_client::activate(channel.clone(), "demo-v2").await?;
            Some((started, Instant::now()))
        }
        None => None,
    };
    let (mut recommend, mut lookalike) = (Tally::default(), Tally::default());
    for w in workers {
        let (r, l) = w.await.context("load worker")?;
        recommend.merge(r);
        lookalike.merge(l);
    }
    let seconds = Duration::from_secs(Arc::clone(&args).seconds).as_secs_f64();
    print_table(
        &[
            ("RecommendOffers", &recommend),
            ("FindLookalikes", &lookalike),
        ],
        seconds,
        false,
        |_| true,
    );
    if let Some((from, to)) = swap {
        println!(
            "\nhot swap to demo-v2: ActivateVersion took {:.1} ms; RecommendOffers by phase:",
            (to - from).as_secs_f64() * 1_000.0
        );
        // The swap window: from the activation call to one second after it returned.
        let window_end = to + Duration::from_secs(1);
        let phases: [(&str, PhaseFilter); 3] = [
            ("steady (before)", Box::new(move |t| t < from)),
            (
                "swap window",
                Box::new(move |t| t >= from && t < window_end),
            ),
            ("after", Box::new(move |t| t >= window_end)),
        ];
        for (name, phase) in phases {
            print_table(&[(name, &recommend)], seconds, true, phase);
        }
        print_memory(&channel).await;
    }
    if args.caps {
        crate::bench_load_caps::cap_phases(&args, &channel, &customers, &seeds, &recommend).await?;
    }
    if let Some(calls) = args.abandon_calls {
        abandoned_cost(&channel, &seeds, calls).await?;
    }
    if let Some(heavy) = args.overload_heavy {
        overload_phases(&args, &channel, &customers, &seeds, heavy).await?;
    }
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
    Ok(())
}

type Workers = Vec<tokio::task::JoinHandle<(Tally, Tally)>>;

/// Starts `--concurrency` clients for `--seconds` in `mode`, `--lookalike-share` of their
/// requests lookalikes.
pub(crate) fn spawn_load(
    args: &Arc<BenchLoadArgs>,
    channel: &Channel,
    customers: &Arc<Vec<String>>,
    seeds: &Arc<Vec<String>>,
    mode: OfferMode,
) -> Workers {
    spawn_mix(args, channel, customers, seeds, mode, args.lookalike_share)
}

/// Starts `--concurrency` clients for `--seconds` in `mode`, `share` of their requests
/// lookalikes.
fn spawn_mix(
    args: &Arc<BenchLoadArgs>,
    channel: &Channel,
    customers: &Arc<Vec<String>>,
    seeds: &Arc<Vec<String>>,
    mode: OfferMode,
    share: f64,
) -> Workers {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    (0..args.concurrency)
        .map(|worker| {
            let (channel, customers, seeds, args) = (
                channel.clone(),
                Arc::clone(customers),
                Arc::clone(seeds),
                Arc::clone(args),
            );
            tokio::spawn(async move {
                let load = Load {
                    args: &args,
                    deadline,
                    mode,
                    share,
                };
                drive(worker, channel, &customers, &seeds, load).await
            })
        })
        .collect()
}

/// A lookalike of `--seeds` seeds (an evenly spread run from a random start) with the
/// per-request deadline.
fn lookalike_request(
    seeds: &[String],
    state: &mut u64,
    args: &BenchLoadArgs,
    size: pb::lookalike_request::Size,
) -> tonic::Request<pb::LookalikeRequest> {
    let start = next(state) as usize % seeds.len();
    let chosen: Vec<String> = (0..args.seeds)
        .map(|i| seeds[(start + i * 7) % seeds.len()].clone())
        .collect();
    let mut request = tonic::Request::new(pb::LookalikeRequest {
        seed_customer_ids: chosen,
        size: Some(size),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(args.deadline_ms));
    request
}

/// Sends a lookalike and reads its whole stream.
async fn find_lookalikes(
    audiences: &mut AudiencesClient<Channel>,
    request: tonic::Request<pb::LookalikeRequest>,
) -> Result<(), tonic::Status> {
    let mut stream = audiences.find_lookalikes(request).await?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

/// A client that loops whole-population lookalikes until `deadline`.
async fn drive_heavy(
    worker: usize,
    channel: Channel,
    seeds: Arc<Vec<String>>,
    args: Arc<BenchLoadArgs>,
    deadline: Instant,
) -> Tally {
    let mut audiences = AudiencesClient::new(channel);
    let mut tally = Tally::default();
    let mut state = worker as u64 + 1_000;
    while Instant::now() < deadline && !seeds.is_empty() {
        let size = pb::lookalike_request::Size::TopPercent(100.0);
        let request = lookalike_request(&seeds, &mut state, &args, size);
        let started = Instant::now();
        let result = find_lookalikes(&mut audiences, request).await;
        let shed = match &result {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => Some(retry_after(s)),
            _ => None,
        };
        tally.record(started, result);
        if let Some(wait) = shed {
            // A shed call comes back at once; a client backs off as long as the server
            // asks (`retry-after-ms`) before retrying.
            tokio::time::sleep(wait).await;
        }
    }
    tally
}

/// How long a shed call's status asks the client to wait (5 ms when it does not say).
fn retry_after(status: &tonic::Status) -> Duration {
    doppel_client::retry_after(status).unwrap_or(Duration::from_millis(5))
}

/// The `--overload-heavy` phases: offers alone, then beside `heavy` clients looping
/// whole-population lookalikes; two interleaved rounds.
async fn overload_phases(
    args: &Arc<BenchLoadArgs>,
    channel: &Channel,
    customers: &Arc<Vec<String>>,
    seeds: &Arc<Vec<String>>,
    heavy: usize,
) -> anyhow::Result<()> {
    let (mut alone, mut loaded, mut lookalikes) =
        (Tally::default(), Tally::default(), Tally::default());
    for _ in 0..2 {
        for w in spawn_mix(args, channel, customers, seeds, OfferMode::default(), 0.0) {
            alone.merge(w.await.context("load worker")?.0);
        }
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let heavy_workers: Vec<_> = (0..heavy)
            .map(|worker| {
                tokio::spawn(drive_heavy(
                    worker,
                    channel.clone(),
                    Arc::clone(seeds),
                    Arc::clone(args),
                    deadline,
                ))
            })
            .collect();
        for w in spawn_mix(args, channel, customers, seeds, OfferMode::default(), 0.0) {
            loaded.merge(w.await.context("load worker")?.0);
        }
        for w in heavy_workers {
            lookalikes.merge(w.await.context("heavy worker")?);
        }
    }
    let seconds = 2.0 * args.seconds as f64;
    println!(
        "
Overload: {} offer clients, alone and beside {heavy} clients looping whole-population lookalikes (2 × {} s each, interleaved):",
        args.concurrency, args.seconds
    );
    print_table(
        &[
            ("RecommendOffers alone", &alone),
            ("RecommendOffers beside lookalikes", &loaded),
            ("FindLookalikes (top 100 %)", &lookalikes),
        ],
        seconds,
        false,
        |_| true,
    );
    let (p99_alone, p99_loaded) = (summary(&alone, seconds).2, summary(&loaded, seconds).2);
    println!(
        "RecommendOffers p99 beside the lookalikes: {:.2}× the unloaded p99",
        p99_loaded / p99_alone.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// `(QPS, p50 ms, p99 ms, non-OK count)` of a tally over `seconds`.
pub(crate) fn summary(tally: &Tally, seconds: f64) -> (f64, f64, f64, usize) {
    let mut sorted = tally.micros.clone();
    sorted.sort_unstable();
    let errors = tally
        .codes
        .iter()
        .filter(|c| **c != tonic::Code::Ok)
        .count();
    (
        sorted.len() as f64 / seconds,
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        errors,
    )
}

/// Index memory of both versions, held together after a swap (the old one stays loaded for
/// a rollback); summed over shard nodes on a router.
async fn print_memory(channel: &Channel) {
    let mut admin = doppel_proto::v1::model_admin_client::ModelAdminClient::new(channel.clone());
    let mut total = 0u64;
    for version in ["demo-v1", "demo-v2"] {
        let described = admin
            .describe_version(pb::DescribeVersionRequest {
                model_version: version.to_owned(),
            })
            .await;
        match described.map(|r| r.into_inner()) {
            Ok(d) => {
                let bytes = d.index.map_or(0, |i| i.memory_bytes);
                total += bytes;
                println!(
                    "{version}: loaded {}, index memory {:.1} MiB",
                    d.loaded,
                    bytes as f64 / 1_048_576.0
                );
            }
            Err(status) => println!("{version}: {}", status),
        }
    }
    println!(
        "both versions loaded: {:.1} MiB of indexes",
        total as f64 / 1_048_576.0
    );
}

/// Selects the requests of one phase by their start time.
type PhaseFilter = Box<dyn Fn(Instant) -> bool>;

/// Prints one row per tally, over the requests whose start passes `keep`.
fn print_table(
    rows: &[(&str, &Tally)],
    seconds: f64,
    seconds_of_phase: bool,
    keep: impl Fn(Instant) -> bool,
) {
    println!("| rpc | requests | QPS | p50 ms | p99 ms | p999 ms | statuses |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, t) in rows {
        let mut micros = Vec::new();
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
        for ((m, start), code) in t.micros.iter().zip(&t.starts).zip(&t.codes) {
            if keep(*start) {
                micros.push(*m);
                *statuses.entry(format!("{code:?}")).or_default() += 1;
                first = Some(first.map_or(*start, |f| f.min(*start)));
                last = Some(last.map_or(*start, |l| l.max(*start)));
            }
        }
        // A phase's QPS is over the time its requests span; the whole run's over `seconds`.
        let span = match (first, last) {
            (Some(f), Some(l)) if seconds_of_phase => (l - f).as_secs_f64().max(1e-3),
            _ => seconds,
        };
        micros.sort_unstable();
        let statuses: Vec<String> = statuses.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            micros.len(),
            micros.len() as f64 / span,
            percentile(&micros, 0.50),
            percentile(&micros, 0.99),
            percentile(&micros, 0.999),
            statuses.join(", ")
        );
    }
}

/// A cheap deterministic sequence per worker (no shared RNG).
pub(crate) fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// A RecommendOffers of `mode` for a random one of `customers` (not empty), k 10; with a
/// context, one of three at random.
pub(crate) fn offer_request(
    customers: &[String],
    state: &mut u64,
    mode: OfferMode,
) -> pb::RecommendRequest {
    const CONTEXTS: [(&str, &str, &str); 3] = [
        ("web", "desktop", "United Kingdom"),
        ("app", "mobile", "France"),
        ("email", "mobile", "Germany"),
    ];
    let customer = &customers[next(state) as usize % customers.len()];
    let context = mode.context.then(|| {
        let (channel, device, country) = CONTEXTS[next(state) as usize % 3];
        pb::Context {
            channel: channel.into(),
            device: device.into(),
            country: country.into(),
        }
    });
    pb::RecommendRequest {
        customer_id: customer.clone(),
        k: 10,
        context,
        record_impressions: mode.record,
        ..Default::default()
    }
}

/// What one load client does, and until when.
struct Load<'a> {
    args: &'a BenchLoadArgs,
    deadline: Instant,
    mode: OfferMode,
    /// Share of lookalikes.
    share: f64,
}

async fn drive(
    worker: usize,
    channel: Channel,
    customers: &[String],
    seeds: &[String],
    load: Load<'_>,
) -> (Tally, Tally) {
    let Load {
        args,
        deadline,
        mode,
        share,
    } = load;
    let mut recommendations = RecommendationsClient::new(channel.clone());
    let mut audiences = AudiencesClient::new(channel);
    let (mut rec, mut look) = (Tally::default(), Tally::default());
    let mut state = worker as u64 + 1;
    let timeout = Duration::from_millis(args.deadline_ms);
    while Instant::now() < deadline {
        let roll = (next(&mut state) % 10_000) as f64 / 10_000.0;
        let started = Instant::now();
        if roll < share && !seeds.is_empty() {
            let size = pb::lookalike_request::Size::Count(args.audience);
            let request = lookalike_request(seeds, &mut state, args, size);
            look.record(started, find_lookalikes(&mut audiences, request).await);
        } else if !customers.is_empty() {
            let mut request = tonic::Request::new(offer_request(customers, &mut state, mode));
            request.set_timeout(timeout);
            let result = recommendations.recommend_offers(request).await.map(|_| ());
            rec.record(started, result);
        }
    }
    (rec, look)
}

async fn start_local(
    dir: &std::path::Path,
    scheduling: crate::heavy_priority::HeavyScheduling,
) -> anyhow::Result<(String, oneshot::Sender<()>)> {
    // As `doppel serve` does (the load's own clients stay on the tokio workers).
    crate::heavy_priority::lower_heavy_pool_priority(scheduling);
    let store = EmbeddedStore::open(dir).context("opening the store")?;
    let node = Node::open(
        Arc::new(store),
        NodeConfig::default(),
        Arc::new(doppel_node::Everyone),
    )
    .await
    .map_err(|s| anyhow::anyhow!("opening the node: {}", s))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(doppel_grpc::run(
        listener,
        node,
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok((addr, stop))
}

/// CPU seconds this process has used (user + system; `/proc` counts in USER_HZ = 100).
fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    // After the command name: state is field 0, utime 11, stime 12.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Waits until the process has used under 2 % of a core for half a second (at most 60 s).
async fn wait_idle() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = process_cpu_seconds()?;
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = process_cpu_seconds()?;
        if now - last < 0.01 {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

/// `--abandon-calls`: the CPU of whole-population lookalikes whose callers gave up after
/// 1 ms, against that of the same calls run to the end.
async fn abandoned_cost(channel: &Channel, seeds: &[String], calls: usize) -> anyhow::Result<()> {
    let request = |timeout: Option<Duration>| {
        let mut request = tonic::Request::new(pb::LookalikeRequest {
            seed_customer_ids: seeds.iter().take(100).cloned().collect(),
            size: Some(pb::lookalike_request::Size::TopPercent(100.0)),
            ..Default::default()
        });
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        request
    };
    let full_calls = calls.clamp(1, 10);
    wait_idle().await?;
    let before = process_cpu_seconds()?;
    for _ in 0..full_calls {
        let mut stream = AudiencesClient::new(channel.clone())
            .find_lookalikes(request(None))
            .await?
            .into_inner();
        while stream.message().await?.is_some() {}
    }
    wait_idle().await?;
    let full = (process_cpu_seconds()? - before) / full_calls as f64;

    let before = process_cpu_seconds()?;
    let started = Instant::now();
    // One after another, so each is admitted (within the heavy limit) and then abandoned.
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..calls {
        let code = AudiencesClient::new(channel.clone())
            .find_lookalikes(request(Some(Duration::from_millis(1))))
            .await
            .map(|_| ())
            .err()
            .map_or_else(|| "Ok".to_owned(), |s| format!("{:?}", s.code()));
        *codes.entry(code).or_default() += 1;
    }
    let returned = started.elapsed();
    wait_idle().await?;
    let abandoned = (process_cpu_seconds()? - before) / calls as f64;
    println!(
        "\nabandoned lookalikes: {calls} whole-population calls with a 1 ms deadline returned in {:.2} s ({codes:?})",
        returned.as_secs_f64()
    );
    println!(
        "CPU per call: complete {:.1} ms, abandoned {:.1} ms = {:.1} % of a complete call",
        full * 1_000.0,
        abandoned * 1_000.0,
        100.0 * abandoned / full.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// Parses `--caps-paced-share`: a number in [0.01, 1].
fn paced_share(text: &str) -> Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.01..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("{share} is outside 0.01–1"))
    }
}
