//! [`RedisConfig`]: where the Redis store connects and how patiently.

use std::time::Duration;

/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "doppel";
/// Default time to establish one connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time to wait for one reply.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of reconnection attempts (exponential backoff from 100 ms, capped at
/// 1 s: about 5 s of outage is bridged before requests fail again).
pub const DEFAULT_RECONNECT_RETRIES: usize = 6;

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port[/db]` or `rediss://...` (TLS, feature `redis-tls`): the server, or
    /// one node of the cluster.
    pub url: String,
    /// Talk to a Redis Cluster; `url` and [`Self::cluster_seeds`] are seed nodes.
    pub cluster: bool,
    /// More cluster seed nodes (cluster mode only), tried when `url` is down.
    pub cluster_seeds: Vec<String>,
    /// ACL user name; overrides one in the URL.
    pub username: Option<String>,
    /// Password; overrides one in the URL.
    pub password: Option<String>,
    /// Prefix of every key, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
    /// The deployment's number of logical customer shards (`--shards`): customer keys
    /// carry the hash tag of their logical shard, so a node taking a shard over reads
    /// only that shard's keys.
    pub logical_shards: u32,
    /// Time to establish one connection.
    pub connect_timeout: Duration,
    /// Time to wait for one reply; past it the call fails with `Unavailable`.
    pub response_timeout: Duration,
    /// Reconnection attempts after a connection loss (standalone), or retries of one
    /// request (cluster: redirects, reconnects, `TRYAGAIN`) before it fails.
    pub reconnect_retries: usize,
    /// For `rediss://`: the CA to trust instead of the system's, and a client certificate
    /// for servers that require one (`tls-auth-clients yes`).
    pub tls: RedisTls,
}

/// PEM material of `rediss://` connections (all empty: the system's roots, no client
/// certificate).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// The CA (PEM) the server's certificate must chain to; none: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM).
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// Nothing beyond the defaults.
    pub fn is_default(&self) -> bool {
        self.ca_pem.is_none() && self.client_pem.is_none()
    }
}

impl RedisConfig {
    /// A standalone server at `url`, with the defaults.
    pub fn standalone(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster: false,
            cluster_seeds: Vec::new(),
            username: None,
            password: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            logical_shards: doppel_types::shard::DEFAULT_SHARD_COUNT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            tls: RedisTls::default(),
        }
    }

    /// A Redis Cluster reached through the seed nodes `urls` (at least one).
    pub fn cluster(urls: &[String]) -> Self {
        let mut config = Self::standalone(urls.first().cloned().unwrap_or_default());
        config.cluster = true;
        config.cluster_seeds = urls.iter().skip(1).cloned().collect();
        config
    }

    /// Every seed node: `url` first.
    pub(crate) fn seeds(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.cluster_seeds.iter().map(String::as_str))
    }
}

/// Hides the password.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted_url(&self.url))
            .field("cluster", &self.cluster)
            .field("cluster_seeds", &self.cluster_seeds)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("key_prefix", &self.key_prefix)
            .field("logical_shards", &self.logical_shards)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("tls_ca", &self.tls.ca_pem.is_some())
            .field("tls_client_cert", &self.tls.client_pem.is_some())
            .finish()
    }
}

/// `url` without the user information (`redis://user:secret@host` → `redis://***@host`),
/// for logs and errors.
pub fn redacted_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) if at > scheme.len() + 3 => {
            format!("{scheme}://***{}", &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_logs() {
        assert_eq!(
            redacted_url("redis://:pw@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redacted_url("rediss://u:p@h"), "rediss://***@h");
        assert_eq!(redacted_url("redis://host:6379"), "redis://host:6379");
        let config = RedisConfig::standalone("redis://u:secret@h");
        assert!(!format!("{config:?}").contains("secret"));
    }
}
