//! Client-side bulk writes over the public API (used by `demo` and `import`): records are
//! sent as one client stream per kind, vectors in bounded chunks.

use anyhow::Context as _;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use indicatif::ProgressBar;
use tonic::transport::Channel;

/// Rows per `EmbeddingChunk` (well under the message size cap at any dim we allow).
const ROWS_PER_CHUNK: usize = 2_048;

/// Connects to `addr` (`http://host:port`).
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(addr.to_owned())
        .with_context(|| format!("bad address `{addr}`"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

fn check(summary: &pb::WriteSummary, what: &str) -> anyhow::Result<()> {
    if let Some(first) = summary.errors.first() {
        anyhow::bail!(
            "{what}: {} rejected, first at record {} ({}: {})",
            summary.rejected,
            first.index,
            first.field,
            first.reason
        );
    }
    Ok(())
}

/// Streams `records` to one of the Ingest writes, ticking `progress` per record.
macro_rules! upload {
    ($fn_name:ident, $ty:ty, $rpc:ident, $what:literal) => {
        #[doc = concat!("Uploads ", $what, "; fails if any record is rejected.")]
        pub async fn $fn_name(
            channel: Channel,
            records: Vec<$ty>,
            progress: &ProgressBar,
        ) -> anyhow::Result<pb::WriteSummary> {
            let bar = progress.clone();
            let stream = tokio_stream::iter(records.into_iter().inspect(move |_| bar.inc(1)));
            let summary = IngestClient::new(channel)
                .max_encoding_message_size(doppel_types::limits::MAX_MESSAGE_BYTES)
                .$rpc(stream)
                .await
                .context($what)?
                .into_inner();
            check(&summary, $what)?;
            Ok(summary)
        }
    };
}

upload!(upload_customers, pb::Customer, upsert_customers, "customers");
upload!(upload_items, pb::Item, upsert_items, "items");
upload!(upload_events, pb::Event, record_events, "events");

/// Imports customer and item vectors as model `version` and activates it.
pub async fn import_and_activate(
    channel: Channel,
    version: &str,
    dim: u32,
    customers: Vec<(String, Vec<f32>)>,
    items: Vec<(String, Vec<f32>)>,
) -> anyhow::Result<pb::ImportSummary> {
    let mut chunks = Vec::new();
    for (entity, rows) in [(pb::Entity::Customer, customers), (pb::Entity::Item, items)] {
        for block in rows.chunks(ROWS_PER_CHUNK) {
            chunks.push(pb::EmbeddingChunk {
                model_version: version.to_owned(),
                entity: entity as i32,
                dim,
                ids: block.iter().map(|(id, _)| id.clone()).collect(),
                values: block.iter().flat_map(|(_, v)| v.iter().copied()).collect(),
            });
        }
    }
    let mut admin = ModelAdminClient::new(channel)
        .max_encoding_message_size(doppel_types::limits::MAX_MESSAGE_BYTES);
    let summary = admin
        .import_embeddings(tokio_stream::iter(chunks))
        .await
        .context("ImportEmbeddings")?
        .into_inner();
    admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: version.to_owned(),
        })
        .await
        .context("ActivateVersion")?;
    Ok(summary)
}
