//! Fixtures shared by doppel's tests: a real server in-process on `127.0.0.1:0` over a real
//! embedded store, and a generated customer base loaded through the public API.

pub mod audience_checks;
pub mod cluster;
pub mod cut_proxy;
pub mod experiment_checks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_grpc::convert::{customer_to_pb, event_to_pb, item_to_pb};
use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_store::{EmbeddedStore, Store};
use doppel_synth::{SynthConfig, SynthData};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A running in-process server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// A connected channel.
    pub channel: Channel,
    /// Its store directory (survives `stop`, for restart tests).
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), doppel_grpc::server::ServeError>>>,
}

impl TestServer {
    /// Starts a server over the store in `data_dir` with the default engine settings.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, NodeConfig::default()).await
    }

    /// Starts a server over the store in `data_dir`.
    pub async fn start_with(data_dir: &Path, config: NodeConfig) -> Self {
        // A restart in the same process: background tasks of the stopped server may hold
        // the store for a moment after its task ended (a process exit releases it at once).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let store = loop {
            match EmbeddedStore::open(data_dir) {
                Ok(store) => break store,
                Err(e)
                    if e.to_string().contains("already open")
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("open store: {e:?}"),
            }
        };
        Self::start_on(Arc::new(store), data_dir, config).await
    }

    /// Starts a server over any store (`data_dir` is only remembered for restarts).
    pub async fn start_on(store: Arc<dyn Store>, data_dir: &Path, config: NodeConfig) -> Self {
        Self::start_serving(store, data_dir, config, ServeOptions::default()).await
    }

    /// Starts a server over any store with these serving options (API keys, limits).
    pub async fn start_serving(
        store: Arc<dyn Store>,
        data_dir: &Path,
        config: NodeConfig,
        options: ServeOptions,
    ) -> Self {
        let node = Node::open(store, config, Arc::new(doppel_node::Everyone))
            .await
            .expect("open node");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let tls = options.tls.is_some();
        let task = tokio::spawn(doppel_grpc::run(listener, node, options, async move {
            let _ = stopped.await;
        }));
        // A TLS server: the test connects its own clients; this one is never dialled.
        let channel = if tls {
            Channel::from_shared(addr.clone())
                .expect("address")
                .connect_lazy()
        } else {
            doppel_client::connect(&addr).await.expect("connect")
        };
        Self {
            addr,
            channel,
            data_dir: data_dir.to_owned(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop: drain and flush; returns when the server task ended.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

/// A small generated base (fast to index in debug builds).
pub fn small_base() -> SynthData {
    doppel_synth::generate(&SynthConfig {
        customers: 2_000,
        items: 200,
        dim: 16,
        events_per_customer: 10,
        ..SynthConfig::default()
    })
}

/// Uploads customers, items and events of `data` over gRPC (no vectors).
pub async fn upload_base(channel: &Channel, data: &SynthData) {
    let customers = data.customers.iter().cloned().map(customer_to_pb).collect();
    doppel_client::upload_customers(channel.clone(), customers, |_| {})
        .await
        .expect("customers");
    let items = data.items.iter().cloned().map(item_to_pb).collect();
    doppel_client::upload_items(channel.clone(), items, |_| {})
        .await
        .expect("items");
    let events = data.events.iter().cloned().map(event_to_pb).collect();
    doppel_client::upload_events(channel.clone(), events, |_| {})
        .await
        .expect("events");
}

/// Loads `data` over gRPC and imports its vectors as `version` (not activated).
pub async fn load_base(channel: &Channel, data: &SynthData, version: &str) {
    upload_base(channel, data).await;
    let dim = data.customer_vectors.first().map_or(0, |(_, v)| v.len()) as u32;
    doppel_client::import_vectors(
        channel.clone(),
        version,
        dim,
        &data.customer_vectors,
        &data.item_vectors,
    )
    .await
    .expect("import vectors");
}

/// A planted world for context-aware offers: on mobile in the evening (UTC), 80 % of
/// events fall on category `cat01`.
pub fn planted_context_base() -> SynthData {
    doppel_synth::generate(&SynthConfig {
        customers: 2_000,
        items: 200,
        categories: 8,
        events_per_customer: 30,
        seed: 21,
        context_effect: 0.8,
        ..SynthConfig::default()
    })
}

/// Three purchases by `customer` of items of a planted taste that none of `shown` (item
/// ids) belongs to, at `timestamp_ms` onwards; with that taste. `None` when every taste is
/// shown.
pub fn fresh_taste_purchases(
    data: &SynthData,
    customer: &str,
    shown: &[String],
    timestamp_ms: i64,
) -> Option<(usize, Vec<doppel_proto::v1::Event>)> {
    let taste_of = |item: &str| {
        data.items
            .iter()
            .position(|i| i.id == item)
            .map(|n| data.item_taste[n])
    };
    let tastes = data.item_taste.iter().max().map_or(0, |t| t + 1);
    let fresh = (0..tastes).find(|t| !shown.iter().any(|i| taste_of(i) == Some(*t)))?;
    let events = data
        .items
        .iter()
        .zip(&data.item_taste)
        .filter(|(_, t)| **t == fresh)
        .take(3)
        .enumerate()
        .map(|(n, (item, _))| {
            event_to_pb(doppel_types::Event {
                customer_id: customer.to_owned(),
                item_id: item.id.clone(),
                kind: doppel_types::EventType::Purchase,
                quantity: 1,
                timestamp_ms: timestamp_ms + n as i64,
                ..Default::default()
            })
        })
        .collect();
    Some((fresh, events))
}

/// How many of `offers` (item ids) belong to planted taste `taste`.
pub fn offers_of_taste(data: &SynthData, offers: &[String], taste: usize) -> usize {
    offers
        .iter()
        .filter(|o| {
            data.items
                .iter()
                .position(|i| &i.id == *o)
                .is_some_and(|n| data.item_taste[n] == taste)
        })
        .count()
}

/// The week's hit: 150 customers of `data` (from the 1,001st) buy `item` in the last five
/// days before the synthetic log's reference time.
pub fn recent_hit(data: &SynthData, item: &str) -> Vec<doppel_proto::v1::Event> {
    data.customers
        .iter()
        .skip(1_000)
        .take(150)
        .enumerate()
        .map(|(n, c)| {
            event_to_pb(doppel_types::Event {
                customer_id: c.id.clone(),
                item_id: item.to_owned(),
                kind: doppel_types::EventType::Purchase,
                quantity: 1,
                timestamp_ms: doppel_synth::REFERENCE_TIME_MS - (n as i64 % 5) * 86_400_000,
                ..Default::default()
            })
        })
        .collect()
}

/// Uploads `data` over gRPC, trains `version` from its events (16 factors, 8 iterations)
/// and activates it.
pub async fn upload_train_activate(channel: &Channel, data: &SynthData, version: &str) {
    upload_base(channel, data).await;
    doppel_client::train(
        channel.clone(),
        doppel_proto::v1::TrainRequest {
            model_version: version.to_owned(),
            factors: Some(16),
            iterations: Some(8),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("train");
    doppel_client::activate(channel.clone(), version)
        .await
        .expect("activate");
}
