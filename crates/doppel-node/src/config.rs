//! How a node is set up.

use std::time::Duration;

use doppel_engine::EngineConfig;

/// How often a single node rewrites snapshots that fold-in made stale.
pub const DEFAULT_SNAPSHOT_REFRESH: Duration = Duration::from_secs(30);

/// Default of [`NodeConfig::max_loaded_versions`].
pub const DEFAULT_MAX_LOADED_VERSIONS: usize = 4;

/// How a node is set up.
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    /// Engine settings (shards, HNSW parameters).
    pub engine: EngineConfig,
    /// Where version snapshots live (`<dir>/<version>/`); none: always build from the store.
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// Retired or failed versions kept after an activation (0: keep all); older ones are
    /// deleted from the store.
    pub keep_versions: usize,
    /// How often a snapshot dropped by fold-in is written again (zero: the default,
    /// [`DEFAULT_SNAPSHOT_REFRESH`]).
    pub snapshot_refresh: Duration,
    /// Smallest seed set and audience served (single node; a router checks its own).
    pub privacy_floor: doppel_types::PrivacyFloor,
    /// How many saved audiences, and members over all of them, are kept.
    pub saved_audience_limits: doppel_types::SavedAudienceLimits,
    /// How long a client stream may stay silent before the call ends (zero: 60 s).
    pub stream_idle: Duration,
    /// How often the event checkpoints that changed are written (`None`: never; the
    /// server's default is [`DEFAULT_EVENT_CHECKPOINT_EVERY`](crate::event_checkpoints::DEFAULT_EVENT_CHECKPOINT_EVERY)).
    /// A single node also writes them when it stops.
    pub event_checkpoint_every: Option<Duration>,
    /// Events older than this go once the event checkpoints hold them
    /// (`--event-retention-days`; `None`: kept forever). See
    /// [`event_retention`](crate::event_retention).
    pub event_retention: Option<Duration>,
    /// Most versions loaded at once for an experiment's arms, counting the active and
    /// rollback versions (0: [`DEFAULT_MAX_LOADED_VERSIONS`]).
    pub max_loaded_versions: usize,
}
