//! A loaded cluster: a real redis-server, shard nodes, a router, the small generated base
//! uploaded and `v1` imported and activated through the router.

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_synth::SynthData;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::{load_base, small_base};
use tempfile::TempDir;
use tonic::transport::Channel;

pub const VERSION: &str = "v1";

pub struct Cluster {
    pub router: TestRouter,
    pub shards: Vec<Option<TestShard>>,
    pub data: SynthData,
    pub redis: RedisServer,
    pub _dirs: Vec<TempDir>,
}

/// The item ids of `k` offers for `customer` through the router, recorded as impressions
/// when `record`.
pub async fn offer_ids(channel: &Channel, customer: &str, k: u32, record: bool) -> Vec<String> {
    doppel_proto::v1::recommendations_client::RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.into(),
            k,
            record_impressions: record,
            ..Default::default()
        })
        .await
        .expect("RecommendOffers")
        .into_inner()
        .offers
        .into_iter()
        .map(|o| o.item_id)
        .collect()
}

/// Starts `nodes` shard nodes and a router over `redis`, loads the small base, activates.
pub async fn loaded_on(redis: RedisServer, nodes: u32) -> Cluster {
    loaded_with(redis, nodes, small_base()).await
}

/// [`loaded_on`] with `data` instead of the small base.
pub async fn loaded_with(redis: RedisServer, nodes: u32, data: SynthData) -> Cluster {
    loaded_configured(redis, nodes, data, |_| {}).await
}

/// [`loaded_with`], every node's settings changed by `configure`.
pub async fn loaded_configured(
    redis: RedisServer,
    nodes: u32,
    data: SynthData,
    configure: impl Fn(&mut doppel_grpc::NodeConfig),
) -> Cluster {
    let url = redis.url();
    let mut dirs = Vec::new();
    let mut shards = Vec::new();
    for ordinal in 0..nodes {
        let dir = tempfile::tempdir().expect("tempdir");
        shards.push(Some(
            TestShard::start_configured(&url, ordinal, dir.path(), &configure).await,
        ));
        dirs.push(dir);
    }
    let router = TestRouter::start(&url).await;
    router.wait_for_nodes(nodes as usize).await;
    load_base(&router.channel, &data, VERSION).await;
    doppel_client::activate(router.channel.clone(), VERSION)
        .await
        .expect("activate through the router");
    Cluster {
        router,
        shards,
        data,
        redis,
        _dirs: dirs,
    }
}

impl Cluster {
    /// Waits (at most 60 s) until one surviving node serves all 16 shards: the others'
    /// leases expired and it took their shards over.
    pub async fn wait_for_sole_survivor(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            self.router.router.refresh().await.expect("refresh");
            let topology = self.router.router.topology();
            if topology.routable_shards() == 16 && topology.nodes.len() == 1 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the survivor did not take over"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

pub async fn loaded(nodes: u32) -> Cluster {
    loaded_on(RedisServer::standalone(), nodes).await
}

/// Every batch of an audience stream.
pub async fn batches(
    channel: Channel,
    request: impl tonic::IntoRequest<pb::LookalikeRequest>,
) -> Result<Vec<pb::LookalikeBatch>, tonic::Status> {
    let mut stream = AudiencesClient::new(channel)
        .find_lookalikes(request)
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(batch) = stream.message().await? {
        out.push(batch);
    }
    Ok(out)
}

/// Seeds: consenting customers of the base, every `step`-th.
pub fn seeds(data: &SynthData, n: usize) -> Vec<String> {
    data.customers
        .iter()
        .filter(|c| c.consent.ads_personalization)
        .step_by(7)
        .take(n)
        .map(|c| c.id.clone())
        .collect()
}
