//! Client helpers over doppel's public API, shared by the CLI, the demo and the tests:
//! connecting, streaming bulk writes, and importing + activating a model version.
//! Conversions from domain types live in `doppel-grpc::convert`; this crate speaks protobuf.
//!
//! * [`retail_csv`] — transaction files in the Online Retail layout, read into customers,
//!   items and events for `doppel import events` (no network).

pub mod retail_csv;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tonic::transport::Channel;

/// Rows per `EmbeddingChunk`: 512 rows × 4,096 dims × 4 bytes = 8 MiB, under the message cap.
pub const ROWS_PER_CHUNK: usize = 512;

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not a valid URI.
    #[error("bad address `{addr}`: {reason}")]
    Address {
        /// What was given.
        addr: String,
        /// Why it is not usable.
        reason: String,
    },
    /// The connection failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The server answered with an error status.
    #[error("{rpc}: {status}")]
    Rpc {
        /// Which call.
        rpc: &'static str,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// Some records of a bulk write were refused.
    #[error("{rpc}: {rejected} records rejected, first at record {index} ({field}: {reason})")]
    Rejected {
        /// Which call.
        rpc: &'static str,
        /// How many.
        rejected: u64,
        /// Position of the first.
        index: u64,
        /// Its field.
        field: String,
        /// Why.
        reason: String,
    },
}

/// Result of the client helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// How long the server asked to wait before retrying, when it refused the call for
    /// load (an admission shed, or an API key over its rate limit); see [`retry_after`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Rpc { status, .. } => retry_after(status),
            _ => None,
        }
    }
}

