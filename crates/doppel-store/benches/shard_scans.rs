//! What a takeover reads from Redis for one logical shard: the shard's own keys
//! (`scan_shard_customers` / `scan_shard_vectors`) against the whole scan filtered to the
//! shard (what every takeover read before keys were per logical shard), on a real
//! `redis-server` with N customers (env `N`, default 320,000) and 64-dim vectors.
//!
//! `cargo bench -p doppel-store --bench shard_scans`

use std::time::{Duration, Instant};

use doppel_store::testing::redis_harness::RedisServer;
use doppel_store::{RedisConfig, RedisStore, Store};
use doppel_types::Entity;

const PAGE: usize = 10_000;
const SHARDS: u32 = 16;
const SHARD: u32 = 3;

/// `(profiles, their time, vectors, their time)` of shard `SHARD`.
async fn read_shard(store: &RedisStore, whole_scan: bool) -> (usize, Duration, usize, Duration) {
    let started = Instant::now();
    let (mut customers, mut after) = (0, None::<String>);
    loop {
        let page = if whole_scan {
            doppel_store::shard_scans::customers(store, SHARD, SHARDS, after.as_deref(), PAGE).await
        } else {
            store
                .scan_shard_customers(SHARD, SHARDS, after.as_deref(), PAGE)
                .await
        }
        .expect("customers");
        customers += page.len();
        after = page.last().map(|c| c.id.clone());
        if page.len() < PAGE {
            break;
        }
    }
    let profiles_took = started.elapsed();
    let started = Instant::now();
    let (mut vectors, mut after) = (0, None::<String>);
    loop {
        let page = if whole_scan {
            doppel_store::shard_scans::vectors(store, "v1", SHARD, SHARDS, after.as_deref(), PAGE)
                .await
        } else {
            store
                .scan_shard_vectors("v1", SHARD, SHARDS, after.as_deref(), PAGE)
                .await
        }
        .expect("vectors");
        vectors += page.len();
        after = page.last().map(|(id, _)| id.clone());
        if page.len() < PAGE {
            break;
        }
    }
    (customers, profiles_took, vectors, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(320_000);
    let server = RedisServer::standalone();
    let store = RedisStore::connect(RedisConfig::standalone(server.url()))
        .await
        .expect("redis");
    let started = Instant::now();
    let ids: Vec<String> = (0..n).map(|i| format!("c{i:08}")).collect();
    for chunk in ids.chunks(5_000) {
        let customers = chunk
            .iter()
            .map(|id| doppel_store::contract::customer(id))
            .collect();
        store.upsert_customers(customers).await.expect("customers");
        let rows = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), vec![i as f32; 64]))
            .collect();
        store
            .put_vectors("v1", Entity::Customer, rows)
            .await
            .expect("vectors");
    }
    println!(
        "loaded {n} customers and 64-dim vectors in {:.1?}",
        started.elapsed()
    );
    println!("| read of shard {SHARD} of {SHARDS} | profiles | time | vectors | time |");
    println!("|---|---:|---:|---:|---:|");
    for round in 1..=2 {
        for (name, whole) in [("its own keys", false), ("whole scan, filtered", true)] {
            let (c, tc, v, tv) = read_shard(&store, whole).await;
            println!("| {name} (round {round}) | {c} | {tc:.1?} | {v} | {tv:.1?} |");
        }
    }
}
