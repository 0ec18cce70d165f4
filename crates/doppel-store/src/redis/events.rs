//! The event log: numbers from one `{global}` counter, events stored per shard (a hash by
//! seq, a zset of seqs, a zset per customer) so erasure removes them with the customer,
//! and a hash of event ids per customer so a retried event is not written twice.
//!
//! Append: (1) read the ledger for the batch's customers, (2) `INCRBY` the counter by the
//! number of events kept, (3) one script per shard writes its events, dropping any whose
//! customer was erased since (1) and any whose event id the customer already has — the
//! check and the write are one script, so two concurrent retries cannot both write. Seqs
//! of events dropped in (3) are skipped (the log has gaps anyway, from erasure). Scans
//! merge the shards' seq zsets.

use std::collections::BTreeMap;

use doppel_types::Event;
use doppel_types::shard::ShardId;
use redis::Cmd;

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use super::paging::hash_fields;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::store_trait::Appended;

/// The append script's answer for an event it wrote.
const WRITTEN: i64 = 1;
/// The append script's answer for an event whose id its customer already had.
const DUPLICATE: i64 = 2;

/// KEYS: events hash, event seqs zset, ledger, then per event its customer's events zset
/// and event ids hash. ARGV: seq, customer id, event id ("" = none), bytes per event.
/// Returns per event 1 (written), 0 (customer erased) or 2 (duplicate event id).
const APPEND: &str = r"
local out = {}
for i = 1, #ARGV, 4 do
  local n = (i + 3) / 4
  local seq, id, event_id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', KEYS[3], id) == 1 then
    out[n] = 0
  elseif event_id ~= '' and redis.call('HSETNX', KEYS[3 + 2 * n], event_id, seq) == 0 then
    out[n] = 2
  else
    redis.call('HSET', KEYS[1], seq, ARGV[i + 3])
    redis.call('ZADD', KEYS[2], seq, seq)
    redis.call('ZADD', KEYS[2 + 2 * n], seq, seq)
    out[n] = 1
  end
end
return out
";

/// An event of the batch with its position and assigned seq.
struct Numbered {
    position: usize,
    seq: u64,
    event: Event,
}

/// Appends events, dropping those of erased customers and repeated event ids.
pub(super) async fn append_events(store: &RedisStore, events: Vec<Event>) -> Result<Appended> {
    let layout = &store.layout;
    let count = events.len();
    let kept = live_events(store, events).await?;
    let mut live = vec![false; count];
    for (position, _) in &kept {
        live[*position] = true;
    }
    let ledger: Vec<usize> = (0..count).filter(|p| !live[*p]).collect();
    if kept.is_empty() {
        return Ok(Appended {
            last_seq: last_event_seq(store).await?,
            erased: ledger,
            ..Appended::default()
        });
    }
    let mut incr = redis::cmd("INCRBY");
    incr.arg(layout.last_event_seq()).arg(kept.len());
    let last: u64 = store.conn.query(&incr).await?;
    let first = last + 1 - kept.len() as u64;

    let mut by_tag: BTreeMap<Tag, Vec<Numbered>> = BTreeMap::new();
    for (seq, (position, event)) in (first..).zip(kept) {
        by_tag
            .entry(layout.customer_tag(&event.customer_id))
            .or_default()
            .push(Numbered {
                position,
                seq,
                event,
            });
    }
    let mut cmds = Vec::with_capacity(by_tag.len());
    for (&tag, events) in &by_tag {
        let mut keys = vec![
            layout.events(tag),
            layout.event_seqs(tag),
            layout.erased(tag),
        ];
        for n in events {
            keys.push(layout.customer_events(&n.event.customer_id));
            keys.push(layout.customer_event_ids(&n.event.customer_id));
        }
        let mut cmd = eval(APPEND, &keys);
        for n in events {
            cmd.arg(n.seq)
                .arg(&n.event.customer_id)
                .arg(&n.event.event_id)
                .arg(encode("event", &n.event)?);
        }
        cmds.push(cmd);
    }
    let replies = store.conn.exec_grouped(&cmds).await?;
    let mut appended = Appended {
        last_seq: last,
        erased: ledger,
        ..Appended::default()
    };
    for (events, reply) in by_tag.values().zip(replies) {
        let outcomes: Vec<i64> = redis::from_redis_value(reply)
            .map_err(|e| Error::Storage(format!("append script reply: {e}")))?;
        if outcomes.len() != events.len() {
            return Err(Error::Storage(format!(
                "append script answered for {} of {} events",
                outcomes.len(),
                events.len()
            )));
        }
        for (n, outcome) in events.iter().zip(outcomes) {
            match outcome {
                WRITTEN => appended.last_written = appended.last_written.max(Some(n.seq)),
                DUPLICATE => appended.duplicates.push(n.position),
                _ => appended.erased.push(n.position),
            }
        }
    }
    appended.duplicates.sort_unstable();
    appended.erased.sort_unstable();
    Ok(appended)
}

/// The events whose customers are not in the ledger, with their positions in the batch.
async fn live_events(store: &RedisStore, events: Vec<Event>) -> Result<Vec<(usize, Event)>> {
    let layout = &store.layout;
    let ids: Vec<(Tag, String)> = events
        .iter()
        .map(|e| (layout.customer_tag(&e.customer_id), e.customer_id.clone()))
        .collect();
    let ledger = hash_fields(&store.conn, &ids, |tag| layout.erased(tag)).await?;
    Ok(events
        .into_iter()
        .enumerate()
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
    scan_events_of(store, &store.layout.shard_tags(), after_seq, limit).await
}

/// Up to `limit` events of one logical shard's customers after `after_seq`, in seq order.
pub(super) async fn scan_shard_events(
    store: &RedisStore,
    shard: ShardId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    scan_events_of(store, &[Tag::Shard(shard)], after_seq, limit).await
}

/// Up to `limit` events under `tags` after `after_seq`, merged in seq order.
async fn scan_events_of(
    store: &RedisStore,
    tags: &[Tag],
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let layout = &store.layout;
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
