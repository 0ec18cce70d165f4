//! The audit log, seen from the services: the layer that records every administrative
//! call ([`AuditLayer`]), the slot a handler names its target in ([`set_target`]), the key
//! id the auth layer hands back ([`AuditKey`]), and `ListAuditEvents`.
//!
//! A call is administrative when it needs the `admin` role (`rpc_roles`): ModelAdmin,
//! erasure (`DeleteCustomer`), `SetContactPolicy`. Calls refused for their key are recorded
//! too (not those without a known key: traced only); a call dropped before it answered
//! (deadline, client gone) is recorded as `CANCELLED`. The event is stored after the call,
//! off its path, at most 64 waiting at once: a store that fails or lags loses the event
//! (logged), never the call. Events are stored one after another in the order their calls
//! ended (one queue, one writer), so the log's order is the calls' order.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use doppel_proto::v1 as pb;
use doppel_store::Store;
use doppel_types::AuditEvent;
use parking_lot::Mutex;
use tonic::Status;
use tower::{Layer, Service};

use crate::auth::Role;
use crate::auth::rpc_roles::required_role;
use crate::rpc_metrics::grpc_status;
use crate::status::{FieldViolation, store_status};

/// Most events per `ListAuditEvents` page.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

/// The caller's key id, put on the response by the auth layer.
#[derive(Clone, Debug)]
pub struct AuditKey(pub String);

/// Where a handler names what an administrative call acted on.
#[derive(Clone, Debug, Default)]
pub struct AuditTarget(Arc<Mutex<String>>);

impl AuditTarget {
    /// Names the target.
    pub fn set(&self, target: &str) {
        *self.0.lock() = target.to_owned();
    }

    /// The slot of the call `request` is, when it is audited (for targets known only
    /// later, e.g. an import's version in its first chunk).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Self> {
        request.extensions().get::<AuditTarget>().cloned()
    }
}

/// Names the target of the call `request` is (a version, a customer id) for the audit log;
/// a no-op outside an audited call.
pub fn set_target<T>(request: &tonic::Request<T>, target: &str) {
    if let Some(slot) = request.extensions().get::<AuditTarget>() {
        slot.set(target);
    }
}

/// The store audit events go to, the events waiting for it (in the order their calls
/// ended) and a permit per waiting event.
#[derive(Clone)]
pub struct AuditSink {
    store: Arc<dyn Store>,
    appends: Arc<tokio::sync::Semaphore>,
    queue: Arc<Mutex<Queue>>,
}

/// Events waiting to be stored, and whether a writer task is storing them.
#[derive(Default)]
struct Queue {
    events: std::collections::VecDeque<(AuditEvent, tokio::sync::OwnedSemaphorePermit)>,
    writing: bool,
}

impl AuditSink {
    /// Events go to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            appends: Arc::new(tokio::sync::Semaphore::new(MAX_APPENDS_IN_FLIGHT)),
            queue: Arc::default(),
        }
    }

    /// Queues `event` behind the ones before it and starts a writer if none is running.
    fn enqueue(&self, event: AuditEvent, permit: tokio::sync::OwnedSemaphorePermit) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let start = {
            let mut queue = self.queue.lock();
            queue.events.push_back((event, permit));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            runtime.spawn(write_queue(
                Arc::clone(&self.store),
                Arc::clone(&self.queue),
            ));
        }
    }

    /// Waits (at most `patience`) for the events in flight to be stored: a draining
    /// server calls it before it flushes its store.
    pub async fn drain(&self, patience: std::time::Duration) {
        let all = MAX_APPENDS_IN_FLIGHT as u32;
        if tokio::time::timeout(patience, self.appends.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("audit events still being stored at shutdown");
        }
    }
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

/// Records administrative calls into a store.
#[derive(Clone)]
pub struct AuditLayer {
    store: Option<AuditSink>,
}

