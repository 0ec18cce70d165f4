//! The typed settings of `doppel serve`, layered defaults → environment
//! (`DOPPEL__SECTION__KEY`) → flags by clap, and validated before any port is bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use doppel_types::shard::DEFAULT_SHARD_COUNT;

/// Default public gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default data directory (the embedded store and index files).
pub const DEFAULT_DATA_DIR: &str = "./doppel-data";
/// Default drain time after SIGTERM, seconds (match the pod's terminationGracePeriod − 5).
pub const DEFAULT_GRACE_SECONDS: u64 = 20;
/// Default number of retired versions kept.
pub const DEFAULT_KEEP_VERSIONS: usize = 5;
/// Default HNSW M.
pub const DEFAULT_M: usize = 16;
/// Default HNSW ef_construction.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Default HNSW ef at query time.
pub const DEFAULT_EF_SEARCH: usize = 64;

/// Which part of the cluster this process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Everything in one process on the embedded store.
    All,
    /// A shard node of a cluster: serves the logical shards it owns to routers.
    Shard,
    /// A stateless router of a cluster: the public API, fanned out to shard nodes.
    Router,
}

/// Flags of `doppel serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Role of this process.
    #[arg(long, value_enum, default_value = "all", env = "DOPPEL__SERVER__ROLE")]
    pub role: Role,
    /// Public gRPC address.
    #[arg(long, default_value = DEFAULT_LISTEN, env = "DOPPEL__SERVER__LISTEN")]
    pub listen: String,
    /// Internal gRPC address of a shard node (routers call it; keep it off the internet).
    #[arg(long, env = "DOPPEL__SERVER__INTERNAL_LISTEN")]
    pub internal_listen: Option<String>,
    /// `host:port` routers use to reach this shard node's internal address (default: the
    /// bound `--internal-listen` address, which must then not be 0.0.0.0).
    #[arg(long, env = "DOPPEL__SERVER__ADVERTISE_INTERNAL")]
    pub advertise_internal: Option<String>,
    /// This shard node's identity, stable across restarts (e.g. the StatefulSet pod name
    /// `doppel-shard-2`): letters, digits, `-`, `_`, `.`, at most 63.
    #[arg(long, env = "DOPPEL__CLUSTER__NODE_ID")]
    pub node_id: Option<String>,
    /// Retired or failed model versions kept after an activation (older ones are deleted
    /// from the store; 0 keeps all).
    #[arg(long, default_value_t = DEFAULT_KEEP_VERSIONS, env = "DOPPEL__MODEL__KEEP_VERSIONS")]
    pub keep_versions: usize,
    /// Threads an index build may use (0: one less than the cores, at least 1 — serving
    /// keeps a core while a new version builds).
    #[arg(long, default_value_t = 0, env = "DOPPEL__INDEX__BUILD_THREADS")]
    pub build_threads: usize,
    /// Directory of the embedded store.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "DOPPEL__STORE__DATA_DIR")]
    pub data_dir: PathBuf,
    /// Seconds in-flight RPCs get after SIGTERM/SIGINT.
    #[arg(long, default_value_t = DEFAULT_GRACE_SECONDS, env = "DOPPEL__SERVER__GRACE_SECONDS")]
    pub grace_seconds: u64,
    /// Number of logical customer shards (fixed for the life of a deployment).
    #[arg(long, default_value_t = DEFAULT_SHARD_COUNT, env = "DOPPEL__INDEX__SHARDS")]
    pub shards: u32,
    /// HNSW M (graph degree).
    #[arg(long, default_value_t = DEFAULT_M, env = "DOPPEL__INDEX__M")]
    pub m: usize,
    /// HNSW ef_construction.
    #[arg(long, default_value_t = DEFAULT_EF_CONSTRUCTION, env = "DOPPEL__INDEX__EF_CONSTRUCTION")]
    pub ef_construction: usize,
    /// HNSW ef at query time.
    #[arg(long, default_value_t = DEFAULT_EF_SEARCH, env = "DOPPEL__INDEX__EF_SEARCH")]
    pub ef_search: usize,
    /// Keep state in Redis (`redis://` or `rediss://`) instead of the embedded store.
    #[arg(long, env = "DOPPEL__STORE__REDIS_URL")]
    pub redis: Option<String>,
    /// The `--redis` URL is one node of a Redis Cluster.
    #[arg(long, env = "DOPPEL__STORE__REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// Redis ACL user (overrides the URL's).
    #[arg(long, env = "DOPPEL__STORE__REDIS_USERNAME")]
    pub redis_username: Option<String>,
    /// Redis password (overrides the URL's).
    #[arg(long, env = "DOPPEL__STORE__REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// For `rediss://`: trust this CA (PEM) instead of the system's roots.
    #[arg(long, env = "DOPPEL__STORE__REDIS_TLS_CA")]
    pub redis_tls_ca: Option<PathBuf>,
    /// For `rediss://` to a server with `tls-auth-clients yes`: the client certificate
    /// (PEM); needs --redis-tls-key.
    #[arg(long, env = "DOPPEL__STORE__REDIS_TLS_CERT")]
    pub redis_tls_cert: Option<PathBuf>,
    /// The key of --redis-tls-cert (PEM).
    #[arg(long, env = "DOPPEL__STORE__REDIS_TLS_KEY")]
    pub redis_tls_key: Option<PathBuf>,
    /// API keys file: `ID ROLE SHA256HEX` a line (`doppel keys new` makes one). Every call
    /// but health then needs a key; re-read on SIGHUP and when the file changes.
    #[arg(long, env = "DOPPEL__AUTH__API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Serve without API keys on an address other than loopback (refused otherwise).
    #[arg(long, env = "DOPPEL__AUTH__ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Cheap calls (offers, profiles, segments, administration) in flight at once; more
    /// get RESOURCE_EXHAUSTED (0: 256 per core).
    #[arg(long, default_value_t = 0, env = "DOPPEL__SERVER__MAX_CHEAP_CALLS")]
    pub max_cheap_calls: usize,
    /// Heavy calls (lookalike audiences, imports, training) in flight at once; more get
    /// RESOURCE_EXHAUSTED (0: 4 per core).
    #[arg(long, default_value_t = 0, env = "DOPPEL__SERVER__MAX_HEAVY_CALLS")]
    pub max_heavy_calls: usize,
    /// How heavy work (audience scans) is scheduled: `idle` (the default) only on CPU time
    /// cheap calls leave (offers keep their latency; heavy calls wait while cheap ones
    /// saturate the cores), `nice` at nice +10 (heavy work keeps a small share of a busy
    /// CPU).
    #[arg(
        long,
        value_enum,
        default_value_t,
        env = "DOPPEL__SERVER__HEAVY_SCHEDULING"
    )]
    pub heavy_scheduling: crate::heavy_priority::HeavyScheduling,
    /// Privacy floor: lookalikes and reach curves from fewer usable seeds are refused with
    /// FAILED_PRECONDITION (0: off). Set it on the router of a cluster.
    #[arg(long, default_value_t = 0, env = "DOPPEL__AUDIENCES__MIN_SEED_COUNT")]
    pub min_seed_count: u64,
    /// Privacy floor: audiences (and reach points) of fewer prospects are refused with
    /// FAILED_PRECONDITION (0: off). Set it on the router of a cluster.
    #[arg(
        long,
        default_value_t = 0,
        env = "DOPPEL__AUDIENCES__MIN_AUDIENCE_SIZE"
    )]
    pub min_audience_size: u64,
    /// Most saved audiences kept; more → RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = doppel_types::saved_audience::DEFAULT_MAX_SAVED_AUDIENCES, env = "DOPPEL__AUDIENCES__MAX_SAVED_AUDIENCES")]
    pub max_saved_audiences: u64,
    /// Most members over every saved audience; more → RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = doppel_types::saved_audience::DEFAULT_MAX_SAVED_MEMBERS, env = "DOPPEL__AUDIENCES__MAX_SAVED_MEMBERS")]
    pub max_saved_members: u64,
    /// A client stream (upserts, events, embedding imports) silent this long ends with
    /// DEADLINE_EXCEEDED; its unfinished batch is dropped.
    #[arg(
        long,
        default_value_t = 60,
        env = "DOPPEL__SERVER__STREAM_IDLE_SECONDS"
    )]
    pub stream_idle_seconds: u64,
    /// How often the event checkpoints that changed (item popularity; each shard's
    /// purchases and impressions) are written, in seconds; a start reads only the events
    /// after them. 0: never (every start replays the whole log).
    #[arg(
        long,
        default_value_t = 300,
        env = "DOPPEL__STORE__EVENT_CHECKPOINT_EVERY"
    )]
    pub event_checkpoint_every: u64,
    /// Days of events kept: older events leave the log once the event checkpoints hold
    /// them (and no experiment's report reads them). Training reads what is kept, so this
    /// is also the training window. 0: keep every event. Needs event checkpoints.
    #[arg(long, default_value_t = 0, env = "DOPPEL__STORE__EVENT_RETENTION_DAYS")]
    pub event_retention_days: u64,
    /// Most model versions loaded at once for a running experiment's arms, counting the
    /// active and rollback versions; an experiment or canary needing more is refused with
    /// FAILED_PRECONDITION.
    #[arg(
        long,
        default_value_t = doppel_node::config::DEFAULT_MAX_LOADED_VERSIONS,
        env = "DOPPEL__EXPERIMENTS__MAX_LOADED_VERSIONS"
    )]
    pub max_loaded_versions: usize,
    /// TLS on the public port: the server's certificate chain (PEM). Needs --tls-key.
    #[arg(long, env = "DOPPEL__TLS__CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "DOPPEL__TLS__KEY")]
    pub tls_key: Option<PathBuf>,
    /// mTLS: every client must present a certificate signed by this CA (PEM). Needs
    /// --tls-cert.
    #[arg(long, env = "DOPPEL__TLS__CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// A second, plaintext port serving only gRPC health, for probes that cannot speak TLS
    /// (the kubelet's).
    #[arg(long, env = "DOPPEL__SERVER__HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Calls per second each API key may make, over every connection of this process;
    /// more get RESOURCE_EXHAUSTED with `retry-after-ms` (0: no limit; needs
    /// --api-keys-file).
    #[arg(long, default_value_t = 0.0, env = "DOPPEL__AUTH__RATE_LIMIT_PER_KEY")]
    pub rate_limit_per_key: f64,
    /// Let a shard node serve its internal port in plaintext on a non-loopback address
    /// (without it, that needs --internal-tls-*): only on a private network.
    #[arg(long, env = "DOPPEL__TLS__ALLOW_PLAINTEXT_INTERNAL")]
    pub allow_plaintext_internal: bool,
    /// mTLS between routers and shard nodes: this process's certificate (PEM). A shard
    /// node serves its internal port with it; a router presents it to the nodes. Needs
    /// --internal-tls-key and --internal-tls-ca.
    #[arg(long, env = "DOPPEL__TLS__INTERNAL_CERT")]
    pub internal_tls_cert: Option<PathBuf>,
    /// The key of --internal-tls-cert (PEM).
    #[arg(long, env = "DOPPEL__TLS__INTERNAL_KEY")]
    pub internal_tls_key: Option<PathBuf>,
    /// The CA (PEM) of the other side: a shard node requires routers' certificates from it,
    /// a router requires the nodes' certificates from it.
    #[arg(long, env = "DOPPEL__TLS__INTERNAL_CA")]
    pub internal_tls_ca: Option<PathBuf>,
    /// Calls a key may make at once after a quiet spell (0: one second's worth).
    #[arg(long, default_value_t = 0.0, env = "DOPPEL__AUTH__RATE_LIMIT_BURST")]
    pub rate_limit_burst: f64,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Role.
    pub role: Role,
    /// Address to bind.
    pub listen: SocketAddr,
    /// Store directory.
    pub data_dir: PathBuf,
    /// Drain time.
    pub grace_period: Duration,
    /// Engine configuration.
    pub engine: doppel_engine::EngineConfig,
    /// Redis instead of the embedded store, when set.
    pub redis: Option<doppel_store::RedisConfig>,
    /// Shard-node settings (role shard).
    pub shard: Option<ShardSettings>,
    /// Retired versions kept.
    pub keep_versions: usize,
    /// The API keys file, when calls need keys.
    pub api_keys_file: Option<PathBuf>,
    /// Concurrent calls admitted per cost class on the public port.
    pub admission: doppel_grpc::admission::AdmissionLimits,
    /// How the heavy-work pool is scheduled.
    pub heavy_scheduling: crate::heavy_priority::HeavyScheduling,
    /// Smallest seed set and audience served.
    pub privacy_floor: doppel_types::PrivacyFloor,
    /// Saved audiences kept.
    pub saved_audience_limits: doppel_types::SavedAudienceLimits,
    /// How long a client stream may stay silent.
    pub stream_idle: Duration,
    /// How often event checkpoints are written (`None`: never).
    pub event_checkpoint_every: Option<Duration>,
    /// How long events are kept (`None`: forever).
    pub event_retention: Option<Duration>,
    /// Most versions loaded at once for an experiment.
    pub max_loaded_versions: usize,
    /// TLS on the public port; none: plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Per-key rate limit; none: unlimited.
    pub key_rate_limit: Option<doppel_grpc::auth::RateLimit>,
    /// The plaintext health-only port.
    pub health_listen: Option<SocketAddr>,
    /// The router ↔ shard-node mTLS.
    pub internal_tls: crate::settings_tls::InternalTls,
}

