//! One connection type for both deployments, so every operation is written once:
//! [`Conn::Standalone`] is a [`ConnectionManager`] (multiplexed, reconnects in the
//! background with backoff), [`Conn::Cluster`] an async cluster connection (follows
//! `MOVED`/`ASK`, refreshes slots). Both are cheap clones of one shared connection.
//!
//! Redis errors map to [`Error::Unavailable`] when the server cannot be reached or is not
//! serving (I/O, timeouts, dropped connections, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`,
//! `LOADING`, and `MOVED`/`ASK`/`READONLY` still left after the client's retries: the
//! topology is changing) and to [`Error::Storage`] otherwise.

use std::time::Duration;

use futures::future::try_join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError,
    ServerErrorKind, Value,
};

use super::config::RedisConfig;
use crate::error::{Error, Result};

/// A connection to a standalone server or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server, through a reconnecting manager.
    Standalone(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects as `config` says; fails with `Unavailable` if no server answers.
    pub(crate) async fn connect(config: &RedisConfig) -> Result<Self> {
        #[cfg(feature = "redis-tls")]
        {
            // rustls panics on a TLS handshake if no process-wide crypto provider is set
            // and several are compiled in; pick ring unless the binary already chose one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if config.cluster {
            let mut builder = ClusterClientBuilder::new(
                config
                    .seeds()
                    .map(|url| connection_info(url, config))
                    .collect::<Result<Vec<_>>>()?,
            )
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            // The client's default waits start at 1.28 s; a serving path wants to ride out
            // a failover's redirects but fail fast (Unavailable) when a slot has no master.
            .retries(u32::try_from(config.reconnect_retries).unwrap_or(u32::MAX))
            .min_retry_wait(50)
            .max_retry_wait(1_000);
            if let Some(username) = &config.username {
                builder = builder.username(username);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password);
            }
            if !config.tls.is_default() {
                builder = builder.certs(tls_certificates(&config.tls));
            }
            let client = builder.build().map_err(map_err)?;
            let conn = client.get_async_connection().await.map_err(map_err)?;
            Ok(Conn::Cluster(conn))
        } else {
            let info = connection_info(&config.url, config)?;
            let client = if config.tls.is_default() {
                redis::Client::open(info)
            } else {
                redis::Client::build_with_tls(info, tls_certificates(&config.tls))
            }
            .map_err(map_err)?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_number_of_retries(config.reconnect_retries)
                .set_min_delay(Duration::from_millis(100))
                .set_max_delay(Duration::from_secs(1));
            let manager = ConnectionManager::new_with_config(client, manager_config)
                .await
                .map_err(map_err)?;
            Ok(Conn::Standalone(manager))
        }
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let result = match self {
            Conn::Standalone(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => cmd.query_async(&mut conn.clone()).await,
        };
        result.map_err(map_err)
    }

    /// Runs independent commands concurrently (multiplexed on one connection, or spread
    /// over the cluster's nodes); results in command order.
    pub(crate) async fn query_each<T: FromRedisValue>(&self, cmds: &[Cmd]) -> Result<Vec<T>> {
        try_join_all(cmds.iter().map(|cmd| self.query(cmd))).await
    }

    /// Runs commands that are each atomic on their own (Lua scripts over one hash tag).
    /// On a standalone server they also run as one `MULTI`/`EXEC`, so the whole batch is
    /// atomic; a cluster cannot do that across slots, so there each command is atomic
    /// alone. Results in command order.
    pub(crate) async fn exec_grouped(&self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        match self {
            Conn::Standalone(conn) => {
                if cmds.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                pipe.atomic();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query_async(&mut conn.clone()).await.map_err(map_err)
            }
            Conn::Cluster(_) => self.query_each(cmds).await,
        }
    }
}

/// `EVAL script numkeys keys...`; the caller appends the arguments. Scripts are small and
/// Redis caches them by hash, so sending the source each time costs little and never meets
/// `NOSCRIPT` (not even inside `MULTI` after a failover).
pub(crate) fn eval(script: &str, keys: &[String]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    cmd
}

/// The certificates of a `rediss://` connection.
fn tls_certificates(tls: &super::config::RedisTls) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: tls
            .client_pem
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
        root_cert: tls.ca_pem.clone(),
    }
}

/// The connection info of `url`, with the configured credentials.
fn connection_info(url: &str, config: &RedisConfig) -> Result<ConnectionInfo> {
    let info = url
        .into_connection_info()
        .map_err(|e| Error::Storage(format!("bad Redis URL {url:?}: {e}")))?;
    let mut settings = info.redis_settings().clone();
    if let Some(username) = &config.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    Ok(info.set_redis_settings(settings))
}

/// Decodes a reply of a pipelined command.
pub(crate) fn parse<T: FromRedisValue>(value: Value) -> Result<T> {
    redis::from_redis_value(value).map_err(|e| Error::Storage(format!("unexpected reply: {e}")))
}

/// `Unavailable` for "cannot reach or not serving", `Storage` for everything else.
pub(crate) fn map_err(e: RedisError) -> Error {
    let unavailable = e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Io
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::TryAgain
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                )
        );
    if unavailable {
        Error::Unavailable(format!("redis: {e}"))
    } else {
        Error::Storage(format!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable_and_server_errors_are_storage() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(map_err(io), Error::Unavailable(_)));
        let client = RedisError::from((ErrorKind::Client, "bad"));
        assert!(matches!(map_err(client), Error::Storage(_)));
    }

    #[test]
    fn credentials_override_the_url() {
        let mut config = RedisConfig::standalone("redis://u:p@127.0.0.1:6379/2");
        config.password = Some("secret".to_owned());
        let info = connection_info(&config.url, &config).expect("info");
        assert_eq!(info.redis_settings().username(), Some("u"));
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert_eq!(info.redis_settings().db(), 2);
        assert!(format!("{config:?}").contains("***"));
    }
}
