//! `doppel serve`: config → open store → catch up → serve → drain on SIGTERM/SIGINT → exit.

use std::sync::Arc;

use anyhow::Context as _;
use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_store::{EmbeddedStore, RedisStore, Store};
use tokio::net::TcpListener;

use crate::settings::{Role, Settings};

/// Runs a node until a signal arrives; returns once drained and flushed.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    match settings.role {
        Role::All => {}
    }
    let store: Arc<dyn Store> = match &settings.redis {
        Some(config) => Arc::new(
            RedisStore::connect(config.clone())
                .await
                .with_context(|| format!("connecting to Redis at {}", config.url))?,
        ),
        None => Arc::new(
            EmbeddedStore::open(&settings.data_dir)
                .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?,
        ),
    };
    let node = Node::open(
        store,
        NodeConfig {
            engine: settings.engine.clone(),
            snapshot_dir: Some(settings.data_dir.join("snapshots")),
        },
    )
    .await
    .map_err(|s| anyhow::anyhow!("catching up with the store: {}", s.message()))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %settings.data_dir.display(), "doppel serving (role all)");
    let options = ServeOptions {
        grace_period: settings.grace_period,
        ..ServeOptions::default()
    };
    doppel_grpc::run(listener, node, options, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT"),
        () = terminate => tracing::info!("SIGTERM"),
    }
}