/// What a shard node needs besides the common settings.
#[derive(Clone, Debug)]
pub struct ShardSettings {
    /// Internal address to bind.
    pub internal_listen: SocketAddr,
    /// Address routers use (`None`: the bound one).
    pub advertise: Option<String>,
    /// The node id.
    pub node_id: String,
}

/// Is `id` a usable node id?
fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A setting that cannot be used (exit code 64).
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct SettingsError {
    /// Flag name.
    pub name: &'static str,
    /// Why.
    pub reason: String,
}

pub(crate) fn bad(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        reason: reason.into(),
    }
}

impl ServeArgs {
    fn shard_settings(&self) -> Result<ShardSettings, SettingsError> {
        let internal = self
            .internal_listen
            .as_deref()
            .ok_or_else(|| bad("--internal-listen", "role shard needs an internal address"))?;
        let internal_listen: SocketAddr = internal
            .parse()
            .map_err(|e| bad("--internal-listen", format!("`{internal}`: {e}")))?;
        let node_id = self
            .node_id
            .clone()
            .ok_or_else(|| bad("--node-id", "role shard needs a node id"))?;
        if !valid_node_id(&node_id) {
            return Err(bad(
                "--node-id",
                format!("`{node_id}`: 1-63 letters, digits, `-`, `_` or `.`"),
            ));
        }
        if self.advertise_internal.is_none() && internal_listen.ip().is_unspecified() {
            return Err(bad(
                "--advertise-internal",
                "needed when --internal-listen binds every interface",
            ));
        }
        Ok(ShardSettings {
            internal_listen,
            advertise: self.advertise_internal.clone(),
            node_id,
        })
    }

