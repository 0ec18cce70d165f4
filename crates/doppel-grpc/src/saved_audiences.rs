//! Saved audiences, shared by a node and a router: both compute an audience with their own
//! `FindLookalikes` and keep it through the [`Store`] (embedded, or Redis for a cluster),
//! so a saved audience survives restarts and takeovers alike.
//!
//! * what is kept: the query (encoded), the members best first, the version, the times;
//! * erasure takes a customer out of every saved audience in the store at once;
//! * a read leaves out members without ads consent *now* (profiles are read page by page);
//! * the number of saved audiences and their total members are bounded
//!   ([`SavedAudienceLimits`]): beyond → RESOURCE_EXHAUSTED.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use doppel_proto::v1 as pb;
use doppel_store::Store;
use doppel_types::limits::LOOKALIKE_PAGE_SIZE;
use doppel_types::saved_audience::is_audience_id;
use doppel_types::{SavedAudienceInfo, SavedAudienceLimits, SavedMember};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::page_stream::PageStream;
use crate::status::{FieldViolation, store_status};

/// Longest audience name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Pages buffered ahead of a slow reader.
const PAGES_IN_FLIGHT: usize = 4;

/// Checks an audience id (`aud-` and 16 hex digits), naming `audience_id`.
pub fn check_audience_id(id: &str) -> Result<(), Status> {
    if !is_audience_id(id) {
        return Err(FieldViolation::new(
            "audience_id",
            "must be `aud-` and 16 lowercase hex digits, as SaveAudience answered",
        )
        .into());
    }
    Ok(())
}

/// A fresh audience id: time and a per-process random key, hashed.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("aud-{:016x}", hasher.finish())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A validated SaveAudience request: its name and query (to compute with FindLookalikes).
pub struct SaveRequest {
    /// The audience's name.
    pub name: String,
    /// The query, validated.
    pub query: pb::LookalikeRequest,
}

/// Checks a SaveAudience request's name and query, and that one more audience fits.
pub async fn check_save(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    request: pb::SaveAudienceRequest,
) -> Result<SaveRequest, Status> {
    let pb::SaveAudienceRequest { name, query } = request;
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            "name",
            format!("must be 1..={MAX_NAME_LEN} bytes without control characters"),
        )
        .into());
    }
    let query = query.ok_or_else(|| FieldViolation::new("query", "required"))?;
    crate::convert::query_from_pb(query.clone())?;
    let saved = store.saved_audiences().await.map_err(store_status)?;
    if saved.len() as u64 >= limits.max_audiences {
        return Err(Status::resource_exhausted(format!(
            "name: {} audiences are saved, the most this server keeps \
             (--max-saved-audiences); delete one first",
            saved.len()
        )));
    }
    Ok(SaveRequest { name, query })
}

/// The members and header fields of an audience's stream.
fn collect(batches: Vec<pb::LookalikeBatch>) -> (Vec<SavedMember>, String, u64) {
    let version = batches
        .first()
        .map(|b| b.model_version.clone())
        .unwrap_or_default();
    let eligible = batches.first().map_or(0, |b| b.eligible_population);
    let members = batches
        .into_iter()
        .flat_map(|b| b.prospects)
        .map(|p| SavedMember {
            customer_id: p.customer_id,
            score: p.score,
        })
        .collect();
    (members, version, eligible)
}

/// Keeps `batches` (an audience computed by FindLookalikes) as audience `existing`'s new
/// members, or as a new audience. Refused with RESOURCE_EXHAUSTED when the saved members
/// would exceed the limit.
pub async fn store_audience(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    name: String,
    query: &pb::LookalikeRequest,
    batches: Vec<pb::LookalikeBatch>,
    existing: Option<SavedAudienceInfo>,
) -> Result<pb::AudienceInfo, Status> {
    let (members, model_version, eligible_population) = collect(batches);
    let others: u64 = store
        .saved_audiences()
        .await
        .map_err(store_status)?
        .iter()
        .filter(|a| existing.as_ref().is_none_or(|e| e.id != a.id))
        .map(|a| a.size)
        .sum();
    let total = others + members.len() as u64;
    if total > limits.max_members {
        return Err(Status::resource_exhausted(format!(
            "query: {} members would bring the saved audiences to {total}, over the {} this \
             server keeps (--max-saved-members); ask for a smaller audience or delete one",
            members.len(),
            limits.max_members
        )));
    }
    let now = now_ms();
    let info = SavedAudienceInfo {
        id: existing.as_ref().map_or_else(new_id, |e| e.id.clone()),
        name,
        query: query.encode_to_vec(),
        model_version,
        created_ms: existing.as_ref().map_or(now, |e| e.created_ms),
        refreshed_ms: now,
        size: members.len() as u64,
        eligible_population,
    };
    store
        .put_saved_audience(&info, &members)
        .await
        .map_err(store_status)?;
    tracing::info!(audience = %info.id, size = info.size, "audience saved");
    Ok(info_to_pb(info))
}

