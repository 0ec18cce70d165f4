//! Event retention: per logical shard, the oldest events go once an event checkpoint holds
//! what they built (the caller passes the checkpoints' sequence number) and they are older
//! than the retention window — a prefix of the shard's log, one script per page over the
//! shard's tag. Recorded event ids stay, so a retried old event is still a duplicate. The
//! newest sequence number removed is recorded first (`events_compacted_through`).

use super::RedisStore;
use super::connect::eval;
use super::events::scan_shard_events;
use super::layout::Tag;
use crate::error::Result;

/// Events read per shard and page.
const PAGE: usize = 1_000;

/// KEYS: events hash, event seqs zset, then per event its customer's events zset. ARGV:
/// the seqs. Returns how many events it removed.
const REMOVE: &str = r"
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[2 + i], ARGV[i])
end
return removed
";

/// KEYS: the compaction marker. ARGV: a sequence number; the marker becomes the larger.
const MARK: &str = r"
local before = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > before then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
";

/// Removes up to about `limit` events, each shard's prefix up to `through` older than
/// `before_ms`; returns how many were removed.
pub(super) async fn compact_events(
    store: &RedisStore,
    through: u64,
    before_ms: i64,
    limit: usize,
) -> Result<u64> {
    let layout = &store.layout;
    let mut removed = 0u64;
    for shard in 0..layout.logical_shards() {
        let tag = Tag::Shard(shard);
        while (removed as usize) < limit {
            let page = scan_shard_events(store, shard, 0, PAGE).await?;
            let prefix: Vec<_> = page
                .iter()
                .take_while(|(seq, e)| *seq <= through && e.timestamp_ms < before_ms)
                .collect();
            if prefix.is_empty() {
                break;
            }
            // The marker goes first: a crash between the two leaves it ahead of the log,
            // which only makes a node ask for newer checkpoints than it needs.
            let newest = prefix.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
            let mut mark = eval(MARK, &[layout.events_compacted_through()]);
            mark.arg(newest);
            store.conn.query::<()>(&mark).await?;
            let mut keys = vec![layout.events(tag), layout.event_seqs(tag)];
            keys.extend(
                prefix
                    .iter()
                    .map(|(_, e)| layout.customer_events(&e.customer_id)),
            );
            let mut cmd = eval(REMOVE, &keys);
            for (seq, _) in &prefix {
                cmd.arg(*seq);
            }
            let n: u64 = store.conn.query(&cmd).await?;
            removed += n;
            if prefix.len() < page.len() || n == 0 {
                break;
            }
        }
    }
    Ok(removed)
}
