//! TLS from PEM files: on the public port, the server's certificate chain and key, and
//! optionally the CA whose client certificates are required (mTLS); between routers and
//! shard nodes, mTLS both ways under one CA.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Longest a TLS handshake may take: a peer that connects and never says hello is dropped
/// (it would hold a connection and a task forever).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS file that could not be used, naming the setting it came from.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {path}: {reason}")]
pub struct TlsFileError {
    /// The command-line flag that named the file.
    pub flag: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads a PEM file and checks it holds a PEM block (`what`: "CERTIFICATE", "PRIVATE KEY").
fn read_pem(flag: &'static str, path: &Path, what: &str) -> Result<Vec<u8>, TlsFileError> {
    let error = |reason: String| TlsFileError {
        flag,
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(what) {
        return Err(error(format!("no PEM {what} block in the file")));
    }
    Ok(bytes)
}

/// The server's TLS settings: `cert` (chain, PEM) and `key` (PEM), and with `client_ca`
/// every client must present a certificate that CA signed.
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, TlsFileError> {
    let identity = Identity::from_pem(
        read_pem("--tls-cert", cert, "CERTIFICATE")?,
        read_pem("--tls-key", key, "PRIVATE KEY")?,
    );
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca) = client_ca {
        config = config.client_ca_root(Certificate::from_pem(read_pem(
            "--tls-client-ca",
            ca,
            "CERTIFICATE",
        )?));
    }
    Ok(config)
}

/// The internal port's mTLS, as a shard node serves it: its certificate and key, and every
/// router must present a certificate `ca` signed.
pub fn internal_server_tls(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<ServerTlsConfig, TlsFileError> {
    let identity = Identity::from_pem(
        read_pem("--internal-tls-cert", cert, "CERTIFICATE")?,
        read_pem("--internal-tls-key", key, "PRIVATE KEY")?,
    );
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT)
        .client_ca_root(Certificate::from_pem(read_pem(
            "--internal-tls-ca",
            ca,
            "CERTIFICATE",
        )?)))
}

/// The internal port's mTLS, as a router dials it: its client certificate and key, and the
/// nodes' certificates must chain to `ca` (and name the address they advertise).
pub fn internal_client_tls(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<ClientTlsConfig, TlsFileError> {
    Ok(ClientTlsConfig::new()
        .identity(Identity::from_pem(
            read_pem("--internal-tls-cert", cert, "CERTIFICATE")?,
            read_pem("--internal-tls-key", key, "PRIVATE KEY")?,
        ))
        .ca_certificate(Certificate::from_pem(read_pem(
            "--internal-tls-ca",
            ca,
            "CERTIFICATE",
        )?)))
}