/// A saved audience's info, or NOT_FOUND naming `audience_id`.
pub async fn find(store: &dyn Store, id: &str) -> Result<SavedAudienceInfo, Status> {
    check_audience_id(id)?;
    store
        .saved_audience(id)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("audience_id: `{id}` not found")))
}

/// The saved query of `info` (to refresh it).
pub fn saved_query(info: &SavedAudienceInfo) -> Result<pb::LookalikeRequest, Status> {
    pb::LookalikeRequest::decode(info.query.as_slice()).map_err(|e| {
        Status::internal(format!(
            "audience_id: the saved query of `{}` cannot be read: {e}",
            info.id
        ))
    })
}

/// Every saved audience, newest first.
pub async fn list(store: &dyn Store) -> Result<pb::ListAudiencesResponse, Status> {
    let mut infos = store.saved_audiences().await.map_err(store_status)?;
    infos.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    Ok(pb::ListAudiencesResponse {
        audiences: infos.into_iter().map(info_to_pb).collect(),
    })
}

/// Deletes a saved audience.
pub async fn delete(store: &dyn Store, id: &str) -> Result<pb::DeleteAudienceResponse, Status> {
    check_audience_id(id)?;
    let deleted = store
        .delete_saved_audience(id)
        .await
        .map_err(store_status)?;
    Ok(pb::DeleteAudienceResponse { deleted })
}

/// The stored members of `id`, best first, in pages; members without a profile (erased)
/// or without ads consent now are left out. Pages are read and filtered as the client
/// takes them.
pub async fn stream_members(
    store: std::sync::Arc<dyn Store>,
    id: &str,
    shards_total: u32,
) -> Result<PageStream<pb::LookalikeBatch>, Status> {
    let info = find(store.as_ref(), id).await?;
    let members = store
        .saved_audience_members(id)
        .await
        .map_err(store_status)?
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
    tokio::spawn(async move {
        let mut pages: Vec<&[SavedMember]> = members.chunks(LOOKALIKE_PAGE_SIZE).collect();
        if pages.is_empty() {
            // An empty audience still answers one (empty) batch.
            pages.push(&[]);
        }
        for (i, page) in pages.into_iter().enumerate() {
            let ids: Vec<String> = page.iter().map(|m| m.customer_id.clone()).collect();
            let batch = match store.get_customers(&ids).await {
                Ok(profiles) => Ok(pb::LookalikeBatch {
                    prospects: page
                        .iter()
                        .zip(profiles)
                        .filter(|(_, c)| c.as_ref().is_some_and(|c| c.consent.ads_personalization))
                        .map(|(m, _)| pb::Prospect {
                            customer_id: m.customer_id.clone(),
                            score: m.score,
                            nearest_seed_ids: Vec::new(),
                        })
                        .collect(),
                    model_version: info.model_version.clone(),
                    shards_answered: shards_total,
                    shards_total,
                    eligible_population: if i == 0 { info.eligible_population } else { 0 },
                    batch_index: i as u32,
                    ..Default::default()
                }),
                Err(e) => Err(store_status(e)),
            };
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// A saved audience's info, as sent.
pub fn info_to_pb(info: SavedAudienceInfo) -> pb::AudienceInfo {
    let query = pb::LookalikeRequest::decode(info.query.as_slice()).ok();
    pb::AudienceInfo {
        audience_id: info.id,
        name: info.name,
        size: info.size,
        model_version: info.model_version,
        created_ms: info.created_ms,
        refreshed_ms: info.refreshed_ms,
        query,
        eligible_population: info.eligible_population,
    }
}

/// Drains an audience stream into its batches.
pub async fn drain(
    mut stream: PageStream<pb::LookalikeBatch>,
) -> Result<Vec<pb::LookalikeBatch>, Status> {
    use futures::StreamExt;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    Ok(batches)
}