    /// Checks every setting; pure, so tests can feed it values.
    pub fn validate(&self) -> Result<Settings, SettingsError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| bad("--listen", format!("`{}`: {e}", self.listen)))?;
        if self.shards == 0 || self.shards > 4096 {
            return Err(bad("--shards", "must be 1..=4096"));
        }
        if !(2..=256).contains(&self.m) {
            return Err(bad("--m", "must be 2..=256"));
        }
        if !(1..=4096).contains(&self.ef_construction) {
            return Err(bad("--ef-construction", "must be 1..=4096"));
        }
        if !(1..=4096).contains(&self.ef_search) {
            return Err(bad("--ef-search", "must be 1..=4096"));
        }
        if self.grace_seconds > 3600 {
            return Err(bad("--grace-seconds", "must be ≤ 3600"));
        }
        let defaults = doppel_grpc::admission::AdmissionLimits::from_cores();
        let admission = doppel_grpc::admission::AdmissionLimits {
            cheap: match self.max_cheap_calls {
                0 => defaults.cheap,
                n if n > 1_000_000 => return Err(bad("--max-cheap-calls", "must be ≤ 1000000")),
                n => n,
            },
            heavy: match self.max_heavy_calls {
                0 => defaults.heavy,
                n if n > 100_000 => return Err(bad("--max-heavy-calls", "must be ≤ 100000")),
                n => n,
            },
        };
        if self.min_seed_count > doppel_types::privacy_floor::MAX_FLOOR {
            return Err(bad("--min-seed-count", "must be ≤ 10000000"));
        }
        if self.min_audience_size > doppel_types::privacy_floor::MAX_FLOOR {
            return Err(bad("--min-audience-size", "must be ≤ 10000000"));
        }
        let privacy_floor = doppel_types::PrivacyFloor {
            min_seed_count: self.min_seed_count,
            min_audience_size: self.min_audience_size,
        };
        if !(1..=10_000).contains(&self.max_saved_audiences) {
            return Err(bad("--max-saved-audiences", "must be 1..=10000"));
        }
        if !(1..=100_000_000).contains(&self.max_saved_members) {
            return Err(bad("--max-saved-members", "must be 1..=100000000"));
        }
        if !(1..=3600).contains(&self.stream_idle_seconds) {
            return Err(bad("--stream-idle-seconds", "must be 1..=3600"));
        }
        if self.event_checkpoint_every > 86_400 {
            return Err(bad("--event-checkpoint-every", "must be 0..=86400 seconds"));
        }
        let max_days = doppel_node::event_retention::MAX_EVENT_RETENTION_DAYS;
        if self.event_retention_days > max_days {
            return Err(bad(
                "--event-retention-days",
                format!("must be 0..={max_days} days"),
            ));
        }
        if self.event_retention_days > 0 && self.event_checkpoint_every == 0 {
            return Err(bad(
                "--event-retention-days",
                "needs event checkpoints (--event-checkpoint-every > 0): events go only once \
                 a checkpoint holds them",
            ));
        }
        if !(2..=16).contains(&self.max_loaded_versions) {
            return Err(bad("--max-loaded-versions", "must be 2..=16"));
        }
        let tls = self.tls()?;
        let key_rate_limit = self.key_rate_limit()?;
        let health_listen = self.health_listen(listen)?;
        let saved_audience_limits = doppel_types::SavedAudienceLimits {
            max_audiences: self.max_saved_audiences,
            max_members: self.max_saved_members,
        };
        let redis_tls = self.redis_tls()?;
        let redis = match &self.redis {
            Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
                return Err(bad("--redis", "must start with redis:// or rediss://"));
            }
            Some(url) => {
                let mut config = if self.redis_cluster {
                    doppel_store::RedisConfig::cluster(std::slice::from_ref(url))
                } else {
                    doppel_store::RedisConfig::standalone(url)
                };
                config.username = self.redis_username.clone();
                config.password = self.redis_password.clone();
                config.tls = redis_tls.clone();
                config.logical_shards = self.shards;
                Some(config)
            }
            None if self.redis_cluster => {
                return Err(bad("--redis-cluster", "needs --redis URL"));
            }
            None => None,
        };
        let shard = match self.role {
            Role::Shard => Some(self.shard_settings()?),
            Role::All | Role::Router => None,
        };
        let internal_tls = self.internal_tls()?;
        // The internal port serves the whole API without keys: in plaintext only on
        // loopback, or when told it is a private network.
        if let Some(shard) = &shard
            && internal_tls.server.is_none()
            && !shard.internal_listen.ip().is_loopback()
            && !self.allow_plaintext_internal
        {
            return Err(bad(
                "--internal-tls-cert",
                format!(
                    "--internal-listen {} is not a loopback address: give --internal-tls-cert/-key/-ca \
                     (mTLS with the routers), or --allow-plaintext-internal on a private network",
                    shard.internal_listen
                ),
            ));
        }
        if self.role != Role::All && redis.is_none() {
            return Err(bad(
                "--redis",
                "roles shard and router keep their state in Redis: set --redis URL",
            ));
        }
        // Safe default: a public port open to the network needs keys, unless told otherwise.
        // (A shard node's public port serves health only; its internal port is for routers.)
        if self.role != Role::Shard
            && !listen.ip().is_loopback()
            && self.api_keys_file.is_none()
            && !self.allow_unauthenticated
        {
            return Err(bad(
                "--api-keys-file",
                format!(
                    "{listen} is not a loopback address: give an API keys file (doppel keys new \
                     makes keys), or --allow-unauthenticated to serve without keys"
                ),
            ));
        }
        let build_threads = match self.build_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
            n if n > 1024 => return Err(bad("--build-threads", "must be ≤ 1024")),
            n => n,
        };
        Ok(Settings {
            admission,
            heavy_scheduling: self.heavy_scheduling,
            privacy_floor,
            saved_audience_limits,
            stream_idle: Duration::from_secs(self.stream_idle_seconds),
            event_checkpoint_every: (self.event_checkpoint_every > 0)
                .then(|| Duration::from_secs(self.event_checkpoint_every)),
            event_retention: (self.event_retention_days > 0)
                .then(|| Duration::from_secs(self.event_retention_days * 86_400)),
            max_loaded_versions: self.max_loaded_versions,
            tls,
            key_rate_limit,
            health_listen,
            internal_tls,
            api_keys_file: self.api_keys_file.clone(),
            keep_versions: self.keep_versions,
            shard,
            role: self.role,
            listen,
            data_dir: self.data_dir.clone(),
            grace_period: Duration::from_secs(self.grace_seconds),
            engine: doppel_engine::EngineConfig {
                shard_count: self.shards,
                m: self.m,
                ef_construction: self.ef_construction,
                ef_search: self.ef_search,
                owned_shards: None,
                build_threads,
            },
            redis,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Wrapper::parse_from(std::iter::once("doppel").chain(args.iter().copied())).serve
    }

    #[test]
    fn defaults_are_valid() {
        let s = parse(&[]).validate().unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.engine.shard_count, DEFAULT_SHARD_COUNT);
    }

    #[test]
    fn a_public_address_needs_keys_or_an_explicit_opt_out() {
        let e = parse(&["--listen", "0.0.0.0:50051"])
            .validate()
            .unwrap_err();
        assert_eq!(e.name, "--api-keys-file");
        assert!(
            parse(&["--listen", "0.0.0.0:50051", "--allow-unauthenticated"])
                .validate()
                .is_ok()
        );
        let with_keys = parse(&["--listen", "0.0.0.0:50051", "--api-keys-file", "/k"])
            .validate()
            .unwrap();
        assert_eq!(with_keys.api_keys_file, Some(PathBuf::from("/k")));
        assert!(parse(&["--listen", "[::1]:50051"]).validate().is_ok());
    }

    #[test]
    fn cluster_roles_need_their_flags() {
        let shard = |extra: &[&str]| {
            let mut args = vec!["--role", "shard", "--redis", "redis://127.0.0.1:6379"];
            args.extend_from_slice(extra);
            parse(&args).validate()
        };
        assert_eq!(shard(&[]).unwrap_err().name, "--internal-listen");
        assert_eq!(
            shard(&["--internal-listen", "127.0.0.1:0"])
                .unwrap_err()
                .name,
            "--node-id"
        );
        let ok = shard(&[
            "--internal-listen",
            "127.0.0.1:0",
            "--node-id",
            "doppel-shard-1",
        ]);
        assert_eq!(ok.unwrap().shard.unwrap().node_id, "doppel-shard-1");
        let spaced = shard(&["--internal-listen", "127.0.0.1:0", "--node-id", "a b"]);
        assert_eq!(spaced.unwrap_err().name, "--node-id");
        assert_eq!(
            shard(&["--internal-listen", "0.0.0.0:1", "--node-id", "0"])
                .unwrap_err()
                .name,
            "--advertise-internal"
        );
        assert_eq!(
            parse(&["--role", "router"]).validate().unwrap_err().name,
            "--redis"
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert_eq!(
            parse(&["--listen", "nope"]).validate().unwrap_err().name,
            "--listen"
        );
        assert_eq!(parse(&["--m", "999"]).validate().unwrap_err().name, "--m");
        assert_eq!(
            parse(&["--shards", "0"]).validate().unwrap_err().name,
            "--shards"
        );
        assert_eq!(
            parse(&["--min-audience-size", "20000000"])
                .validate()
                .unwrap_err()
                .name,
            "--min-audience-size"
        );
        assert_eq!(
            parse(&["--event-checkpoint-every", "86401"])
                .validate()
                .unwrap_err()
                .name,
            "--event-checkpoint-every"
        );
        for bad_retention in [
            &["--event-retention-days", "36501"][..],
            &[
                "--event-retention-days",
                "30",
                "--event-checkpoint-every",
                "0",
            ][..],
        ] {
            assert_eq!(
                parse(bad_retention).validate().unwrap_err().name,
                "--event-retention-days"
            );
        }
        let kept = parse(&["--event-retention-days", "30"]).validate().unwrap();
        assert_eq!(kept.event_retention, Some(Duration::from_secs(30 * 86_400)));
        let floor = parse(&["--min-seed-count", "100", "--min-audience-size", "1000"])
            .validate()
            .unwrap()
            .privacy_floor;
        assert_eq!((floor.min_seed_count, floor.min_audience_size), (100, 1000));
    }

    #[test]
    fn security_flags_that_would_do_nothing_are_refused() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tls");
        let cert = format!("{fixtures}/server.pem");
        let key = format!("{fixtures}/server.key");
        let ca = format!("{fixtures}/ca.pem");
        let shard = [
            "--role",
            "shard",
            "--redis",
            "redis://127.0.0.1:6379",
            "--node-id",
            "s0",
        ];
        let refused = |args: &[&str]| parse(args).validate().unwrap_err().name;
        // A shard node on a non-loopback internal address needs mTLS or the opt-out.
        let mut open = shard.to_vec();
        open.extend([
            "--internal-listen",
            "0.0.0.0:7101",
            "--advertise-internal",
            "h:7101",
        ]);
        assert_eq!(refused(&open), "--internal-tls-cert");
        let mut allowed = open.clone();
        allowed.push("--allow-plaintext-internal");
        assert!(parse(&allowed).validate().is_ok());
        let mut secured = open.clone();
        secured.extend([
            "--internal-tls-cert",
            &cert,
            "--internal-tls-key",
            &key,
            "--internal-tls-ca",
            &ca,
        ]);
        assert!(
            parse(&secured)
                .validate()
                .unwrap()
                .internal_tls
                .server
                .is_some()
        );
        let mut partial = open.clone();
        partial.extend(["--internal-tls-cert", &cert, "--internal-tls-ca", &ca]);
        assert_eq!(refused(&partial), "--internal-tls-key");
        // Flags a shard node would ignore.
        let mut local = shard.to_vec();
        local.extend(["--internal-listen", "127.0.0.1:7101"]);
        let with = |extra: &[&str]| {
            let mut args = local.clone();
            args.extend(extra);
            refused(&args)
        };
        assert_eq!(
            with(&["--tls-cert", &cert, "--tls-key", &key]),
            "--tls-cert"
        );
        assert_eq!(
            with(&["--health-listen", "127.0.0.1:7201"]),
            "--health-listen"
        );
        // A key that does not fit its certificate.
        let client_key = format!("{fixtures}/client.key");
        assert_eq!(
            refused(&["--tls-cert", &cert, "--tls-key", &client_key]),
            "--tls-key"
        );
        assert_eq!(refused(&["--tls-client-ca", &ca]), "--tls-client-ca");
        // rediss:// certificates without a rediss:// URL.
        assert_eq!(refused(&["--redis-tls-ca", &ca]), "--redis-tls-ca");
        assert_eq!(
            refused(&["--redis", "redis://127.0.0.1:6379", "--redis-tls-ca", &ca]),
            "--redis-tls-ca"
        );
        // Rate limits need keys; the health port is another port.
        assert_eq!(
            refused(&["--rate-limit-per-key", "10"]),
            "--rate-limit-per-key"
        );
        assert_eq!(
            refused(&["--rate-limit-per-key", "1e-9", "--api-keys-file", "/k"]),
            "--rate-limit-per-key"
        );
        assert_eq!(
            refused(&[
                "--listen",
                "127.0.0.1:50051",
                "--health-listen",
                "127.0.0.1:50051"
            ]),
            "--health-listen"
        );
    }
}
