//! One tower layer that gives every RPC a tracing span and records its latency and gRPC
//! status as OpenTelemetry metrics (`rpc.server.duration`, ms). Handlers stay free of
//! hand-written timing code.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use tower::{Layer, Service};
use tracing::Instrument;

/// The instruments shared by every RPC.
pub struct RpcMetrics {
    duration_ms: Histogram<f64>,
}

impl RpcMetrics {
    /// Instruments from the global meter provider (a no-op until one is installed).
    pub fn from_global() -> Arc<Self> {
        let meter = opentelemetry::global::meter("doppel");
        Arc::new(Self {
            duration_ms: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Latency of doppel RPCs by method and gRPC status")
                .build(),
        })
    }

    fn record(&self, method: &str, status: &str, elapsed_ms: f64) {
        self.duration_ms.record(
            elapsed_ms,
            &[
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("rpc.grpc.status_code", status.to_owned()),
            ],
        );
    }
}

/// Wraps the router so every request is measured.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service produced by [`RpcMetricsLayer`].
#[derive(Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The `grpc-status` a response carries in its headers: errors travel trailers-only, so it
/// is there for them; a call that answers (or starts its stream) has none yet (`None`).
pub fn grpc_status<RB>(response: &http::Response<RB>) -> Option<i32> {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<S, B, RB> Service<http::Request<B>> for RpcMetricsService<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!("rpc", rpc.method = %method, rpc.grpc.status_code = tracing::field::Empty);
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let result = future.await;
                // Errors returned by handlers travel as a trailers-only response, with
                // `grpc-status` in the headers; streams that succeed report it in trailers.
                let status = match &result {
                    Ok(response) => grpc_status(response).unwrap_or(0).to_string(),
                    Err(_) => "transport".to_owned(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", status.as_str());
                let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                metrics.record(&method, &status, elapsed_ms);
                tracing::debug!(elapsed_ms, status = %status, "rpc finished");
                result
            }
            .instrument(span),
        )
    }
}
