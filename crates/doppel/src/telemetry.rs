//! Logging and OpenTelemetry: `tracing` to stderr always; spans and metrics exported over
//! OTLP (gRPC) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Default log filter; hnsw_rs logs every build at INFO, which is noise for operators.
const DEFAULT_LOG_FILTER: &str = "info,hnsw_rs=warn,h2=warn,tower=warn";

/// Keeps the exporters alive; flushes them on drop.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
        if let Some(meter) = self.meter.take() {
            let _ = meter.shutdown();
        }
    }
}

/// Installs the subscriber (and the OTLP exporters when configured). Call inside a tokio
/// runtime: the OTLP exporters need one.
pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    // DOPPEL_LOG first, then the ecosystem's RUST_LOG, then the default.
    let filter = EnvFilter::try_from_env("DOPPEL_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .or_else(|_| EnvFilter::try_new(DEFAULT_LOG_FILTER))
        .context("log filter")?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let otlp = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    if !otlp {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init()?;
        return Ok(Telemetry {
            tracer: None,
            meter: None,
        });
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .context("OTLP span exporter")?;
    let tracer = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(span_exporter)
        .build();
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .build()
        .context("OTLP metric exporter")?;
    let meter = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metric_exporter)
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer.tracer("doppel"));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel_layer)
        .try_init()?;
    Ok(Telemetry {
        tracer: Some(tracer),
        meter: Some(meter),
    })
}
