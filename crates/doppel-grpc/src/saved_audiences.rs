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
use doppel_types::{
    PrivacyFloor, SavedAudienceInfo, SavedAudienceLimits, SavedAudienceWrite, SavedMember,
};
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

/// A validated SaveAudience request: its name and query (to compute with FindLookalikes).
pub struct SaveRequest {
    /// The audience's name.
    pub name: String,
    /// The query, validated, explanations off (a saved audience keeps no explanations).
    pub query: pb::LookalikeRequest,
}

/// Checks a SaveAudience request's name and query, and that one more audience fits (the
/// store checks again when it writes).
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
    let mut query = query.ok_or_else(|| FieldViolation::new("query", "required"))?;
    query.explain = false;
    crate::convert::query_from_pb(query.clone()).map_err(in_query)?;
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

/// An error of the saved query's own fields, named inside `query`.
pub fn in_query(status: Status) -> Status {
    match status.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::NotFound
        | tonic::Code::ResourceExhausted => {
            Status::new(status.code(), format!("query.{}", status.message()))
        }
        _ => status,
    }
}

/// How many more members fit beside the other saved audiences (`replacing`: the audience
/// whose members are replaced).
pub async fn member_budget(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    replacing: Option<&str>,
) -> Result<u64, Status> {
    let held: u64 = store
        .saved_audiences()
        .await
        .map_err(store_status)?
        .iter()
        .filter(|a| replacing != Some(a.id.as_str()))
        .map(|a| a.size)
        .sum();
    Ok(limits.max_members.saturating_sub(held))
}

fn over_budget(budget: u64) -> Status {
    Status::resource_exhausted(format!(
        "query: the audience is larger than the {budget} members the saved audiences have room \
         for (--max-saved-members); ask for a smaller audience or delete one"
    ))
}

/// The request that computes `query` with the caller's metadata (its deadline, its key).
pub fn inner_request<T>(metadata: &tonic::metadata::MetadataMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request
}

/// Refuses before any work a `count` audience over `budget`.
pub fn check_budget(query: &pb::LookalikeRequest, budget: u64) -> Result<(), Status> {
    match query.size {
        Some(pb::lookalike_request::Size::Count(n)) if n > budget => Err(over_budget(budget)),
        _ => Ok(()),
    }
}

/// Drains an audience stream into members, at most `budget` (more → RESOURCE_EXHAUSTED,
/// stopping the stream), refusing a partial answer (a node left out) with UNAVAILABLE.
pub async fn collect(
    mut stream: PageStream<pb::LookalikeBatch>,
    budget: u64,
) -> Result<(Vec<SavedMember>, String, u64), Status> {
    use futures::StreamExt;
    let mut members = Vec::new();
    let (mut version, mut eligible) = (String::new(), 0);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(in_query)?;
        if batch.shards_answered < batch.shards_total {
            return Err(Status::unavailable(format!(
                "query: only {} of {} shards answered; a saved audience is kept only whole, \
                 retry shortly",
                batch.shards_answered, batch.shards_total
            )));
        }
        if batch.batch_index == 0 {
            version = batch.model_version.clone();
            eligible = batch.eligible_population;
        }
        if (members.len() + batch.prospects.len()) as u64 > budget {
            return Err(over_budget(budget));
        }
        members.extend(batch.prospects.into_iter().map(|p| SavedMember {
            customer_id: p.customer_id,
            score: p.score,
        }));
    }
    Ok((members, version, eligible))
}

/// Keeps computed `members` as a new audience, or as `existing`'s new members (the store
/// checks the limits and leaves out members erased meanwhile).
pub async fn store_audience(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    name: String,
    query: &pb::LookalikeRequest,
    computed: (Vec<SavedMember>, String, u64),
    existing: Option<SavedAudienceInfo>,
    started_ms: i64,
) -> Result<pb::AudienceInfo, Status> {
    let (members, model_version, eligible_population) = computed;
    let info = SavedAudienceInfo {
        id: existing.as_ref().map_or_else(new_id, |e| e.id.clone()),
        name,
        model_version,
        created_ms: existing.as_ref().map_or(started_ms, |e| e.created_ms),
        // When the members were computed: the store drops members erased since.
        refreshed_ms: started_ms,
        size: members.len() as u64,
        eligible_population,
    };
    // A refresh keeps the stored query (an erasure may have scrubbed it meanwhile).
    let (write, bytes) = match existing {
        Some(_) => (SavedAudienceWrite::Replace, None),
        None => (SavedAudienceWrite::Create, Some(query.encode_to_vec())),
    };
    let stored = store
        .put_saved_audience(&info, bytes.as_deref(), &members, write, limits)
        .await
        .map_err(|e| match e {
            doppel_store::Error::NotFound { .. } => Status::not_found(format!(
                "audience_id: `{}` was deleted while it was refreshed",
                info.id
            )),
            e => store_status(e),
        })?;
    tracing::info!(audience = %stored.id, size = stored.size, "audience saved");
    if write == SavedAudienceWrite::Create {
        // Seeds erased while the audience was computed leave its query now that it exists
        // (the erasure's own scrub may have run before).
        scrub_gone_seeds(store, &stored.id).await?;
    }
    let query = saved_query(store, &stored.id).await?;
    Ok(info_to_pb(stored, Some(query)))
}

