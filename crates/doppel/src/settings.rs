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

fn bad(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        reason: reason.into(),
    }
}

impl ServeArgs {
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
                Some(config)
            }
            None if self.redis_cluster => {
                return Err(bad("--redis-cluster", "needs --redis URL"));
            }
            None => None,
        };
        Ok(Settings {
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
    }
}
