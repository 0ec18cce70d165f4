//! How an engine is set up: logical shards and HNSW parameters.

use doppel_types::shard::DEFAULT_SHARD_COUNT;

/// Engine settings. The shard count is fixed for the lifetime of a deployment (it decides
/// which index holds a customer); the HNSW parameters apply to indexes built from now on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Logical customer shards, one customer index each (≥ 1).
    pub shard_count: u32,
    /// HNSW links per node (upper layers; layer 0 keeps twice as many).
    pub m: usize,
    /// HNSW candidate list size during construction.
    pub ef_construction: usize,
    /// HNSW candidate list size during search (raised to `k` when smaller).
    pub ef_search: usize,
    /// The logical shards this engine starts out holding customers of (a shard node of a
    /// cluster takes more over and hands some off later); `None`: all of them.
    pub owned_shards: Option<Vec<u32>>,
    /// Threads an index build may use (0: every core). Serving keeps the rest while a new
    /// version builds.
    pub build_threads: usize,
}

impl EngineConfig {
    /// Does this configuration start out holding logical shard `shard`?
    pub fn owns_shard(&self, shard: u32) -> bool {
        self.owned_shards
            .as_ref()
            .is_none_or(|owned| owned.contains(&shard))
    }
}

impl Default for EngineConfig {
    /// 16 shards, m = 16, ef_construction = 200, ef_search = 64.
    fn default() -> Self {
        Self {
            shard_count: DEFAULT_SHARD_COUNT,
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            owned_shards: None,
            build_threads: 0,
        }
    }
}