/// Rewrites audience `id`'s query (a compare-and-set, retried) until `edit` leaves it
/// unchanged; an audience deleted meanwhile is left alone.
async fn edit_query(
    store: &dyn Store,
    id: &str,
    edit: impl Fn(&mut pb::LookalikeRequest),
) -> Result<(), Status> {
    for _ in 0..16 {
        let Some(bytes) = store.saved_audience_query(id).await.map_err(store_status)? else {
            return Ok(());
        };
        let mut query = pb::LookalikeRequest::decode(bytes.as_slice()).map_err(|e| {
            Status::internal(format!(
                "audience_id: the saved query of `{id}` cannot be read: {e}"
            ))
        })?;
        edit(&mut query);
        let edited = query.encode_to_vec();
        if edited == bytes
            || store
                .put_saved_audience_query(id, &bytes, &edited)
                .await
                .map_err(store_status)?
        {
            return Ok(());
        }
    }
    Err(Status::aborted(format!(
        "audience_id: the saved query of `{id}` kept changing; retry"
    )))
}

/// Takes seeds and negatives that no longer have a profile (erased) out of audience `id`'s
/// saved query.
async fn scrub_gone_seeds(store: &dyn Store, id: &str) -> Result<(), Status> {
    let query = saved_query(store, id).await?;
    let ids: Vec<String> = query
        .seed_customer_ids
        .iter()
        .chain(&query.negative_customer_ids)
        .cloned()
        .collect();
    let profiles = store.get_customers(&ids).await.map_err(store_status)?;
    let gone: std::collections::HashSet<String> = ids
        .into_iter()
        .zip(profiles)
        .filter(|(_, p)| p.is_none())
        .map(|(id, _)| id)
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    edit_query(store, id, |q| {
        q.seed_customer_ids.retain(|c| !gone.contains(c));
        q.negative_customer_ids.retain(|c| !gone.contains(c));
    })
    .await
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

/// A saved audience's info with its query, as GetAudience answers.
pub async fn get(store: &dyn Store, id: &str) -> Result<pb::AudienceInfo, Status> {
    let info = find(store, id).await?;
    let query = saved_query(store, id).await?;
    Ok(info_to_pb(info, Some(query)))
}

/// The saved query of audience `id` (to refresh it).
pub async fn saved_query(store: &dyn Store, id: &str) -> Result<pb::LookalikeRequest, Status> {
    let bytes = store
        .saved_audience_query(id)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("audience_id: `{id}` not found")))?;
    pb::LookalikeRequest::decode(bytes.as_slice()).map_err(|e| {
        Status::internal(format!(
            "audience_id: the saved query of `{id}` cannot be read: {e}"
        ))
    })
}

/// Takes an erased customer out of every saved query (seeds and negatives), so no saved
/// audience keeps its id. Each rewrite is a compare-and-set, so concurrent erasures cannot
/// undo each other. Reads every saved query: erasures are rare and the audiences few.
pub async fn scrub_erased(store: &dyn Store, customer_id: &str) -> Result<(), Status> {
    for info in store.saved_audiences().await.map_err(store_status)? {
        edit_query(store, &info.id, |q| {
            q.seed_customer_ids.retain(|c| c != customer_id);
            q.negative_customer_ids.retain(|c| c != customer_id);
        })
        .await?;
    }
    Ok(())
}

