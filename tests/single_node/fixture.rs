//! A loaded, activated server per test, plus views of the generated data the assertions need.

use std::collections::{HashMap, HashSet};

use doppel_proto::v1 as pb;
use doppel_synth::SynthData;
use doppel_test_support::{TestServer, load_base, small_base};
use doppel_types::EventType;
use tempfile::TempDir;
use tonic::transport::Channel;

pub const VERSION: &str = "v1";

/// A server with the small generated base loaded and `v1` active.
pub struct Loaded {
    pub server: TestServer,
    pub data: SynthData,
    pub _dir: TempDir,
}

pub async fn loaded() -> Loaded {
    loaded_serving(doppel_grpc::ServeOptions::default()).await
}

/// [`loaded`], served with `options` (limits, keys).
pub async fn loaded_serving(options: doppel_grpc::ServeOptions) -> Loaded {
    loaded_with(small_base(), doppel_grpc::NodeConfig::default(), options).await
}

/// `data` loaded as `v1` and activated on a node set up with `config`, served with `options`.
pub async fn loaded_with(
    data: SynthData,
    config: doppel_grpc::NodeConfig,
    options: doppel_grpc::ServeOptions,
) -> Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(doppel_store::EmbeddedStore::open(dir.path()).expect("store"));
    let server = TestServer::start_serving(store, dir.path(), config, options).await;
    load_base(&server.channel, &data, VERSION).await;
    doppel_client::activate(server.channel.clone(), VERSION)
        .await
        .expect("activate");
    Loaded {
        server,
        data,
        _dir: dir,
    }
}

impl Loaded {
    pub fn channel(&self) -> Channel {
        self.server.channel.clone()
    }

    pub fn taste(&self) -> HashMap<&str, usize> {
        self.data
            .customers
            .iter()
            .zip(&self.data.customer_taste)
            .map(|(c, &t)| (c.id.as_str(), t))
            .collect()
    }

    pub fn ads_consent(&self) -> HashSet<&str> {
        self.data
            .customers
            .iter()
            .filter(|c| c.consent.ads_personalization)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// Customers with at least one purchase.
    pub fn buyers(&self) -> HashSet<&str> {
        self.data
            .events
            .iter()
            .filter(|e| e.kind == EventType::Purchase)
            .map(|e| e.customer_id.as_str())
            .collect()
    }

    /// Net purchased items per customer (purchases minus returns > 0).
    pub fn purchased(&self, customer: &str) -> HashSet<String> {
        let mut units: HashMap<&str, i64> = HashMap::new();
        for e in self
            .data
            .events
            .iter()
            .filter(|e| e.customer_id == customer)
        {
            let q = i64::from(e.quantity.max(1));
            match e.kind {
                EventType::Purchase => *units.entry(&e.item_id).or_default() += q,
                EventType::Return => *units.entry(&e.item_id).or_default() -= q,
                EventType::View
                | EventType::AddToCart
                | EventType::Impression
                | EventType::Click => {}
            }
        }
        units
            .into_iter()
            .filter(|(_, u)| *u > 0)
            .map(|(i, _)| i.to_owned())
            .collect()
    }

    /// `n` customers with ads consent of planted taste `taste`.
    pub fn seeds(&self, taste: usize, n: usize) -> Vec<String> {
        self.data
            .customers
            .iter()
            .zip(&self.data.customer_taste)
            .filter(|(c, t)| **t == taste && c.consent.ads_personalization)
            .take(n)
            .map(|(c, _)| c.id.clone())
            .collect()
    }
}

/// Runs a lookalike query and collects every batch of the stream.
pub async fn audience(
    channel: Channel,
    request: pb::LookalikeRequest,
) -> Result<Vec<pb::LookalikeBatch>, tonic::Status> {
    doppel_test_support::audience_checks::find(&channel, request).await
}

pub fn prospects(batches: &[pb::LookalikeBatch]) -> Vec<&pb::Prospect> {
    batches.iter().flat_map(|b| &b.prospects).collect()
}

pub fn count(seeds: Vec<String>, n: u64) -> pb::LookalikeRequest {
    pb::LookalikeRequest {
        seed_customer_ids: seeds,
        size: Some(pb::lookalike_request::Size::Count(n)),
        ..Default::default()
    }
}

/// Everyone eligible, best first (`top_percent = 100`): the exact path, deterministic.
pub fn everyone(seeds: Vec<String>) -> pb::LookalikeRequest {
    pb::LookalikeRequest {
        seed_customer_ids: seeds,
        size: Some(pb::lookalike_request::Size::TopPercent(100.0)),
        ..Default::default()
    }
}
