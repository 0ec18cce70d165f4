//! The event log: numbers from one `{global}` counter, events stored per shard (a hash by
//! seq, a zset of seqs, a zset per customer) so erasure removes them with the customer.
//!
//! Append: (1) read the ledger for the batch's customers, (2) `INCRBY` the counter by the
//! number of events kept, (3) one script per shard writes its events, dropping any whose
//! customer was erased since (1). Scans merge the shards' seq zsets.

use std::collections::BTreeMap;

use doppel_types::Event;
use redis::Cmd;

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use super::paging::hash_fields;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// KEYS: events hash, event seqs zset, ledger, then one customer-events zset per event.
/// ARGV: seq, customer id, bytes per event. Returns the number written.
const APPEND: &str = r"
local written = 0
for i = 1, #ARGV, 3 do
  local seq, id = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[3], id) == 0 then
    redis.call('HSET', KEYS[1], seq, ARGV[i + 2])
    redis.call('ZADD', KEYS[2], seq, seq)
    redis.call('ZADD', KEYS[3 + (i + 2) / 3], seq, seq)
    written = written + 1
  end
end
return written
";

/// Appends events, dropping those of erased customers; returns the last assigned seq.
pub(super) async fn append_events(store: &RedisStore, events: Vec<Event>) -> Result<u64> {
    let layout = &store.layout;
    let kept = live_events(store, events).await?;
    if kept.is_empty() {
        return last_event_seq(store).await;
    }
    let mut incr = redis::cmd("INCRBY");
    incr.arg(layout.last_event_seq()).arg(kept.len());
    let last: u64 = store.conn.query(&incr).await?;
    let first = last + 1 - kept.len() as u64;

    let mut by_tag: BTreeMap<Tag, Vec<(u64, Event)>> = BTreeMap::new();
    for (seq, event) in (first..).zip(kept) {
        by_tag
            .entry(layout.customer_tag(&event.customer_id))
            .or_default()
            .push((seq, event));
    }
    let mut cmds = Vec::with_capacity(by_tag.len());
    for (tag, events) in by_tag {
        let mut keys = vec![
            layout.events(tag),
            layout.event_seqs(tag),
            layout.erased(tag),
        ];
        keys.extend(
            events
                .iter()
                .map(|(_, e)| layout.customer_events(&e.customer_id)),
        );
        let mut cmd = eval(APPEND, &keys);
        for (seq, event) in &events {
            cmd.arg(seq)
                .arg(&event.customer_id)
                .arg(encode("event", event)?);
        }
        cmds.push(cmd);
    }
    store.conn.exec_grouped(&cmds).await?;
    Ok(last)
}

/// The events whose customers are not in the ledger, in order.
async fn live_events(store: &RedisStore, events: Vec<Event>) -> Result<Vec<Event>> {
    let layout = &store.layout;
    let ids: Vec<(Tag, String)> = events
        .iter()
        .map(|e| (layout.customer_tag(&e.customer_id), e.customer_id.clone()))
        .collect();
    let ledger = hash_fields(&store.conn, &ids, |tag| layout.erased(tag)).await?;
    Ok(events
        .into_iter()
        .zip(ledger)
        .filter_map(|(event, erased)| erased.is_none().then_some(event))
        .collect())
}

/// The last assigned seq (0 before the first event).
pub(super) async fn last_event_seq(store: &RedisStore) -> Result<u64> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.layout.last_event_seq());
    let last: Option<u64> = store.conn.query(&cmd).await?;
    Ok(last.unwrap_or(0))
}

/// One customer's events, in seq (append) order.
pub(super) async fn customer_events(store: &RedisStore, customer_id: &str) -> Result<Vec<Event>> {
    let layout = &store.layout;
    let mut range = redis::cmd("ZRANGE");
    range
        .arg(layout.customer_events(customer_id))
        .arg(0)
        .arg(-1);
    let seqs: Vec<String> = store.conn.query(&range).await?;
    let tag = layout.customer_tag(customer_id);
    let fields: Vec<(Tag, String)> = seqs.into_iter().map(|s| (tag, s)).collect();
    read_events(store, &fields)
        .await
        .map(|events| events.into_iter().map(|(_, e)| e).collect())
}

/// Up to `limit` events after `after_seq`, merged over the shards in seq order.
pub(super) async fn scan_events(
    store: &RedisStore,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let layout = &store.layout;
    let tags = layout.shard_tags();
    let count = i64::try_from(limit).unwrap_or(i64::MAX);
    let cmds: Vec<Cmd> = tags
        .iter()
        .map(|&tag| {
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(layout.event_seqs(tag))
                .arg(format!("({after_seq}"))
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(count);
            cmd
        })
        .collect();
    let pages: Vec<Vec<u64>> = store.conn.query_each(&cmds).await?;
    let mut seqs: Vec<(u64, Tag)> = tags
        .iter()
        .zip(pages)
        .flat_map(|(&tag, page)| page.into_iter().map(move |seq| (seq, tag)))
        .collect();
    seqs.sort_unstable();
    seqs.truncate(limit);
    let fields: Vec<(Tag, String)> = seqs
        .into_iter()
        .map(|(seq, tag)| (tag, seq.to_string()))
        .collect();
    read_events(store, &fields).await
}

/// Reads events by (tag, seq), skipping any erased meanwhile.
async fn read_events(store: &RedisStore, fields: &[(Tag, String)]) -> Result<Vec<(u64, Event)>> {
    let layout = &store.layout;
    let values = hash_fields(&store.conn, fields, |tag| layout.events(tag)).await?;
    let mut out = Vec::with_capacity(fields.len());
    for ((_, seq), bytes) in fields.iter().zip(values) {
        if let Some(bytes) = bytes {
            let n: u64 = seq.parse().map_err(|_| Error::Corrupt {
                what: "event seq",
                key: seq.clone(),
                reason: "not a number".to_owned(),
            })?;
            out.push((n, decode("event", seq, &bytes)?));
        }
    }
    Ok(out)
}
