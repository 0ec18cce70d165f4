//! `doppel bench scale --hot-swap`: a retrain hot-swapped on the node that serves the
//! first version. The bench imports a second version of every customer and item (vectors
//! drawn with another seed), builds it while the first one answers RecommendOffers,
//! activates it, and reads the node's memory: the peak while both exist, and at rest with
//! both loaded (the previous version stays in memory for a rollback).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::bench_scale::{
    BenchScaleArgs, Mixture, OffersLoad, VERSION, describe, import, mb, offers_load,
};
use crate::node_process::NodeProcess;

/// The second version's name.
const RETRAIN: &str = "scale-v2";
/// How long after the last vector is handed to the stream the load during the build
/// starts (whether the import still runs then is checked, not assumed).
const LOAD_AFTER_SENT: Duration = Duration::from_secs(5);

/// What the hot swap measured.
#[derive(Debug, Serialize)]
pub(crate) struct HotSwap {
    /// RSS with the first version active, before the second's import.
    rss_before_bytes: u64,
    /// Peak RSS from the second's import until it is built (both in memory).
    peak_rss_bytes: u64,
    /// The second version's build, as the import reports it.
    build_s: f64,
    /// RSS one second after the activation, both versions loaded.
    rss_two_versions_bytes: u64,
    /// `DescribeVersion` after the activation: the first is still loaded (for a rollback)
    /// ...
    first_still_loaded: bool,
    /// ... and the second is active.
    second_active: bool,
    /// RecommendOffers (answered by the active version, the first) while the second
    /// builds: calls per second and p99 (ms), and whether the import (which returns once
    /// the version is built) was running both when that load began and when it ended.
    offers_during_build_qps: f64,
    offers_during_build_p99_ms: f64,
    build_ran_through_load: bool,
    /// RecommendOffers after the swap (the second version active): calls per second and
    /// p99 (ms).
    offers_after_qps: f64,
    offers_after_p99_ms: f64,
}

/// Runs the hot swap on `node`, whose active version is the bench's first.
pub(crate) async fn run(node: &NodeProcess, args: &BenchScaleArgs) -> anyhow::Result<HotSwap> {
    let channel = node.channel.clone();
    ensure!(
        describe(&channel).await?.model_version == VERSION,
        "the hot swap needs {VERSION} active"
    );
    let rss_before_bytes = node.status_bytes("VmRSS:").unwrap_or(0);
    ensure!(
        node.reset_peak_rss(),
        "the node's peak RSS cannot be reset (/proc/PID/clear_refs), so the hot swap's peak would include its start"
    );
    let mixture = Arc::new(Mixture::new(args, args.seed.wrapping_add(1)));
    let (sent, on_sent) = tokio::sync::oneshot::channel();
    let importing = Arc::new(AtomicBool::new(true));
    let load = OffersLoad::of(args);
    let during = {
        let channel = channel.clone();
        let importing = Arc::clone(&importing);
        tokio::spawn(async move {
            if on_sent.await.is_err() {
                return Ok(None);
            }
            tokio::time::sleep(LOAD_AFTER_SENT).await;
            let began = importing.load(Ordering::Acquire);
            let result = offers_load(&channel, load).await?;
            Ok::<_, anyhow::Error>(Some((result, began && importing.load(Ordering::Acquire))))
        })
    };
    let summary = import(&channel, &mixture, args, RETRAIN, Some(sent)).await;
    importing.store(false, Ordering::Release);
    let summary = summary?;
    let peak_rss_bytes = node.status_bytes("VmHWM:").unwrap_or(0);
    let ((during_qps, during_p99), build_ran_through_load) = during
        .await?
        .context("RecommendOffers during the build")?
        .context("the import ended before its last vector was sent")?;

    doppel_client::activate(channel.clone(), RETRAIN).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_two_versions_bytes = node.status_bytes("VmRSS:").unwrap_or(0);
    let first = version_state(&channel, VERSION).await?;
    let second = version_state(&channel, RETRAIN).await?;
    let (after_qps, after_p99) = offers_load(&channel, load).await?;
    Ok(HotSwap {
        rss_before_bytes,
        peak_rss_bytes,
        build_s: summary.build_seconds,
        rss_two_versions_bytes,
        first_still_loaded: first.loaded,
        second_active: second.active,
        offers_during_build_qps: during_qps,
        offers_during_build_p99_ms: during_p99,
        build_ran_through_load,
        offers_after_qps: after_qps,
        offers_after_p99_ms: after_p99,
    })
}

async fn version_state(
    channel: &Channel,
    version: &str,
) -> anyhow::Result<pb::DescribeVersionResponse> {
    Ok(ModelAdminClient::new(channel.clone())
        .describe_version(pb::DescribeVersionRequest {
            model_version: version.to_owned(),
        })
        .await
        .with_context(|| format!("DescribeVersion {version}"))?
        .into_inner())
}

/// The hot swap's rows of the report's table.
pub(crate) fn print_rows(h: &HotSwap) {
    println!(
        "| hot swap: RSS before → peak during the second version's import + build | {} → {} |",
        mb(h.rss_before_bytes),
        mb(h.peak_rss_bytes)
    );
    println!("| hot swap: second version's build | {:.1} s |", h.build_s);
    println!(
        "| hot swap: RSS 1 s after the activation | {} (first still loaded: {}, second active: {}) |",
        mb(h.rss_two_versions_bytes),
        h.first_still_loaded,
        h.second_active
    );
    println!(
        "| hot swap: RecommendOffers during the build{} | {:.0} QPS, p99 {:.1} ms |",
        if h.build_ran_through_load {
            ""
        } else {
            " (NOT all of it during the build: the build ended first)"
        },
        h.offers_during_build_qps,
        h.offers_during_build_p99_ms
    );
    println!(
        "| hot swap: RecommendOffers after the swap | {:.0} QPS, p99 {:.1} ms |",
        h.offers_after_qps, h.offers_after_p99_ms
    );
}
