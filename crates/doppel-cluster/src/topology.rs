//! Which node serves which logical shard: the shard map and the live leases in Redis,
//! read into an immutable [`Topology`] that a router swaps in every
//! [`LEASE_RENEW_EVERY`](crate::LEASE_RENEW_EVERY). A shard is routed to its map owner when
//! that owner holds a live lease listing it as ready; otherwise to a live node still listing
//! it as ready (the previous owner during a move); otherwise it has no live node.
//!
//! The map is read before the leases. A node claiming a shard writes its lease (listing the
//! shard) before the claim, so a router that sees the claim also sees the new owner ready;
//! one that read the map just before the claim sees the previous owner, which keeps serving
//! the shard until every router has re-read the map. Reading the two the other way round
//! left a window where the claim was visible but the new owner's lease was not: the shard
//! had no live node for a whole refresh interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use doppel_store::{MemberRecord, RedisStore};
use doppel_types::shard::shard_of;
use parking_lot::Mutex;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A live shard node and a (lazily connecting) channel to it.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    /// Its identity.
    pub node_id: String,
    /// `host:port` of its internal API.
    pub addr: String,
    /// The channel (shared by every request; reconnects by itself).
    pub channel: Channel,
}

/// A snapshot of the cluster's routing.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Logical shards.
    pub shard_count: u32,
    /// The node serving each shard (`None`: no live owner).
    pub owners: Vec<Option<Arc<NodeHandle>>>,
    /// Live nodes, in node-id order.
    pub nodes: Vec<Arc<NodeHandle>>,
}

impl Topology {
    /// The node serving customer `id`, if its shard has a live owner.
    pub fn owner_of(&self, id: &str) -> Option<&Arc<NodeHandle>> {
        self.owners
            .get(shard_of(id, self.shard_count.max(1)) as usize)?
            .as_ref()
    }

    /// The shards each live node serves, in node order (nodes serving none left out).
    pub fn shards_by_node(&self) -> Vec<(Arc<NodeHandle>, Vec<u32>)> {
        let mut by: BTreeMap<&str, (Arc<NodeHandle>, Vec<u32>)> = BTreeMap::new();
        for (shard, owner) in self.owners.iter().enumerate() {
            if let Some(node) = owner {
                by.entry(&node.node_id)
                    .or_insert_with(|| (Arc::clone(node), Vec::new()))
                    .1
                    .push(shard as u32);
            }
        }
        by.into_values().collect()
    }

    /// Shards with a live owner.
    pub fn routable_shards(&self) -> u32 {
        self.owners.iter().filter(|o| o.is_some()).count() as u32
    }
}

/// Reads topologies, keeping one channel per node address across refreshes.
pub struct TopologyReader {
    store: RedisStore,
    shard_count: u32,
    channels: Mutex<HashMap<String, Channel>>,
    /// mTLS to the nodes' internal ports; none: plaintext.
    tls: Option<ClientTlsConfig>,
}

impl TopologyReader {
    /// A reader over `store` for a cluster of `shard_count` logical shards, dialling nodes
    /// over mTLS when `tls` is given.
    pub fn new(store: RedisStore, shard_count: u32, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            store,
            shard_count,
            channels: Mutex::default(),
            tls,
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock();
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("node address `{addr}`: {e}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("node address `{addr}`: TLS: {e}"))?;
        }
        let endpoint = endpoint
            .connect_timeout(std::time::Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(10))
            .keep_alive_timeout(std::time::Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Reads the shard map, then the leases, and builds the routing.
    pub async fn read(&self) -> doppel_store::Result<Topology> {
        let map = self.store.shard_map().await?;
        let members = self.store.live_members().await?;
        Ok(self.build(&members, &map))
    }

    fn build(&self, members: &[MemberRecord], map: &BTreeMap<u32, String>) -> Topology {
        let mut nodes: BTreeMap<&str, Arc<NodeHandle>> = BTreeMap::new();
        let mut routable = Vec::new();
        for m in members {
            match self.channel(&m.internal_addr) {
                Ok(channel) => {
                    let handle = Arc::new(NodeHandle {
                        node_id: m.node_id.clone(),
                        addr: m.internal_addr.clone(),
                        channel,
                    });
                    nodes.insert(&m.node_id, handle);
                    routable.push(m.clone());
                }
                Err(e) => tracing::warn!(node.id = %m.node_id, error = %e, "node not routable"),
            }
        }
        let owners = route(self.shard_count, &routable, map)
            .into_iter()
            .map(|owner| owner.and_then(|id| nodes.get(id.as_str()).cloned()))
            .collect();
        Topology {
            shard_count: self.shard_count,
            owners,
            nodes: nodes.into_values().collect(),
        }
    }
}

/// The node each of `shard_count` shards is routed to: its map owner when that owner's
/// lease lists it as ready, else the first live node (in node-id order) listing it as
/// ready, else none.
fn route(
    shard_count: u32,
    members: &[MemberRecord],
    map: &BTreeMap<u32, String>,
) -> Vec<Option<String>> {
    let mut by_id: Vec<&MemberRecord> = members.iter().collect();
    by_id.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let ready = |m: &MemberRecord, shard: u32| m.ready_shards.contains(&shard);
    (0..shard_count)
        .map(|shard| {
            let owner = map.get(&shard);
            by_id
                .iter()
                .find(|m| Some(&m.node_id) == owner && ready(m, shard))
                .or_else(|| by_id.iter().find(|m| ready(m, shard)))
                .map(|m| m.node_id.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, ready: &[u32]) -> MemberRecord {
        MemberRecord {
            node_id: id.into(),
            internal_addr: format!("{id}:1"),
            ready_shards: ready.to_vec(),
            applied_seq: 0,
        }
    }

    #[test]
    fn a_shard_goes_to_its_ready_map_owner_else_to_a_node_still_serving_it() {
        let map: BTreeMap<u32, String> = [
            (0, "b".into()),
            (1, "b".into()),
            (2, "gone".into()),
            (3, "a".into()),
        ]
        .into();
        // b claimed 0 and 1 but only lists 0 as ready yet; a still serves 1; nobody serves 2;
        // 3's owner is not ready and nobody else serves it.
        let members = [member("b", &[0]), member("a", &[0, 1])];
        assert_eq!(
            route(5, &members, &map),
            [Some("b".into()), Some("a".into()), None, None, None]
        );
    }
}
