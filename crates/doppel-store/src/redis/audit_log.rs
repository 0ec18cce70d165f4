//! The audit log under `{global}`: a hash of postcard events by seq and a sorted set of
//! seqs for paging, appended by one script that also drops the oldest past the bound.

use doppel_types::AuditEvent;
use doppel_types::audit::MAX_AUDIT_EVENTS;

use super::RedisStore;
use super::connect::eval;
use crate::codec::{decode, encode};
use crate::error::Result;

/// KEYS: seq counter, events hash, seqs zset. ARGV: event bytes (stored with seq 0: the
/// hash field is the seq, and reads fill it in), max events.
const APPEND: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, seq)
if redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)
  redis.call('ZREM', KEYS[3], oldest[1])
  redis.call('HDEL', KEYS[2], oldest[1])
end
return seq
";

/// Appends `event`; answers its seq. The stored record carries seq 0 (the key is the
/// seq; reads fill it in).
pub(super) async fn append(store: &RedisStore, event: &AuditEvent) -> Result<u64> {
    let layout = &store.layout;
    let keys = [
        layout.audit_seq(),
        layout.audit_events(),
        layout.audit_seqs(),
    ];
    let record = AuditEvent {
        seq: 0,
        ..event.clone()
    };
    let mut cmd = eval(APPEND, &keys);
    cmd.arg(encode("audit event", &record)?)
        .arg(MAX_AUDIT_EVENTS);
    let seq: u64 = store.conn.query(&cmd).await?;
    Ok(seq)
}

/// Up to `limit` events after `after`, oldest first.
pub(super) async fn events(
    store: &RedisStore,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEvent>> {
    let layout = &store.layout;
    let mut range = redis::cmd("ZRANGEBYSCORE");
    range
        .arg(layout.audit_seqs())
        .arg(format!("({after}"))
        .arg("+inf")
        .arg("LIMIT")
        .arg(0)
        .arg(limit);
    let seqs: Vec<u64> = store.conn.query(&range).await?;
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut get = redis::cmd("HMGET");
    get.arg(layout.audit_events());
    for seq in &seqs {
        get.arg(seq);
    }
    let records: Vec<Option<Vec<u8>>> = store.conn.query(&get).await?;
    let mut out = Vec::with_capacity(seqs.len());
    for (seq, bytes) in seqs.into_iter().zip(records) {
        if let Some(bytes) = bytes {
            let mut event: AuditEvent = decode("audit event", &seq.to_string(), &bytes)?;
            event.seq = seq;
            out.push(event);
        }
    }
    Ok(out)
}
