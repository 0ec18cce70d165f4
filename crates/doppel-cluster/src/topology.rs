//! Which node serves which logical shard: the shard map and the live leases in Redis,
//! read into an immutable [`Topology`] that a router swaps in every
//! [`LEASE_RENEW_EVERY`](crate::LEASE_RENEW_EVERY). A shard is routable when its map owner
//! holds a live lease listing it as ready.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use doppel_store::{MemberRecord, RedisStore};
use doppel_types::shard::shard_of;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

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
}

impl TopologyReader {
    /// A reader over `store` for a cluster of `shard_count` logical shards.
    pub fn new(store: RedisStore, shard_count: u32) -> Self {
        Self {
            store,
            shard_count,
            channels: Mutex::default(),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock();
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("node address `{addr}`: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(10))
            .keep_alive_timeout(std::time::Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Reads the leases and the shard map and builds the routing.
    pub async fn read(&self) -> doppel_store::Result<Topology> {
        let members = self.store.live_members().await?;
        let map = self.store.shard_map().await?;
        Ok(self.build(&members, &map))
    }

    fn build(&self, members: &[MemberRecord], map: &BTreeMap<u32, String>) -> Topology {
        let mut nodes: BTreeMap<&str, (Arc<NodeHandle>, &MemberRecord)> = BTreeMap::new();
        for m in members {
            match self.channel(&m.internal_addr) {
                Ok(channel) => {
                    let handle = Arc::new(NodeHandle {
                        node_id: m.node_id.clone(),
                        addr: m.internal_addr.clone(),
                        channel,
                    });
                    nodes.insert(&m.node_id, (handle, m));
                }
                Err(e) => tracing::warn!(node.id = %m.node_id, error = %e, "node not routable"),
            }
        }
        let owners = (0..self.shard_count)
            .map(|shard| {
                let owner = map.get(&shard)?;
                let (handle, record) = nodes.get(owner.as_str())?;
                record
                    .ready_shards
                    .contains(&shard)
                    .then(|| Arc::clone(handle))
            })
            .collect();
        Topology {
            shard_count: self.shard_count,
            owners,
            nodes: nodes.into_values().map(|(h, _)| h).collect(),
        }
    }
}
