//! Redis killed and restarted under write load: writes fail with UNAVAILABLE while it is
//! down (never UNKNOWN or INTERNAL), succeed again once it is back, and no acknowledged
//! write is lost (the server runs with `appendonly yes`, `appendfsync always`).

use std::time::Duration;

use doppel_store::testing::redis_harness::RedisServer;

use crate::fixture::loaded_on;
use crate::write_load::WriteLoad;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_under_load_loses_no_acknowledged_write() {
    let mut cluster = loaded_on(RedisServer::standalone_durable(), 2).await;
    let load = WriteLoad::start(
        cluster.router.channel.clone(),
        "late",
        Duration::from_secs(3),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.redis.kill();
    // Down longer than a write's 3 s deadline: a write in flight when Redis died cannot
    // wait the outage out (the client's reconnect would hide it otherwise).
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    cluster.redis.start();
    load.wait_for_more(
        20,
        Duration::from_secs(20),
        "writes did not recover after Redis came back",
    )
    .await;
    let outcome = load.stop().await;
    // A write in flight when Redis died may also meet the client's 3 s deadline.
    outcome.assert_refusals_unavailable(true);
    outcome
        .assert_none_lost(cluster.router.channel.clone())
        .await;
}
