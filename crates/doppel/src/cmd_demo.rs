//! `doppel demo`: a single-node server on the embedded store, a generated customer base
//! loaded through the public API, and a lookalike audience plus offers printed for one
//! customer. Everything goes over real gRPC, exactly as a client would do it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::EmbeddedStore;
use doppel_synth::{SynthConfig, SynthData};
use indicatif::ProgressBar;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cmd_query::print_offers;
use crate::upload_progress::upload_all;
use doppel_client::{activate, connect, import_vectors};

/// Flags of `doppel demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Customers to generate.
    #[arg(long, default_value_t = 5_000)]
    pub customers: usize,
    /// Items to generate.
    #[arg(long, default_value_t = 500)]
    pub items: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Address of the demo server (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Store directory (default: a temporary directory removed at exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Data: `auto` (Online Retail at ../shared/data/online_retail.csv.gz when present,
    /// else generated), `generated`, or a path to a file in the Online Retail layout.
    #[arg(long, default_value = "auto")]
    pub data: String,
    /// Vectors to serve: `learned` trains them from the events (implicit ALS), `planted`
    /// imports the generator's ground-truth tastes (bring-your-own vectors).
    #[arg(long, value_enum, default_value = "learned")]
    pub vectors: VectorSource,
    /// Keep serving after the demo queries, until Ctrl-C (try grpcurl against it).
    #[arg(long)]
    pub serve: bool,
}

/// Where the demo's vectors come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VectorSource {
    /// Learned from the generated events by `ModelAdmin.Train`.
    Learned,
    /// The generator's planted taste vectors, via `ModelAdmin.ImportEmbeddings`.
    Planted,
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("temporary data dir")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let store = EmbeddedStore::open(&data_dir).context("opening the store")?;
    let node = Node::open(
        Arc::new(store),
        NodeConfig::default(),
        Arc::new(doppel_node::Everyone),
    )
    .await
    .map_err(|s| anyhow::anyhow!("opening the node: {}", s))?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(doppel_grpc::run(
        listener,
        node,
        ServeOptions::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    eprintln!(
        "doppel demo server on {addr} (store: {})",
        data_dir.display()
    );

    match retail_file(&args.data) {
        Some(path) => crate::demo_retail::run(&addr, &path).await?,
        None => generated(&addr, &args).await?,
    }
    if args.serve {
        eprintln!(
            "serving on {addr} until Ctrl-C, e.g.: grpcurl -plaintext {} list",
            &addr[7..]
        );
        crate::cmd_serve::shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    server.await.context("server task")??;
    Ok(())
}

/// The real-data file the demo should use, if any.
fn retail_file(data: &str) -> Option<PathBuf> {
    match data {
        "generated" => None,
        "auto" => {
            let default = PathBuf::from(crate::cmd_evaluate::DEFAULT_DATA);
            default.exists().then_some(default)
        }
        path => Some(PathBuf::from(path)),
    }
}

/// Loads a generated base into the server at `addr` and activates learned vectors (the
/// load generator's setup).
pub async fn load_generated(
    addr: &str,
    config: &SynthConfig,
    data: &SynthData,
) -> anyhow::Result<()> {
    load(addr, config, data, VectorSource::Learned).await
}

async fn generated(addr: &str, args: &DemoArgs) -> anyhow::Result<()> {
    let config = SynthConfig {
        customers: args.customers,
        items: args.items,
        seed: args.seed,
        ..SynthConfig::default()
    };
    let data = doppel_synth::generate(&config);
    load(addr, &config, &data, args.vectors).await?;
    show(addr, &data).await
}

async fn load(
    addr: &str,
    config: &SynthConfig,
    data: &SynthData,
    vectors: VectorSource,
) -> anyhow::Result<()> {
    let channel = connect(addr).await?;
    upload_all(&channel, &data.customers, &data.items, &data.events).await?;
    if vectors == VectorSource::Learned {
        let done = crate::cmd_train::train_with_bar(
            channel.clone(),
            pb::TrainRequest {
                model_version: "demo-v1".to_owned(),
                factors: Some(32),
                ..Default::default()
            },
        )
        .await?;
        activate(channel, "demo-v1").await?;
        eprintln!(
            "model demo-v1 learned from {} events (implicit ALS, 32 factors): {} customers, {} items, trained and indexed in {:.2}s, active",
            done.events, done.customers, done.items, done.elapsed_seconds
        );
        return Ok(());
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("importing vectors and building indexes");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let summary = import_vectors(
        channel.clone(),
        "demo-v1",
        config.dim as u32,
        &data.customer_vectors,
        &data.item_vectors,
    )
    .await?;
    activate(channel, "demo-v1").await?;
    spinner.finish_and_clear();
    eprintln!(
        "model demo-v1: {} planted customer and {} item vectors imported, indexes built in {:.2}s, active",
        summary.customers, summary.items, summary.build_seconds
    );
    Ok(())
}

async fn show(addr: &str, data: &SynthData) -> anyhow::Result<()> {
    let channel = connect(addr).await?;
    let taste_of: HashMap<&str, usize> = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .map(|(c, &t)| (c.id.as_str(), t))
        .collect();
    // Seeds: the first 50 consenting customers of taste 0 ("converters" of a campaign).
    let seeds: Vec<String> = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .filter(|(c, t)| **t == 0 && c.consent.ads_personalization)
        .take(50)
        .map(|(c, _)| c.id.clone())
        .collect();
    let mut audiences = AudiencesClient::new(channel.clone());
    let mut stream = audiences
        .find_lookalikes(pb::LookalikeRequest {
            seed_customer_ids: seeds.clone(),
            size: Some(pb::lookalike_request::Size::Count(20)),
            explain: true,
            ..Default::default()
        })
        .await
        .context("FindLookalikes")?
        .into_inner();
    println!(
        "Lookalike audience for {} seed customers of taste cluster 0 (top 20):",
        seeds.len()
    );
    println!("  rank  customer  score   taste  nearest seeds");
    let (mut shown, mut same) = (0, 0);
    while let Some(batch) = stream.message().await? {
        if batch.batch_index == 0 {
            println!(
                "  (model {}, eligible population {}, ignored seeds {})",
                batch.model_version,
                batch.eligible_population,
                batch.ignored_seed_ids.len()
            );
        }
        for p in batch.prospects {
            shown += 1;
            let taste = taste_of.get(p.customer_id.as_str()).copied();
            same += usize::from(taste == Some(0));
            println!(
                "  {shown:>4}  {:<8}  {:.4}  {:>5}  {}",
                p.customer_id,
                p.score,
                taste.map_or("?".to_owned(), |t| t.to_string()),
                p.nearest_seed_ids.join(",")
            );
        }
    }
    println!("  {same}/{shown} prospects share the seeds' planted taste\n");

    // Plan before buying: how big the audience is at a few shares, and who it reaches.
    let curve = audiences
        .estimate_reach(pb::ReachRequest {
            query: Some(pb::LookalikeRequest {
                seed_customer_ids: seeds.clone(),
                audit_attributes: vec!["country".into()],
                ..Default::default()
            }),
            top_percents: vec![1.0, 5.0, 10.0],
            min_scores: Vec::new(),
        })
        .await
        .context("EstimateReach")?
        .into_inner();
    println!(
        "Reach of the same seeds (exact, of {} eligible):",
        curve.eligible_population
    );
    for p in &curve.points {
        let worst = p
            .audit
            .iter()
            .min_by(|a, b| a.ratio_to_best.total_cmp(&b.ratio_to_best));
        println!(
            "  top {:>4.1} %  {:>6} prospects  score ≥ {:.4}  least-reached country {}",
            p.top_percent,
            p.size,
            p.min_score,
            worst.map_or("-".to_owned(), |a| format!(
                "{:?} at {:.2} of the best rate",
                a.value, a.ratio_to_best
            ))
        );
    }
    println!();

    let customer = data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization)
        .context("no customer with on-site consent in the generated base")?;
    let mut recommendations = RecommendationsClient::new(channel);
    let response = recommendations
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.id.clone(),
            k: 5,
            context: Some(pb::Context {
                channel: "web".into(),
                device: "mobile".into(),
                country: customer
                    .attributes
                    .get("country")
                    .cloned()
                    .unwrap_or_default(),
            }),
            explain: true,
            ..Default::default()
        })
        .await
        .context("RecommendOffers")?
        .into_inner();
    println!(
        "Next-best offers for {} (model {}, personalized {}):",
        customer.id, response.model_version, response.personalized
    );
    print_offers(&response.offers);
    Ok(())
}
