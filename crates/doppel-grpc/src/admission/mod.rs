//! Admission control and bounds: every public call but health belongs to one of two cost
//! classes, each with its own concurrency limit. A call over its class's limit is refused
//! at once with RESOURCE_EXHAUSTED (no queue), so overload sheds heavy work instead of
//! slowing every call down. The permit is held until the response body ends, so a
//! streamed audience counts until its last page. A message over the size limit is answered
//! RESOURCE_EXHAUSTED too (`oversize`), in headers and trailers alike.
//!
//! * cheap: offers, similar items, profile reads and writes, segments, policies, version
//!   administration;
//! * heavy: lookalike audiences, embedding imports, training.

mod admitted_body;
mod cost_class;
mod oversize;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tower::{Layer, Service};

pub use admitted_body::AdmittedBody;
pub use cost_class::{CostClass, cost_class};

/// How long a shed call is told to wait before retrying (`retry-after-ms` and gRPC's
/// `grpc-retry-pushback-ms`), per class: about the time a permit takes to free up. A
/// client that retries at once makes shedding cost the CPU cheap calls need (with a 5 ms
/// client backoff, 1.2k sheds a second took offers' p99 beside an overload from 1.28× to
/// 1.5× unloaded in `doppel bench load --overload-heavy`).
pub const HEAVY_PUSHBACK_MS: u64 = 100;
/// [`HEAVY_PUSHBACK_MS`] for cheap calls, which free their permits in milliseconds.
pub const CHEAP_PUSHBACK_MS: u64 = 5;

/// Adds the wait a refused client should keep before retrying, in milliseconds, as
/// `retry-after-ms` and gRPC's own `grpc-retry-pushback-ms`.
pub(crate) fn with_retry_hint(status: &mut Status, ms: u64) {
    let value = tonic::metadata::MetadataValue::from(ms);
    status
        .metadata_mut()
        .insert("retry-after-ms", value.clone());
    status
        .metadata_mut()
        .insert("grpc-retry-pushback-ms", value);
}

/// Concurrent calls admitted per cost class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Cheap calls in flight at once.
    pub cheap: usize,
    /// Heavy calls in flight at once.
    pub heavy: usize,
}

impl AdmissionLimits {
    /// Defaults from the core count: 256 cheap and 4 heavy calls per core.
    pub fn from_cores() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            cheap: 256 * cores,
            heavy: 4 * cores,
        }
    }
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self::from_cores()
    }
}

/// The layer holding both classes' permits (shared by every connection).
#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    limits: AdmissionLimits,
    cheap: Arc<Semaphore>,
    heavy: Arc<Semaphore>,
}

impl AdmissionLayer {
    /// A layer admitting at most `limits` calls at once.
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            limits,
            cheap: Arc::new(Semaphore::new(limits.cheap)),
            heavy: Arc::new(Semaphore::new(limits.heavy)),
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`AdmissionLayer`].
#[derive(Clone, Debug)]
pub struct AdmissionService<S> {
    inner: S,
    layer: AdmissionLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The response of an admitted call: its size-limit status rewritten, its body holding
/// `permit`.
fn admitted<RB>(
    mut response: http::Response<RB>,
    permit: Option<OwnedSemaphorePermit>,
) -> http::Response<AdmittedBody<RB>> {
    oversize::rewrite(response.headers_mut());
    response.map(|body| AdmittedBody::new(body, permit))
}

impl<S, B, RB> Service<http::Request<B>> for AdmissionService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<AdmittedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(class) = cost_class(request.uri().path()) else {
            let call = self.inner.call(request);
            return Box::pin(async move { Ok(admitted(call.await?, None)) });
        };
        let (semaphore, limit) = match class {
            CostClass::Cheap => (&self.layer.cheap, self.layer.limits.cheap),
            CostClass::Heavy => (&self.layer.heavy, self.layer.limits.heavy),
        };
        match Arc::clone(semaphore).try_acquire_owned() {
            Ok(permit) => {
                let call = self.inner.call(request);
                Box::pin(async move { Ok(admitted(call.await?, Some(permit))) })
            }
            Err(_) => {
                tracing::info!(rpc.method = %request.uri().path(), class = class.name(), limit, "call shed: over the concurrency limit");
                let pushback = match class {
                    CostClass::Cheap => CHEAP_PUSHBACK_MS,
                    CostClass::Heavy => HEAVY_PUSHBACK_MS,
                };
                let mut status = Status::resource_exhausted(format!(
                    "over the limit of {limit} concurrent {} calls; retry in {pushback} ms",
                    class.name()
                ));
                with_retry_hint(&mut status, pushback);
                Box::pin(std::future::ready(Ok(status
                    .into_http::<RB>()
                    .map(|b| AdmittedBody::new(b, None)))))
            }
        }
    }
}