/// Every saved audience, newest first (without their queries: GetAudience has them).
pub async fn list(store: &dyn Store) -> Result<pb::ListAudiencesResponse, Status> {
    let mut infos = store.saved_audiences().await.map_err(store_status)?;
    infos.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    Ok(pb::ListAudiencesResponse {
        audiences: infos.into_iter().map(|i| info_to_pb(i, None)).collect(),
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

/// The stored members of `id`, best first, in pages read from the store as the client
/// takes them; members without a profile (erased) or without ads consent now are left out.
/// Below the privacy floor (the stored size) → FAILED_PRECONDITION; deleted meanwhile →
/// NOT_FOUND in the stream.
pub async fn stream_members(
    store: std::sync::Arc<dyn Store>,
    id: &str,
    floor: PrivacyFloor,
    shards_total: u32,
) -> Result<PageStream<pb::LookalikeBatch>, Status> {
    let info = find(store.as_ref(), id).await?;
    floor
        .check_audience("audience_id", info.size)
        .map_err(Status::failed_precondition)?;
    let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
    let id = id.to_owned();
    tokio::spawn(async move {
        let mut after = None;
        let mut batch_index = 0u32;
        loop {
            // A refresh mid-stream would splice two member lists: stop instead.
            if batch_index > 0 {
                match store.saved_audience(&id).await {
                    Ok(Some(now)) if now.refreshed_ms == info.refreshed_ms => {}
                    Ok(Some(_)) => {
                        let _ = tx
                            .send(Err(Status::aborted(format!(
                                "audience_id: `{id}` was refreshed while it was read; read it again"
                            ))))
                            .await;
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Err(store_status(e))).await;
                        return;
                    }
                }
            }
            let page = match store
                .saved_audience_members(&id, after, LOOKALIKE_PAGE_SIZE)
                .await
            {
                Ok(Some(page)) => page,
                Ok(None) => {
                    let _ = tx
                        .send(Err(Status::not_found(format!(
                            "audience_id: `{id}` was deleted while it was read"
                        ))))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(store_status(e))).await;
                    return;
                }
            };
            let last = page.len() < LOOKALIKE_PAGE_SIZE;
            after = page.last().map(|(rank, _)| *rank).or(after);
            let ids: Vec<String> = page.iter().map(|(_, m)| m.customer_id.clone()).collect();
            let profiles = match store.get_customers(&ids).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(store_status(e))).await;
                    return;
                }
            };
            let batch = pb::LookalikeBatch {
                prospects: page
                    .into_iter()
                    .zip(profiles)
                    .filter(|(_, c)| c.as_ref().is_some_and(|c| c.consent.ads_personalization))
                    .map(|((_, m), _)| pb::Prospect {
                        customer_id: m.customer_id,
                        score: m.score,
                        nearest_seed_ids: Vec::new(),
                    })
                    .collect(),
                model_version: info.model_version.clone(),
                shards_answered: shards_total,
                shards_total,
                eligible_population: if batch_index == 0 {
                    info.eligible_population
                } else {
                    0
                },
                batch_index,
                ..Default::default()
            };
            batch_index += 1;
            if tx.send(Ok(batch)).await.is_err() || last {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// A saved audience's info, as sent (`query`: GetAudience and writes echo it).
pub fn info_to_pb(
    info: SavedAudienceInfo,
    query: Option<pb::LookalikeRequest>,
) -> pb::AudienceInfo {
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

/// SaveAudience over a server's own FindLookalikes (`compute`), run with the caller's
/// metadata (deadline, key).
pub async fn save<F, Fut>(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    request: tonic::Request<pb::SaveAudienceRequest>,
    compute: F,
) -> Result<pb::AudienceInfo, Status>
where
    F: FnOnce(tonic::Request<pb::LookalikeRequest>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<PageStream<pb::LookalikeBatch>>, Status>>,
{
    let metadata = request.metadata().clone();
    let save = check_save(store, limits, request.into_inner()).await?;
    compute_and_store(
        store, limits, &metadata, save.name, save.query, None, compute,
    )
    .await
}

/// RefreshAudience over a server's own FindLookalikes (`compute`).
pub async fn refresh<F, Fut>(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    request: tonic::Request<pb::RefreshAudienceRequest>,
    compute: F,
) -> Result<pb::AudienceInfo, Status>
where
    F: FnOnce(tonic::Request<pb::LookalikeRequest>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<PageStream<pb::LookalikeBatch>>, Status>>,
{
    let metadata = request.metadata().clone();
    let id = request.into_inner().audience_id;
    let info = find(store, &id).await?;
    let query = saved_query(store, &id).await?;
    let name = info.name.clone();
    compute_and_store(store, limits, &metadata, name, query, Some(info), compute).await
}

/// Computes `query` within the member budget (`existing`'s own members aside) and keeps it.
async fn compute_and_store<F, Fut>(
    store: &dyn Store,
    limits: SavedAudienceLimits,
    metadata: &tonic::metadata::MetadataMap,
    name: String,
    query: pb::LookalikeRequest,
    existing: Option<SavedAudienceInfo>,
    compute: F,
) -> Result<pb::AudienceInfo, Status>
where
    F: FnOnce(tonic::Request<pb::LookalikeRequest>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<PageStream<pb::LookalikeBatch>>, Status>>,
{
    let budget = member_budget(store, limits, existing.as_ref().map(|e| e.id.as_str())).await?;
    check_budget(&query, budget)?;
    let started = doppel_types::clock::now_ms();
    let stream = compute(inner_request(metadata, query.clone()))
        .await
        .map_err(in_query)?
        .into_inner();
    let computed = collect(stream, budget).await?;
    store_audience(store, limits, name, &query, computed, existing, started).await
}
