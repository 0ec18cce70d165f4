//! The shared store contract against a real standalone `redis-server` and a real 3-master
//! Redis Cluster, and reconnection after the server restarts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use doppel_store::testing::redis_harness::{RedisCluster, RedisServer};
use doppel_store::{Error, RedisConfig, RedisStore, Store};

/// Each contract case gets a fresh store: a new key prefix on the same server.
static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

fn fresh(mut config: RedisConfig) -> RedisConfig {
    config.key_prefix = format!("t{}", NEXT_PREFIX.fetch_add(1, Ordering::Relaxed));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_standalone_passes_the_contract() {
    let server = RedisServer::standalone();
    let config = RedisConfig::standalone(server.url());
    let started = Instant::now();
    doppel_store::contract::run_all(|| {
        let config = fresh(config.clone());
        async move { RedisStore::connect(config).await.expect("connect") }
    })
    .await;
    eprintln!("standalone contract suite: {:?}", started.elapsed());
}

/// `rediss://` against a real TLS `redis-server` (Debian's is built with TLS) that requires
/// client certificates: the whole contract over TLS, and no connection without the CA or
/// without a client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_passes_the_contract() {
    let fixtures =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tls");
    let read = |name: &str| std::fs::read(fixtures.join(name)).expect("fixture");
    let server = RedisServer::standalone_tls(
        &fixtures.join("server.pem"),
        &fixtures.join("server.key"),
        &fixtures.join("ca.pem"),
    );
    let mut config = RedisConfig::standalone(server.tls_url());
    config.tls = doppel_store::RedisTls {
        ca_pem: Some(read("ca.pem")),
        client_pem: Some((read("client.pem"), read("client.key"))),
    };
    doppel_store::contract::run_all(|| {
        let config = fresh(config.clone());
        async move { RedisStore::connect(config).await.expect("connect over TLS") }
    })
    .await;
    let mut no_client_cert = config.clone();
    no_client_cert.tls.client_pem = None;
    no_client_cert.reconnect_retries = 0;
    assert!(RedisStore::connect(no_client_cert).await.is_err());
    let mut wrong_ca = config.clone();
    wrong_ca.tls.ca_pem = Some(read("rogue-ca.pem"));
    wrong_ca.reconnect_retries = 0;
    assert!(RedisStore::connect(wrong_ca).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_contract() {
    let cluster = RedisCluster::three_masters();
    let config = RedisConfig::cluster(&cluster.urls());
    let started = Instant::now();
    doppel_store::contract::run_all(|| {
        let config = fresh(config.clone());
        async move { RedisStore::connect(config).await.expect("connect") }
    })
    .await;
    eprintln!("cluster contract suite: {:?}", started.elapsed());
    let counts = cluster.key_counts();
    assert!(
        counts.iter().all(|&n| n > 0),
        "the shard hash tags spread keys over every master: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_unavailable_while_redis_is_down_and_recover_after_restart() {
    let mut server = RedisServer::standalone();
    let mut config = fresh(RedisConfig::standalone(server.url()));
    config.response_timeout = Duration::from_secs(2);
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(RedisStore::connect(config).await.expect("connect"));
    let customer = doppel_store::contract::customer;
    store
        .upsert_customers(vec![customer("before")])
        .await
        .expect("write while up");

    server.kill();
    match store.upsert_customers(vec![customer("down")]).await {
        Err(Error::Unavailable(reason)) => eprintln!("while down: {reason}"),
        other => panic!("a write while Redis is down: expected Unavailable, got {other:?}"),
    }

    server.start();
    store
        .upsert_customers(vec![customer("after")])
        .await
        .expect("the first write after the restart succeeds");
    assert_eq!(
        store.get_customer("after").await.expect("get"),
        Some(customer("after"))
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config = RedisConfig::standalone(format!("redis://127.0.0.1:{port}"));
    config.reconnect_retries = 0;
    match RedisStore::connect(config).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_writes_to_a_dead_master_are_unavailable_and_others_still_work() {
    let mut cluster = RedisCluster::three_masters();
    let mut config = fresh(RedisConfig::cluster(&cluster.urls()));
    config.reconnect_retries = 1;
    config.response_timeout = Duration::from_secs(1);
    let store = RedisStore::connect(config).await.expect("connect");
    let ids: Vec<String> = (0..32).map(|i| format!("c{i}")).collect();
    let customer = doppel_store::contract::customer;
    store
        .upsert_customers(ids.iter().map(|id| customer(id)).collect())
        .await
        .expect("write while every master is up");

    cluster.kill_node(0);
    let started = Instant::now();
    let (mut unavailable, mut ok) = (0, 0);
    for id in &ids {
        let write = Instant::now();
        let result = store.upsert_customers(vec![customer(id)]).await;
        assert!(
            write.elapsed() < Duration::from_secs(5),
            "a write fails within the response timeout and retries, not after minutes"
        );
        match result {
            Ok(()) => ok += 1,
            Err(Error::Unavailable(_)) => unavailable += 1,
            Err(other) => panic!("a write to a dead master: expected Unavailable, got {other:?}"),
        }
    }
    eprintln!(
        "one master down: {ok} writes ok, {unavailable} unavailable in {:?}",
        started.elapsed()
    );
    assert!(unavailable > 0, "some of 16 shards live on the dead master");
}

/// Keys per logical shard: the whole contract with 5 logical shards (shard scans then read
/// one tag at 5 and filter at 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keyed_by_five_logical_shards_passes_the_contract() {
    let server = RedisServer::standalone();
    let mut config = RedisConfig::standalone(server.url());
    config.logical_shards = 5;
    doppel_store::contract::run_all(|| {
        let config = fresh(config.clone());
        async move { RedisStore::connect(config).await.expect("connect") }
    })
    .await;
}

/// Data keyed for one shard count is refused under another; data from before keys were
/// per logical shard (no marker, 16 tags) is adopted at 16 shards only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refuses_data_keyed_for_another_shard_count() {
    let server = RedisServer::standalone();
    let mut sixteen = fresh(RedisConfig::standalone(server.url()));
    sixteen.logical_shards = 16;
    let store = RedisStore::connect(sixteen.clone())
        .await
        .expect("fresh store");
    store
        .upsert_customers(vec![doppel_store::contract::customer("c1")])
        .await
        .expect("upsert");
    let mut other = sixteen.clone();
    other.logical_shards = 32;
    let refused = RedisStore::connect(other.clone())
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, Error::Storage(m) if m.contains("per-shard 16") && m.contains("32")),
        "{refused:?}"
    );

    // As an older doppel left it: no marker.
    let mut raw = redis::Client::open(server.url())
        .expect("client")
        .get_connection()
        .expect("connection");
    let marker = format!("{}:{{global}}:key_layout", sixteen.key_prefix);
    redis::cmd("DEL").arg(&marker).exec(&mut raw).expect("del");
    let refused = RedisStore::connect(other)
        .await
        .expect_err("legacy refused");
    assert!(
        matches!(&refused, Error::Storage(m) if m.contains("older doppel") && m.contains("--shards 16")),
        "{refused:?}"
    );
    let adopted = RedisStore::connect(sixteen).await.expect("adopted at 16");
    assert!(
        adopted.get_customer("c1").await.expect("read").is_some(),
        "the legacy customer is found"
    );
    let value: String = redis::cmd("GET").arg(&marker).query(&mut raw).expect("get");
    assert_eq!(value, "per-shard 16");
}
