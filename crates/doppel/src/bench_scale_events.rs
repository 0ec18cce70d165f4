//! The event history of `doppel bench scale --events-per-customer E`: E events per
//! customer (purchases, views, carts, impressions over the last 30 days) uploaded over
//! gRPC, so the restarts the bench times have a log to read — the whole of it without
//! event checkpoints, only the tail with them.

use std::time::Instant;

use doppel_proto::v1 as pb;
use tonic::transport::Channel;

use crate::bench_scale::{CHUNK, bar, customer_id, item_id, splitmix64};

/// Uploads `per_customer` events for each of `customers` customers over `items` items;
/// returns events per second.
pub(crate) async fn upload_events(
    channel: &Channel,
    customers: usize,
    items: usize,
    per_customer: usize,
    seed: u64,
) -> anyhow::Result<f64> {
    let total = customers * per_customer;
    let progress = bar(total, "events");
    let now = doppel_types::clock::now_ms();
    let kinds = [
        pb::EventType::Purchase,
        pb::EventType::View,
        pb::EventType::View,
        pb::EventType::AddToCart,
        pb::EventType::Impression,
    ];
    let started = Instant::now();
    let batch = CHUNK * 16;
    for start in (0..total).step_by(batch) {
        let records: Vec<pb::Event> = (start..(start + batch).min(total))
            .map(|n| {
                let r = splitmix64(seed ^ (n as u64).wrapping_mul(0x9e37));
                let kind = kinds[(r % kinds.len() as u64) as usize];
                pb::Event {
                    customer_id: customer_id(n % customers),
                    item_id: item_id(((r >> 8) % items as u64) as usize),
                    r#type: kind as i32,
                    timestamp_ms: now - ((r >> 32) % (30 * 86_400_000)) as i64,
                    quantity: 1,
                    ..Default::default()
                }
            })
            .collect();
        let sent = records.len() as u64;
        doppel_client::upload_events(channel.clone(), records, |_| {}).await?;
        progress.inc(sent);
    }
    progress.finish_and_clear();
    Ok(total as f64 / started.elapsed().as_secs_f64().max(1e-9))
}