impl AuditLayer {
    /// A layer recording into `sink` (none: nothing is recorded).
    pub fn new(sink: Option<AuditSink>) -> Self {
        Self { store: sink }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service produced by [`AuditLayer`].
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    store: Option<AuditSink>,
}

/// `PermissionDenied` → `PERMISSION_DENIED`.
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for AuditService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let store = match (&self.store, required_role(&rpc)) {
            (Some(store), Some(Role::Admin)) => store.clone(),
            _ => return Box::pin(self.inner.call(request)),
        };
        let target = AuditTarget::default();
        request.extensions_mut().insert(target.clone());
        // Recorded even when the call is dropped (its deadline passed, the client went
        // away) after its action may have happened.
        let mut pending = Pending {
            store,
            rpc,
            target,
            outcome: None,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let (outcome, key_id) = match &result {
                // Errors travel trailers-only, `grpc-status` in the headers; a call that
                // answers (or starts its stream) without one is OK so far.
                Ok(response) => (
                    grpc_status(response)
                        .map_or_else(|| "OK".to_owned(), |c| code_name(tonic::Code::from(c))),
                    response
                        .extensions()
                        .get::<AuditKey>()
                        .map(|k| k.0.clone())
                        .unwrap_or_default(),
                ),
                Err(_) => ("TRANSPORT_ERROR".to_owned(), String::new()),
            };
            pending.outcome = Some((outcome, key_id));
            drop(pending);
            result
        })
    }
}

/// Appends in flight at once per server; beyond, events are dropped (and logged) rather
/// than queued without bound.
const MAX_APPENDS_IN_FLIGHT: usize = 64;

/// An audited call; its event is stored when this is dropped — with the call's outcome,
/// or `CANCELLED` when the call itself was dropped first.
struct Pending {
    store: AuditSink,
    rpc: String,
    target: AuditTarget,
    outcome: Option<(String, String)>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let (outcome, key_id) = self
            .outcome
            .take()
            .unwrap_or_else(|| ("CANCELLED".to_owned(), String::new()));
        // A call without a known key refused at the door acted on nothing: traced, not
        // stored, so keyless callers cannot push real events out of the bounded log.
        if outcome == "UNAUTHENTICATED" && key_id.is_empty() {
            tracing::info!(rpc = %self.rpc, "unauthenticated administrative call refused");
            return;
        }
        let event = AuditEvent {
            seq: 0,
            time_ms: doppel_types::clock::now_ms(),
            key_id,
            rpc: std::mem::take(&mut self.rpc),
            target: self.target.0.lock().clone(),
            outcome,
        };
        let Ok(permit) = Arc::clone(&self.store.appends).try_acquire_owned() else {
            tracing::error!(rpc = %event.rpc, key_id = %event.key_id, target = %event.target, outcome = %event.outcome, "audit event dropped: too many appends in flight");
            return;
        };
        self.store.enqueue(event, permit);
    }
}

/// Stores the queued events one by one, oldest first, until the queue is empty; each
/// event's permit is released once it is stored (or failed).
async fn write_queue(store: Arc<dyn Store>, queue: Arc<Mutex<Queue>>) {
    loop {
        let next = {
            let mut q = queue.lock();
            match q.events.pop_front() {
                Some(next) => next,
                None => {
                    q.writing = false;
                    return;
                }
            }
        };
        let (event, _permit) = next;
        if let Err(e) = store.append_audit_event(&event).await {
            tracing::error!(error = %e, rpc = %event.rpc, key_id = %event.key_id, target = %event.target, outcome = %event.outcome, "audit event not stored");
        }
    }
}

/// `ListAuditEvents` over `store`.
pub async fn list(
    store: &dyn Store,
    request: pb::ListAuditEventsRequest,
) -> Result<pb::ListAuditEventsResponse, Status> {
    let pb::ListAuditEventsRequest {
        page_size,
        page_token,
    } = request;
    let size = match page_size {
        0 => 100,
        n if n > MAX_AUDIT_PAGE => {
            return Err(
                FieldViolation::new("page_size", format!("at most {MAX_AUDIT_PAGE}")).into(),
            );
        }
        n => n,
    } as usize;
    let after = if page_token.is_empty() {
        0
    } else {
        page_token.parse::<u64>().map_err(|_| {
            FieldViolation::new("page_token", "not a token a previous page returned")
        })?
    };
    let events = store
        .audit_events(after, size + 1)
        .await
        .map_err(store_status)?;
    let more = events.len() > size;
    let events: Vec<AuditEvent> = events.into_iter().take(size).collect();
    let next_page_token = match (more, events.last()) {
        (true, Some(last)) => last.seq.to_string(),
        _ => String::new(),
    };
    Ok(pb::ListAuditEventsResponse {
        events: events
            .into_iter()
            .map(|e| pb::AuditEvent {
                seq: e.seq,
                time_ms: e.time_ms,
                key_id: e.key_id,
                rpc: e.rpc,
                target: e.target,
                outcome: e.outcome,
            })
            .collect(),
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_grpc_names() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            code_name(tonic::Code::PermissionDenied),
            "PERMISSION_DENIED"
        );
        assert_eq!(
            code_name(tonic::Code::FailedPrecondition),
            "FAILED_PRECONDITION"
        );
    }
}
