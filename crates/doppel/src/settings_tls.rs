//! The TLS, per-key rate-limit and health-port settings of `doppel serve`, checked at
//! start: every file is read now, a key that does not fit its certificate is refused, and
//! a flag that would do nothing in the process's role is refused rather than ignored.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::transport::{ClientTlsConfig, Endpoint, ServerTlsConfig};

use crate::settings::{Role, ServeArgs, SettingsError, bad};

/// Lowest per-key rate accepted (one call per 1,000 s).
const MIN_RATE: f64 = 0.001;

/// The router ↔ shard-node mTLS of this process: the server side on a shard node, the
/// client side on a router.
#[derive(Clone, Debug, Default)]
pub struct InternalTls {
    /// A shard node's internal port.
    pub server: Option<ServerTlsConfig>,
    /// A router's dials to the nodes.
    pub client: Option<ClientTlsConfig>,
}

fn named(e: doppel_grpc::tls::TlsFileError) -> SettingsError {
    bad(e.flag, format!("{}: {}", e.path, e.reason))
}

impl ServeArgs {
    /// The public port's TLS (none: plaintext).
    pub(crate) fn tls(&self) -> Result<Option<ServerTlsConfig>, SettingsError> {
        let any = self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_client_ca.is_some();
        if any && self.role == Role::Shard {
            return Err(bad(
                "--tls-cert",
                "a shard node's --listen port serves health only; secure the router ↔ node \
                 port with --internal-tls-cert/-key/-ca",
            ));
        }
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => {
                if self.tls_client_ca.is_some() {
                    return Err(bad("--tls-client-ca", "needs --tls-cert and --tls-key"));
                }
                return Ok(None);
            }
            (Some(_), None) => return Err(bad("--tls-key", "--tls-cert needs --tls-key")),
            (None, Some(_)) => return Err(bad("--tls-cert", "--tls-key needs --tls-cert")),
            (Some(cert), Some(key)) => (cert, key),
        };
        let config = doppel_grpc::tls::server_tls(cert, key, self.tls_client_ca.as_deref())
            .map_err(named)?;
        doppel_grpc::server::transport()
            .tls_config(config.clone())
            .map_err(|e| bad("--tls-key", format!("does not fit --tls-cert: {e}")))?;
        Ok(Some(config))
    }

    /// The router ↔ shard-node mTLS named by `--internal-tls-*`.
    pub(crate) fn internal_tls(&self) -> Result<InternalTls, SettingsError> {
        let (cert, key, ca) = match (
            &self.internal_tls_cert,
            &self.internal_tls_key,
            &self.internal_tls_ca,
        ) {
            (None, None, None) => return Ok(InternalTls::default()),
            (Some(cert), Some(key), Some(ca)) => (cert, key, ca),
            (None, _, _) => {
                return Err(bad(
                    "--internal-tls-cert",
                    "the three --internal-tls-* go together",
                ));
            }
            (_, None, _) => {
                return Err(bad(
                    "--internal-tls-key",
                    "the three --internal-tls-* go together",
                ));
            }
            (_, _, None) => {
                return Err(bad(
                    "--internal-tls-ca",
                    "the three --internal-tls-* go together",
                ));
            }
        };
        match self.role {
            Role::Shard => {
                let config = doppel_grpc::tls::internal_server_tls(cert, key, ca).map_err(named)?;
                doppel_grpc::server::transport()
                    .tls_config(config.clone())
                    .map_err(|e| {
                        bad(
                            "--internal-tls-key",
                            format!("does not fit --internal-tls-cert: {e}"),
                        )
                    })?;
                Ok(InternalTls {
                    server: Some(config),
                    client: None,
                })
            }
            Role::Router => {
                let config = doppel_grpc::tls::internal_client_tls(cert, key, ca).map_err(named)?;
                // Builds the rustls client now, so a bad key fails here, not at each dial.
                Endpoint::from_static("https://localhost")
                    .tls_config(config.clone())
                    .map_err(|e| {
                        bad(
                            "--internal-tls-key",
                            format!("does not fit --internal-tls-cert: {e}"),
                        )
                    })?;
                Ok(InternalTls {
                    server: None,
                    client: Some(config),
                })
            }
            Role::All => Err(bad(
                "--internal-tls-cert",
                "only for roles shard and router (a single node has no internal port)",
            )),
        }
    }

    /// The `rediss://` certificates named by `--redis-tls-*`, read now; refused unless the
    /// Redis URL is `rediss://` (they would be ignored).
    pub(crate) fn redis_tls(&self) -> Result<doppel_store::RedisTls, SettingsError> {
        let any = self.redis_tls_ca.is_some()
            || self.redis_tls_cert.is_some()
            || self.redis_tls_key.is_some();
        if any
            && !self
                .redis
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"))
        {
            let flag = if self.redis_tls_ca.is_some() {
                "--redis-tls-ca"
            } else if self.redis_tls_cert.is_some() {
                "--redis-tls-cert"
            } else {
                "--redis-tls-key"
            };
            return Err(bad(flag, "only with a --redis rediss:// URL"));
        }
        let read = |flag: &'static str, path: &PathBuf| {
            let bytes =
                std::fs::read(path).map_err(|e| bad(flag, format!("{}: {e}", path.display())))?;
            if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
                return Err(bad(flag, format!("{}: not a PEM file", path.display())));
            }
            Ok(bytes)
        };
        let ca_pem = self
            .redis_tls_ca
            .as_ref()
            .map(|p| read("--redis-tls-ca", p))
            .transpose()?;
        let client_pem = match (&self.redis_tls_cert, &self.redis_tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((
                read("--redis-tls-cert", cert)?,
                read("--redis-tls-key", key)?,
            )),
            (Some(_), None) => return Err(bad("--redis-tls-key", "--redis-tls-cert needs it")),
            (None, Some(_)) => return Err(bad("--redis-tls-cert", "--redis-tls-key needs it")),
        };
        Ok(doppel_store::RedisTls { ca_pem, client_pem })
    }

    /// The per-key rate limit (none when off).
    pub(crate) fn key_rate_limit(
        &self,
    ) -> Result<Option<doppel_grpc::auth::RateLimit>, SettingsError> {
        let (rate, burst) = (self.rate_limit_per_key, self.rate_limit_burst);
        if !rate.is_finite() || !(rate == 0.0 || (MIN_RATE..=1_000_000.0).contains(&rate)) {
            return Err(bad(
                "--rate-limit-per-key",
                "must be 0 (off) or 0.001..=1000000 calls/s",
            ));
        }
        if !burst.is_finite() || !(0.0..=1_000_000.0).contains(&burst) {
            return Err(bad("--rate-limit-burst", "must be 0..=1000000 calls"));
        }
        if rate == 0.0 {
            if burst > 0.0 {
                return Err(bad("--rate-limit-burst", "needs --rate-limit-per-key"));
            }
            return Ok(None);
        }
        if self.role == Role::Shard {
            return Err(bad(
                "--rate-limit-per-key",
                "routers check keys and limits; a shard node serves only routers",
            ));
        }
        if self.api_keys_file.is_none() {
            return Err(bad(
                "--rate-limit-per-key",
                "limits are per API key: needs --api-keys-file",
            ));
        }
        let burst = if burst == 0.0 {
            rate.max(1.0)
        } else {
            burst.max(1.0)
        };
        Ok(Some(doppel_grpc::auth::RateLimit {
            per_second: rate,
            burst,
        }))
    }

    /// The plaintext health-only port (none: off); refused on the public port's own address
    /// and on a shard node (whose `--listen` port already serves health alone).
    pub(crate) fn health_listen(
        &self,
        listen: SocketAddr,
    ) -> Result<Option<SocketAddr>, SettingsError> {
        let Some(addr) = self.health_listen else {
            return Ok(None);
        };
        if self.role == Role::Shard {
            return Err(bad(
                "--health-listen",
                "a shard node's --listen port already serves health alone, in plaintext",
            ));
        }
        if addr == listen
            || (addr.port() == listen.port()
                && (addr.ip().is_unspecified() || listen.ip().is_unspecified()))
        {
            return Err(bad("--health-listen", "must differ from --listen"));
        }
        Ok(Some(addr))
    }
}
