//! TLS flags of the client commands (`doppel query ...`): the CA that signed the server's
//! certificate, and a client certificate for servers that require one (mTLS).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tonic::transport::Channel;

/// `--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-domain`.
#[derive(Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Connect over TLS, trusting this CA (PEM) for the server's certificate.
    #[arg(long, env = "DOPPEL_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one; needs --tls-key.
    #[arg(
        long,
        env = "DOPPEL_TLS_CERT",
        requires = "tls_key",
        requires = "tls_ca"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, env = "DOPPEL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the address's host).
    #[arg(long, requires = "tls_ca")]
    pub tls_domain: Option<String>,
}

impl TlsArgs {
    /// Reads the files named.
    fn load(&self) -> anyhow::Result<Option<doppel_client::ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("{flag}: reading {}", path.display()))
        };
        let identity_pem = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((read("--tls-cert", cert)?, read("--tls-key", key)?)),
            _ => None,
        };
        Ok(Some(doppel_client::ClientTls {
            ca_pem: read("--tls-ca", ca)?,
            identity_pem,
            domain: self.tls_domain.clone(),
        }))
    }

    /// A channel to `addr`, over TLS when `--tls-ca` is given.
    pub async fn connect(&self, addr: &str) -> anyhow::Result<Channel> {
        let tls = self.load()?;
        Ok(doppel_client::connect_with(addr, tls.as_ref()).await?)
    }
}