/// How long a refused call's `status` asks the client to wait before retrying: the
/// server's `retry-after-ms` trailer, else gRPC's `grpc-retry-pushback-ms`; `None` when it
/// says neither (retry with a backoff of your own). A shed heavy call is told 100 ms, a
/// shed cheap one 5 ms, a key over its rate limit until its bucket refills.
pub fn retry_after(status: &tonic::Status) -> Option<std::time::Duration> {
    ["retry-after-ms", "grpc-retry-pushback-ms"]
        .iter()
        .find_map(|key| {
            status
                .metadata()
                .get(*key)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(std::time::Duration::from_millis)
}

/// Connects to `addr` (`http://host:port`).
pub async fn connect(addr: &str) -> Result<Channel> {
    connect_with(addr, None).await
}

/// PEM material of a TLS connection: the CA that signed the server's certificate, and for
/// mTLS the client's certificate and key.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// The CA certificate (PEM) the server's certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// The client certificate and key (PEM), for servers that require one.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the server's certificate against (default: the address's host).
    pub domain: Option<String>,
}

/// Never prints key material.
impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("client_certificate", &self.identity_pem.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

/// Connects to `addr`, over TLS when `tls` is given (an `http://` address then becomes
/// `https://`; any other scheme but `https` is refused, so nothing falls back to
/// plaintext).
pub async fn connect_with(addr: &str, tls: Option<&ClientTls>) -> Result<Channel> {
    let bad = |reason: String| Error::Address {
        addr: addr.to_owned(),
        reason,
    };
    let uri = match tls {
        None => addr.to_owned(),
        Some(_) => {
            let (scheme, rest) = addr.split_once("://").unwrap_or(("https", addr));
            match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => format!("https://{rest}"),
                other => return Err(bad(format!("scheme `{other}` with TLS: use https://"))),
            }
        }
    };
    let mut endpoint = Channel::from_shared(uri).map_err(|e| bad(e.to_string()))?;
    if let Some(tls) = tls {
        let mut config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity_pem {
            config = config.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| bad(e.to_string()))?;
    }
    endpoint.connect().await.map_err(|source| Error::Connect {
        addr: addr.to_owned(),
        source,
    })
}

fn rpc_error(rpc: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Rpc {
        rpc,
        status: Box::new(status),
    }
}

fn check(rpc: &'static str, summary: pb::WriteSummary) -> Result<pb::WriteSummary> {
    match summary.errors.first() {
        Some(first) => Err(Error::Rejected {
            rpc,
            rejected: summary.rejected,
            index: first.index,
            field: first.field.clone(),
            reason: first.reason.clone(),
        }),
        None => Ok(summary),
    }
}

fn ingest(channel: Channel) -> IngestClient<Channel> {
    IngestClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Streams customers; fails if any is rejected. `tick` runs once per record sent.
pub async fn upload_customers(
    channel: Channel,
    records: Vec<pb::Customer>,
    tick: impl FnMut(&pb::Customer) + Send + 'static,
) -> Result<pb::WriteSummary> {
    let stream = tokio_stream::iter(records.into_iter().inspect(tick));
    let summary = ingest(channel)
        .upsert_customers(stream)
        .await
        .map_err(rpc_error("UpsertCustomers"))?;
    check("UpsertCustomers", summary.into_inner())
}

/// Streams items; fails if any is rejected.
pub async fn upload_items(
    channel: Channel,
    records: Vec<pb::Item>,
    tick: impl FnMut(&pb::Item) + Send + 'static,
) -> Result<pb::WriteSummary> {
    let stream = tokio_stream::iter(records.into_iter().inspect(tick));
    let summary = ingest(channel)
        .upsert_items(stream)
        .await
        .map_err(rpc_error("UpsertItems"))?;
    check("UpsertItems", summary.into_inner())
}

/// Streams events; fails if any is rejected.
pub async fn upload_events(
    channel: Channel,
    records: Vec<pb::Event>,
    tick: impl FnMut(&pb::Event) + Send + 'static,
) -> Result<pb::WriteSummary> {
    let stream = tokio_stream::iter(records.into_iter().inspect(tick));
    let summary = ingest(channel)
        .record_events(stream)
        .await
        .map_err(rpc_error("RecordEvents"))?;
    check("RecordEvents", summary.into_inner())
}

/// Imports customer and item vectors (`(id, vector)` rows) as model `version`.
pub async fn import_vectors(
    channel: Channel,
    version: &str,
    dim: u32,
    customers: &[(String, Vec<f32>)],
    items: &[(String, Vec<f32>)],
) -> Result<pb::ImportSummary> {
    let mut chunks = Vec::new();
    for (entity, rows) in [(pb::Entity::Customer, customers), (pb::Entity::Item, items)] {
        for block in rows.chunks(ROWS_PER_CHUNK) {
            chunks.push(pb::EmbeddingChunk {
                model_version: version.to_owned(),
                entity: entity as i32,
                dim,
                ids: block.iter().map(|(id, _)| id.clone()).collect(),
                values: block.iter().flat_map(|(_, v)| v.iter().copied()).collect(),
                ..Default::default()
            });
        }
    }
    let summary = ModelAdminClient::new(channel)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .import_embeddings(tokio_stream::iter(chunks))
        .await
        .map_err(rpc_error("ImportEmbeddings"))?;
    Ok(summary.into_inner())
}

/// Activates `version`.
pub async fn activate(channel: Channel, version: &str) -> Result<pb::ActivateVersionResponse> {
    let response = ModelAdminClient::new(channel)
        .activate_version(pb::ActivateVersionRequest {
            model_version: version.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(rpc_error("ActivateVersion"))?;
    Ok(response.into_inner())
}

/// Trains a new version from the server's event log, calling `on_progress` with every
/// progress message; returns the last one (`done = true`, naming the version).
pub async fn train(
    channel: Channel,
    request: pb::TrainRequest,
    mut on_progress: impl FnMut(&pb::TrainProgress),
) -> Result<pb::TrainProgress> {
    let mut stream = ModelAdminClient::new(channel)
        .train(request)
        .await
        .map_err(rpc_error("Train"))?
        .into_inner();
    let mut last = None;
    while let Some(progress) = stream.message().await.map_err(rpc_error("Train"))? {
        on_progress(&progress);
        last = Some(progress);
    }
    match last {
        Some(p) if p.done => Ok(p),
        _ => Err(Error::Rpc {
            rpc: "Train",
            status: Box::new(tonic::Status::aborted(
                "the progress stream ended before training was done",
            )),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn shed(headers: &[(&'static str, &str)]) -> tonic::Status {
        let mut status = tonic::Status::resource_exhausted("shed");
        for (key, value) in headers {
            status
                .metadata_mut()
                .insert(*key, value.parse().expect("ascii"));
        }
        status
    }

    #[test]
    fn the_servers_retry_hint_is_read_from_either_trailer() {
        let both = shed(&[("retry-after-ms", "100"), ("grpc-retry-pushback-ms", "7")]);
        assert_eq!(retry_after(&both), Some(Duration::from_millis(100)));
        let grpc_only = shed(&[("grpc-retry-pushback-ms", "7")]);
        assert_eq!(retry_after(&grpc_only), Some(Duration::from_millis(7)));
        assert_eq!(retry_after(&shed(&[("retry-after-ms", "soon")])), None);
        assert_eq!(retry_after(&shed(&[])), None);
        let error = Error::Rpc {
            rpc: "FindLookalikes",
            status: Box::new(both),
        };
        assert_eq!(error.retry_after(), Some(Duration::from_millis(100)));
    }
}
