//! The event history of `doppel bench scale --events-per-customer E`: E events per
//! customer (purchases, views, carts, impressions over the last 30 days, uploaded roughly
//! in time order, as they would arrive) uploaded over gRPC, so the restarts the bench
//! times have a log to read — the whole of it without event checkpoints, only the tail
//! with them — and, with `--event-retention-days D`, a node started with that flag has old
//! events to remove.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use doppel_proto::v1 as pb;
use serde::Serialize;
use tonic::transport::Channel;

use crate::bench_load::percentile;
use crate::bench_scale::{CHUNK, bar, customer_id, item_id, splitmix64};
use crate::node_process::NodeProcess;

/// The span of the generated events' timestamps.
const SPAN_MS: i64 = 30 * 86_400_000;
/// How far an event's timestamp strays from upload order.
const JITTER_MS: u64 = 3_600_000;

/// Uploads `per_customer` events for each of `customers` customers over `items` items;
/// returns events per second.
pub(crate) async fn upload_events(
    channel: &Channel,
    customers: usize,
    items: usize,
    per_customer: usize,
    seed: u64,
) -> anyhow::Result<f64> {
    let total = customers * per_customer;
    let progress = bar(total, "events");
    let now = doppel_types::clock::now_ms();
    let kinds = [
        pb::EventType::Purchase,
        pb::EventType::View,
        pb::EventType::View,
        pb::EventType::AddToCart,
        pb::EventType::Impression,
    ];
    let started = Instant::now();
    let batch = CHUNK * 16;
    for start in (0..total).step_by(batch) {
        let records: Vec<pb::Event> = (start..(start + batch).min(total))
            .map(|n| {
                let r = splitmix64(seed ^ (n as u64).wrapping_mul(0x9e37));
                let kind = kinds[(r % kinds.len() as u64) as usize];
                pb::Event {
                    customer_id: customer_id(n % customers),
                    item_id: item_id(((r >> 8) % items as u64) as usize),
                    r#type: kind as i32,
                    // Oldest first, an hour of jitter.
                    timestamp_ms: now - SPAN_MS + (SPAN_MS as f64 * n as f64 / total as f64) as i64
                        - ((r >> 32) % JITTER_MS) as i64,
                    quantity: 1,
                    ..Default::default()
                }
            })
            .collect();
        let sent = records.len() as u64;
        doppel_client::upload_events(channel.clone(), records, |_| {}).await?;
        progress.inc(sent);
    }
    progress.finish_and_clear();
    Ok(total as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// What a node started with `--event-retention-days` removed from the log.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RetentionRun {
    pub(crate) days: u64,
    pub(crate) events_removed: u64,
    /// The node's own time for the removal (its log line).
    pub(crate) compaction_ms: u64,
    /// From the node's start until the removal was logged (start-up and the first
    /// checkpoint round included).
    pub(crate) until_removed_s: f64,
    /// `RecordEvents` latency while the removal ran.
    pub(crate) ingest_during: IngestLatency,
    /// `RecordEvents` latency after it (same node, same probe).
    pub(crate) ingest_after: IngestLatency,
}

/// Latency of one-event `RecordEvents` calls sent every [`PROBE_EVERY`].
#[derive(Debug, Default, Serialize)]
pub(crate) struct IngestLatency {
    pub(crate) calls: usize,
    pub(crate) failed: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl IngestLatency {
    fn of(probes: &[&Probe]) -> Self {
        let mut micros: Vec<u64> = probes.iter().map(|p| p.took_micros).collect();
        micros.sort_unstable();
        Self {
            calls: probes.len(),
            failed: probes.iter().filter(|p| !p.ok).count(),
            p50_ms: percentile(&micros, 0.50),
            p99_ms: percentile(&micros, 0.99),
            max_ms: percentile(&micros, 1.0),
        }
    }
}

/// How often the ingest probe sends one event.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How long the probe goes on after the removal was logged (the baseline).
const PROBE_AFTER: Duration = Duration::from_secs(5);

/// One probe call: when it was sent (since the node's start), how long it took.
struct Probe {
    sent_s: f64,
    took_micros: u64,
    ok: bool,
}

/// Sends one-event `RecordEvents` calls (views of the generated customers, at the current
/// time, so none is old enough to be removed) every [`PROBE_EVERY`], one at a time, until
/// `stop` fires; returns every call.
async fn probe_ingest(
    channel: Channel,
    started: Instant,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Probe> {
    let mut client = pb::ingest_client::IngestClient::new(channel);
    let mut probes = Vec::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let r = splitmix64(n ^ 0x5eed);
        let event = pb::Event {
            customer_id: customer_id((r % 1_000) as usize),
            item_id: item_id(((r >> 16) % 10) as usize),
            r#type: pb::EventType::View as i32,
            timestamp_ms: doppel_types::clock::now_ms(),
            quantity: 1,
            ..Default::default()
        };
        let sent = Instant::now();
        let mut request = tonic::Request::new(tokio_stream::iter([event]));
        request.set_timeout(Duration::from_secs(30));
        let ok = client.record_events(request).await.is_ok();
        probes.push(Probe {
            sent_s: (sent - started).as_secs_f64(),
            took_micros: sent.elapsed().as_micros() as u64,
            ok,
        });
    }
    probes
}

/// Starts the node in `dir` with `--event-retention-days days` and checkpoints every
/// second, waits for its log to report the removal, and stops it. Meanwhile one-event
/// `RecordEvents` calls probe ingest latency: during the removal (the `compaction_ms`
/// before it was logged) against the [`PROBE_AFTER`] after.
pub(crate) async fn run_retention(
    dir: &Path,
    build_threads: usize,
    days: u64,
) -> anyhow::Result<RetentionRun> {
    let log_path = dir.join("node.log");
    let offset = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    let started = Instant::now();
    let node = NodeProcess::start_with(
        dir,
        build_threads,
        &[
            "--event-retention-days",
            &days.to_string(),
            "--event-checkpoint-every",
            "1",
        ],
    )
    .await?;
    let deadline = started + Duration::from_secs(900);
    let (stop_probe, stopped) = tokio::sync::oneshot::channel();
    let probe = tokio::spawn(probe_ingest(node.channel.clone(), started, stopped));
    loop {
        if let Some((events, ms)) = removal_logged(&log_path, offset)? {
            let until = started.elapsed().as_secs_f64();
            tokio::time::sleep(PROBE_AFTER).await;
            let _ = stop_probe.send(());
            let probes = probe.await?;
            node.stop().await?;
            // The log is read every 250 ms: the removal ended at most that long before,
            // so it surely ran over [until − its time, until − 0.25 s].
            let (from, to) = (until - ms as f64 / 1e3, until - 0.25);
            let during: Vec<&Probe> = probes
                .iter()
                .filter(|p| p.sent_s >= from && p.sent_s <= to)
                .collect();
            let after: Vec<&Probe> = probes.iter().filter(|p| p.sent_s > until).collect();
            return Ok(RetentionRun {
                days,
                events_removed: events,
                compaction_ms: ms,
                until_removed_s: until,
                ingest_during: IngestLatency::of(&during),
                ingest_after: IngestLatency::of(&after),
            });
        }
        if Instant::now() > deadline {
            bail!(
                "the node removed no event within 15 minutes; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `events` and `elapsed_ms` of the first "old events removed" line after `offset`.
fn removal_logged(log: &Path, offset: u64) -> anyhow::Result<Option<(u64, u64)>> {
    let bytes = std::fs::read(log)?;
    let text = strip_ansi(&String::from_utf8_lossy(
        &bytes[(offset as usize).min(bytes.len())..],
    ));
    let Some(line) = text.lines().find(|l| l.contains("old events removed")) else {
        return Ok(None);
    };
    let field = |name: &str| -> Option<u64> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    match (field("events"), field("elapsed_ms")) {
        (Some(events), Some(ms)) => Ok(Some((events, ms))),
        _ => bail!("unexpected log line: {line}"),
    }
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_removal_line_is_read_with_or_without_colours() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        std::fs::write(
            &log,
            "INFO other line events=1\n\
             INFO doppel_node::event_retention: old events removed (event retention) \
             \u{1b}[3mevents\u{1b}[0m\u{1b}[2m=\u{1b}[0m1234 through=9 elapsed_ms=56\n",
        )
        .unwrap();
        assert_eq!(removal_logged(&log, 0).unwrap(), Some((1234, 56)));
        let len = std::fs::metadata(&log).unwrap().len();
        assert_eq!(removal_logged(&log, len).unwrap(), None);
    }
}
