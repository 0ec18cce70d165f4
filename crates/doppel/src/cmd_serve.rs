//! `doppel serve`: config → open store → catch up → serve → drain on SIGTERM/SIGINT → exit.

use std::sync::Arc;

use anyhow::Context as _;
use doppel_grpc::auth::ApiKeys;
use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_store::{EmbeddedStore, RedisStore, Store};
use tokio::net::TcpListener;

use crate::settings::{Role, Settings};

/// Runs a node until a signal arrives; returns once drained and flushed.
pub async fn serve(settings: Settings, keys: Option<Arc<ApiKeys>>) -> anyhow::Result<()> {
    crate::heavy_priority::lower_heavy_pool_priority(settings.heavy_scheduling);
    match settings.role {
        Role::All => {}
        Role::Shard => return serve_shard(settings).await,
        Role::Router => return serve_router(settings, keys).await,
    }
    let store: Arc<dyn Store> = match &settings.redis {
        Some(config) => Arc::new(RedisStore::connect(config.clone()).await.with_context(|| {
            format!(
                "connecting to Redis at {}",
                doppel_store::redacted_url(&config.url)
            )
        })?),
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
            keep_versions: settings.keep_versions,
            privacy_floor: settings.privacy_floor,
            saved_audience_limits: settings.saved_audience_limits,
            stream_idle: settings.stream_idle,
            event_checkpoint_every: settings.event_checkpoint_every,
            event_retention: settings.event_retention,
            max_loaded_versions: settings.max_loaded_versions,
            ..NodeConfig::default()
        },
        Arc::new(doppel_node::Everyone),
    )
    .await
    .map_err(|s| anyhow::anyhow!("catching up with the store: {}", s))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %settings.data_dir.display(), "doppel serving (role all)");
    doppel_grpc::run(
        listener,
        node,
        serve_options(&settings, keys),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

async fn connect_redis(settings: &Settings) -> anyhow::Result<RedisStore> {
    let config = settings
        .redis
        .clone()
        .context("roles shard and router need --redis")?;
    RedisStore::connect(config.clone()).await.with_context(|| {
        format!(
            "connecting to Redis at {}",
            doppel_store::redacted_url(&config.url)
        )
    })
}

fn serve_options(settings: &Settings, api_keys: Option<Arc<ApiKeys>>) -> ServeOptions {
    ServeOptions {
        grace_period: settings.grace_period,
        api_keys,
        admission: settings.admission,
        tls: settings.tls.clone(),
        key_rate_limit: settings.key_rate_limit,
        health_listen: settings.health_listen,
        ..ServeOptions::default()
    }
}

/// A shard node: public port for health, internal port for routers.
async fn serve_shard(settings: Settings) -> anyhow::Result<()> {
    let shard = settings
        .shard
        .clone()
        .context("role shard needs its settings")?;
    let store = connect_redis(&settings).await?;
    let public = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let internal = TcpListener::bind(shard.internal_listen)
        .await
        .with_context(|| format!("binding {}", shard.internal_listen))?;
    let advertise = match shard.advertise {
        Some(a) => a,
        None => internal.local_addr()?.to_string(),
    };
    tracing::info!(
        addr = %public.local_addr()?,
        internal = %internal.local_addr()?,
        %advertise,
        node.id = %shard.node_id,
        "doppel shard node starting"
    );
    let config = doppel_cluster::shard::ShardNodeConfig {
        node_id: shard.node_id,
        advertise,
        node: NodeConfig {
            engine: settings.engine.clone(),
            snapshot_dir: Some(settings.data_dir.join("snapshots")),
            keep_versions: settings.keep_versions,
            stream_idle: settings.stream_idle,
            event_checkpoint_every: settings.event_checkpoint_every,
            event_retention: settings.event_retention,
            max_loaded_versions: settings.max_loaded_versions,
            ..NodeConfig::default()
        },
        serve: serve_options(&settings, None),
        internal_tls: settings.internal_tls.server.clone(),
    };
    doppel_cluster::shard::run(store, config, public, internal, shutdown_signal()).await?;
    Ok(())
}

/// A router: the public API over the shard nodes.
async fn serve_router(settings: Settings, keys: Option<Arc<ApiKeys>>) -> anyhow::Result<()> {
    let store = connect_redis(&settings).await?;
    let router = doppel_cluster::router::Router::connect_with_tls(
        store,
        settings.engine.shard_count,
        settings.internal_tls.client.clone(),
    )
    .await
    .map_err(|s| anyhow::anyhow!("reading the cluster topology: {}", s))?;
    router.set_privacy_floor(settings.privacy_floor);
    router.set_saved_audience_limits(settings.saved_audience_limits);
    router.set_stream_idle(settings.stream_idle);
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(addr = %listener.local_addr()?, nodes = router.topology().nodes.len(), "doppel router serving");
    doppel_cluster::router::server::run(
        listener,
        router,
        serve_options(&settings, keys),
        shutdown_signal(),
    )
    .await?;
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
