//! A real cluster in one test process: shard nodes and a router over a real `redis-server`,
//! each shard node on its own tokio runtime, so killing it (dropping the runtime) closes
//! its ports and stops its lease like a crashed process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use doppel_cluster::router::Router;
use doppel_cluster::shard::ShardNodeConfig;
use doppel_engine::EngineConfig;
use doppel_grpc::{NodeConfig, ServeOptions};
use doppel_store::{RedisConfig, RedisStore};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// Logical shards of test clusters.
pub const TEST_SHARDS: u32 = 16;

/// One shard node on its own runtime.
pub struct TestShard {
    /// Its node id.
    pub node_id: String,
    /// `http://` address of its public (health) port.
    pub public_addr: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl TestShard {
    /// Starts node `shard-<n>` over the Redis at `redis_url`, snapshots under `data_dir`;
    /// returns once its ports are bound (it takes its shards over in the background).
    pub async fn start(redis_url: &str, n: u32, data_dir: &Path) -> Self {
        Self::start_with_tls(redis_url, n, data_dir, None).await
    }

    /// [`TestShard::start`] with mTLS on the internal port.
    pub async fn start_with_tls(
        redis_url: &str,
        n: u32,
        data_dir: &Path,
        internal_tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> Self {
        Self::spawn(
            RedisConfig::standalone(redis_url),
            n,
            data_dir,
            internal_tls,
            |_| {},
        )
        .await
    }

    /// [`TestShard::start`] over the Redis (standalone or Redis Cluster) `redis` describes.
    pub async fn start_on(redis: RedisConfig, n: u32, data_dir: &Path) -> Self {
        Self::spawn(redis, n, data_dir, None, |_| {}).await
    }

    /// [`TestShard::start`] with the node's settings changed by `configure` (after the
    /// harness's own: 16 shards, checkpoints every 3 s).
    pub async fn start_configured(
        redis_url: &str,
        n: u32,
        data_dir: &Path,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        Self::spawn(
            RedisConfig::standalone(redis_url),
            n,
            data_dir,
            None,
            configure,
        )
        .await
    }

    async fn spawn(
        redis: RedisConfig,
        n: u32,
        data_dir: &Path,
        internal_tls: Option<tonic::transport::ServerTlsConfig>,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("shard runtime");
        let node_id = format!("shard-{n}");
        let (stop, stopped) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = oneshot::channel::<String>();
        let config = ShardNodeConfig {
            node_id: node_id.clone(),
            advertise: String::new(),
            node: NodeConfig {
                engine: EngineConfig {
                    shard_count: TEST_SHARDS,
                    ..EngineConfig::default()
                },
                snapshot_dir: Some(data_dir.join("snapshots")),
                keep_versions: 5,
                // Often, so takeovers in these tests start from checkpoints.
                event_checkpoint_every: Some(Duration::from_secs(3)),
                ..NodeConfig::default()
            },
            serve: ServeOptions {
                grace_period: Duration::from_secs(5),
                ..ServeOptions::default()
            },
            internal_tls,
        };
        let mut config = config;
        configure(&mut config.node);
        let mut redis = redis;
        redis.logical_shards = TEST_SHARDS;
        runtime.spawn(async move {
            let store = RedisStore::connect(redis)
                .await
                .expect("shard connects to redis");
            let public = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let internal = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let mut config = config;
            config.advertise = internal.local_addr().expect("addr").to_string();
            let _ = addr_tx.send(format!("http://{}", public.local_addr().expect("addr")));
            let result = doppel_cluster::shard::run(store, config, public, internal, async move {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = result {
                eprintln!("shard node failed: {e}");
            }
            let _ = done_tx.send(());
        });
        let public_addr = addr_rx.await.expect("shard bound its ports");
        Self {
            node_id,
            public_addr,
            runtime: Some(runtime),
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Crash: every task and port of the node is gone at once (no drain, lease left to
    /// expire).
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Graceful stop: lease dropped, in-flight calls drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestShard {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A router serving on `127.0.0.1:0`.
pub struct TestRouter {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// A connected channel.
    pub channel: Channel,
    /// The router itself (its topology, for waiting).
    pub router: Arc<Router>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestRouter {
    /// Starts a router over the Redis at `redis_url`.
    pub async fn start(redis_url: &str) -> Self {
        Self::start_with_tls(redis_url, None).await
    }

    /// [`TestRouter::start`], dialling nodes over mTLS when `tls` is given.
    pub async fn start_with_tls(
        redis_url: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Self {
        Self::start_serving(redis_url, tls, None).await
    }

    /// [`TestRouter::start_with_tls`], serving its public port over TLS with `public_tls`
    /// (then [`TestRouter::channel`] is never dialled: the test connects its own clients).
    pub async fn start_serving(
        redis_url: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
        public_tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> Self {
        Self::serve_on(RedisConfig::standalone(redis_url), tls, public_tls).await
    }

    /// [`TestRouter::start`] over the Redis (standalone or Redis Cluster) `redis` describes.
    pub async fn start_on(redis: RedisConfig) -> Self {
        Self::serve_on(redis, None, None).await
    }

    async fn serve_on(
        redis: RedisConfig,
        tls: Option<tonic::transport::ClientTlsConfig>,
        public_tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> Self {
        let tls_port = public_tls.is_some();
        let mut redis = redis;
        redis.logical_shards = TEST_SHARDS;
        let store = RedisStore::connect(redis)
            .await
            .expect("router connects to redis");
        let router = Router::connect_with_tls(store, TEST_SHARDS, tls)
            .await
            .expect("router reads the topology");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(doppel_cluster::router::server::run(
            listener,
            Arc::clone(&router),
            ServeOptions {
                grace_period: Duration::from_secs(5),
                tls: public_tls,
                ..ServeOptions::default()
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let channel = if tls_port {
            Channel::from_shared(addr.clone())
                .expect("address")
                .connect_lazy()
        } else {
            doppel_client::connect(&addr).await.expect("connect")
        };
        Self {
            addr,
            channel,
            router,
            stop: Some(stop),
        }
    }

    /// Waits until every logical shard is routable and spread over `nodes` nodes, then
    /// until hand-offs settled (the previous owners released what moved).
    pub async fn wait_for_nodes(&self, nodes: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let _ = self.router.refresh().await;
            let topology = self.router.topology();
            if topology.routable_shards() == TEST_SHARDS && topology.shards_by_node().len() == nodes
            {
                tokio::time::sleep(
                    doppel_cluster::shard::manager::HANDOFF_DELAY + Duration::from_millis(1_500),
                )
                .await;
                let _ = self.router.refresh().await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {TEST_SHARDS} shards became routable on {} of {nodes} nodes",
                topology.routable_shards(),
                topology.shards_by_node().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
