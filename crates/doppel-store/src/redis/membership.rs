//! Cluster membership in Redis: each shard node holds a lease (a key with a TTL it keeps
//! renewing) naming where routers reach it and which logical shards it serves, and claims
//! those shards in the shard map (`shard → node id`). A router routes a shard to its
//! map owner while that owner's lease is alive and says the shard is ready.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{global}:members` | set | node ids that ever held a lease (expired ones are pruned) |
//! | `P:{global}:member:<node id>` | string, TTL | the lease: [`MemberRecord`], tab-separated |
//! | `P:{global}:shard_map` | hash | logical shard → owning node id |
//! | `P:{global}:shard_count` | string | the cluster's number of logical shards (set once) |

use std::collections::BTreeMap;
use std::time::Duration;

use super::RedisStore;
use crate::error::{Error, Result};

/// What a shard node's lease says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The node's identity (stable across restarts, e.g. the StatefulSet ordinal).
    pub node_id: String,
    /// `host:port` of its internal shard API.
    pub internal_addr: String,
    /// Logical shards it has loaded and serves.
    pub ready_shards: Vec<u32>,
    /// Its event-log follower's position (every event up to it applied): event retention
    /// removes nothing a live node has not read. Kept beside the record under its own
    /// key, so nodes of an older release still read the record; 0 when none was written.
    pub applied_seq: u64,
}

impl MemberRecord {
    fn encode(&self) -> String {
        let shards: Vec<String> = self.ready_shards.iter().map(u32::to_string).collect();
        format!(
            "{}\t{}\t{}",
            self.node_id,
            self.internal_addr,
            shards.join(",")
        )
    }

    fn decode(text: &str) -> Result<Self> {
        let bad = || Error::Storage(format!("malformed member record `{text}`"));
        let mut parts = text.splitn(3, '\t');
        let node_id = parts.next().ok_or_else(bad)?.to_owned();
        let internal_addr = parts.next().ok_or_else(bad)?.to_owned();
        let shards = parts.next().ok_or_else(bad)?;
        let ready_shards = shards
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        Ok(Self {
            node_id,
            internal_addr,
            ready_shards,
            applied_seq: 0,
        })
    }
}

impl RedisStore {
    /// Writes (or renews) `record`'s lease for `ttl`, and claims `claims` in the shard map.
    pub async fn renew_lease(
        &self,
        record: &MemberRecord,
        claims: &[u32],
        ttl: Duration,
    ) -> Result<()> {
        let mut cmds = Vec::new();
        let mut set = redis::cmd("SET");
        set.arg(self.layout.member(&record.node_id))
            .arg(record.encode())
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        cmds.push(set);
        let mut applied = redis::cmd("SET");
        applied
            .arg(self.layout.member_applied(&record.node_id))
            .arg(record.applied_seq)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        cmds.push(applied);
        let mut add = redis::cmd("SADD");
        add.arg(self.layout.members()).arg(&record.node_id);
        cmds.push(add);
        if !claims.is_empty() {
            let mut claim = redis::cmd("HSET");
            claim.arg(self.layout.shard_map());
            for shard in claims {
                claim.arg(shard).arg(&record.node_id);
            }
            cmds.push(claim);
        }
        self.conn.exec_grouped(&cmds).await.map(|_| ())
    }

    /// Ends a node's lease at once (a draining node), so routers stop sending to it.
    pub async fn drop_lease(&self, node_id: &str) -> Result<()> {
        let mut del = redis::cmd("DEL");
        del.arg(self.layout.member(node_id));
        self.conn.query::<i64>(&del).await.map(|_| ())
    }

    /// The nodes whose lease is alive, in node-id order.
    pub async fn live_members(&self) -> Result<Vec<MemberRecord>> {
        let mut smembers = redis::cmd("SMEMBERS");
        smembers.arg(self.layout.members());
        let mut ids: Vec<String> = self.conn.query(&smembers).await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for id in &ids {
            get.arg(self.layout.member(id));
        }
        let leases: Vec<Option<String>> = self.conn.query(&get).await?;
        let mut get_applied = redis::cmd("MGET");
        for id in &ids {
            get_applied.arg(self.layout.member_applied(id));
        }
        let applied: Vec<Option<u64>> = self.conn.query(&get_applied).await?;
        let mut live = Vec::new();
        for ((id, lease), applied) in ids.iter().zip(leases).zip(applied) {
            match lease {
                Some(text) => live.push(MemberRecord {
                    applied_seq: applied.unwrap_or(0),
                    ..MemberRecord::decode(&text)?
                }),
                None => {
                    let mut srem = redis::cmd("SREM");
                    srem.arg(self.layout.members()).arg(id);
                    self.conn.query::<i64>(&srem).await?;
                }
            }
        }
        Ok(live)
    }

    /// Records the cluster's number of logical shards on first use and checks it after: a
    /// node or router started with another `--shards` would route customers to the wrong
    /// shards. Returns the recorded count ([`Error::Storage`] on a mismatch).
    pub async fn check_shard_count(&self, shard_count: u32) -> Result<u32> {
        let mut set = redis::cmd("SET");
        set.arg(self.layout.shard_count())
            .arg(shard_count)
            .arg("NX");
        self.conn.query::<Option<String>>(&set).await?;
        let mut get = redis::cmd("GET");
        get.arg(self.layout.shard_count());
        let recorded: Option<u32> = self.conn.query(&get).await?;
        match recorded {
            Some(n) if n == shard_count => Ok(n),
            Some(n) => Err(Error::Storage(format!(
                "this cluster uses {n} logical shards; started with {shard_count} (--shards must match on every node and router)"
            ))),
            None => Err(Error::Storage("the shard count vanished from Redis".into())),
        }
    }

    /// The owners the shard map names for `shards` (in their order; `None`: unclaimed).
    /// One `HMGET`: cheap enough to run after every write a shard node acknowledges.
    pub async fn shard_owners(&self, shards: &[u32]) -> Result<Vec<Option<String>>> {
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(self.layout.shard_map());
        for shard in shards {
            hmget.arg(shard);
        }
        self.conn.query(&hmget).await
    }

    /// The shard map: logical shard → owning node id.
    pub async fn shard_map(&self) -> Result<BTreeMap<u32, String>> {
        let mut hgetall = redis::cmd("HGETALL");
        hgetall.arg(self.layout.shard_map());
        let raw: BTreeMap<String, String> = self.conn.query(&hgetall).await?;
        raw.into_iter()
            .map(|(shard, node)| {
                shard
                    .parse()
                    .map(|s| (s, node))
                    .map_err(|_| Error::Storage(format!("malformed shard map entry `{shard}`")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let record = MemberRecord {
            node_id: "doppel-shard-1".into(),
            internal_addr: "10.0.0.7:50061".into(),
            ready_shards: vec![1, 3, 5],
            applied_seq: 0,
        };
        assert_eq!(MemberRecord::decode(&record.encode()).unwrap(), record);
        // The format older releases read: the position is kept under a key of its own.
        assert_eq!(record.encode(), "doppel-shard-1\t10.0.0.7:50061\t1,3,5");
        let empty = MemberRecord {
            ready_shards: vec![],
            ..record
        };
        assert_eq!(MemberRecord::decode(&empty.encode()).unwrap(), empty);
        assert!(MemberRecord::decode("no tabs").is_err());
    }
}
