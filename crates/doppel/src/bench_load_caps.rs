//! `doppel bench load --caps`: what a contact policy, a request context and recording
//! impressions cost RecommendOffers, in phases beside the plain load of the same run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use doppel_proto::v1 as pb;
use tonic::transport::Channel;

use crate::bench_load::{BenchLoadArgs, OfferMode, Tally, spawn_load, summary, with_cpu};

/// The `--caps` phases: offers under a contact policy with a context, then also recording
/// impressions; QPS and p99 beside the plain phase of the same run.
pub(crate) async fn cap_phases(
    args: &Arc<BenchLoadArgs>,
    channel: &Channel,
    customers: &Arc<Vec<String>>,
    seeds: &Arc<Vec<String>>,
    plain: &Tally,
) -> anyhow::Result<()> {
    use doppel_proto::v1::frequency_cap::CapScope;
    let cap = |scope: CapScope, max: u32| pb::FrequencyCap {
        scope: scope as i32,
        attribute: String::new(),
        max_impressions: max,
        window_seconds: 86_400,
    };
    let seconds = args.seconds as f64;
    let in_process = args.addr.is_none();
    let phase = |mode: OfferMode| {
        with_cpu(in_process, async move {
            let mut tally = Tally::default();
            for w in spawn_load(args, channel, customers, seeds, mode) {
                tally.merge(w.await.context("load worker")?.0);
            }
            anyhow::Ok(tally)
        })
    };
    let mut policies = doppel_proto::v1::policies_client::PoliciesClient::new(channel.clone());
    let capped = pb::ContactPolicy {
        caps: vec![
            cap(CapScope::Item, 3),
            cap(CapScope::Category, 30),
            cap(CapScope::All, 1_000),
        ],
    };
    let (context, no_context) = (
        OfferMode {
            context: true,
            record: false,
        },
        OfferMode::default(),
    );
    // Two rounds of the four read phases, interleaved, so a drift of the machine over the
    // run (2 shared cores) does not land on one phase; the main load is the first "plain".
    let mut tallies: Vec<(&str, Tally)> = ["plain", "context", "caps", "caps + context"]
        .into_iter()
        .map(|name| (name, Tally::default()))
        .collect();
    tallies[0].1.merge(plain.clone());
    for round in 0..2 {
        policies
            .set_contact_policy(pb::ContactPolicy::default())
            .await
            .context("SetContactPolicy")?;
        if round > 0 {
            tallies[0].1.merge(phase(no_context).await?);
        }
        tallies[1].1.merge(phase(context).await?);
        policies
            .set_contact_policy(capped.clone())
            .await
            .context("SetContactPolicy")?;
        tallies[2].1.merge(phase(no_context).await?);
        tallies[3].1.merge(phase(context).await?);
    }
    let mut rows: Vec<_> = tallies
        .iter()
        .map(|(name, t)| (*name, summary(t, 2.0 * seconds), t.cpu_micros_per_request()))
        .collect();
    // Recording: first without a policy (the bare cost of recording, against "context"),
    // then under the caps, interleaved with reads of the same growing exposures — the caps
    // bind there as they do while recording, so the pair differs by the recording alone
    // (the read phases above ran with no exposures, where caps never bind).
    let recorded = OfferMode {
        context: true,
        record: true,
    };
    policies
        .set_contact_policy(pb::ContactPolicy::default())
        .await
        .context("SetContactPolicy")?;
    let bare = phase(recorded).await?;
    rows.push((
        "context + record_impressions",
        summary(&bare, seconds),
        bare.cpu_micros_per_request(),
    ));
    policies
        .set_contact_policy(capped.clone())
        .await
        .context("SetContactPolicy")?;
    let rounds = usize::from(args.caps_rounds);
    let (recording, binding, mut closed_diffs) = pairs(rounds, &phase, recorded, context).await?;
    // Recording last: the paced rate below is a share of what the last row sustains.
    push_rows(
        &mut rows,
        [
            ("caps + context, exposures recorded", &binding),
            ("caps + context + record_impressions", &recording),
        ],
        rounds as f64 * seconds,
    );
    // The same pair at a fixed offered rate, a share of what recording sustains: the
    // latency below saturation, where a closed loop's p99 only restates the lower
    // throughput.
    let rate = (args.caps_paced_share * rows[rows.len() - 1].1.0).max(1.0);
    let timeout = Duration::from_millis(args.deadline_ms);
    let paced = |mode: OfferMode| {
        with_cpu(in_process, async move {
            let load = crate::bench_paced::paced_offers(
                channel,
                customers,
                mode,
                rate,
                args.seconds,
                timeout,
            );
            anyhow::Ok(load.await)
        })
    };
    let (paced_recording, paced_binding, mut paced_diffs) =
        pairs(rounds, &paced, recorded, context).await?;
    push_rows(
        &mut rows,
        [
            ("paced: caps + context, exp. recorded", &paced_binding),
            ("paced: caps + context + record_impr.", &paced_recording),
        ],
        rounds as f64 * seconds,
    );
    println!(
        "\nRecommendOffers under a contact policy (same run; read phases 2 × {seconds:.0} s \
         interleaved, \"context + record_impressions\" 1 × {seconds:.0} s, the recording pairs \
         {rounds} × {seconds:.0} s each):"
    );
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11}",
        "phase", "QPS", "p50 ms", "p99 ms", "× plain", "errors", "CPU µs/req"
    );
    let base = rows[0].1.0.max(f64::MIN_POSITIVE);
    for (name, (qps, p50, p99, errors), cpu) in &rows {
        let cpu = cpu.map_or_else(|| "—".to_owned(), |c| format!("{c:.0}"));
        println!(
            "{name:<38} {qps:>9.0} {p50:>9.2} {p99:>9.2} {:>9.2} {errors:>8} {cpu:>11}",
            qps / base
        );
    }
    let p99 = |name: &str| rows.iter().find(|r| r.0 == name).map_or(0.0, |r| r.1.2);
    let cpu = |name: &str| rows.iter().find(|r| r.0 == name).and_then(|r| r.2);
    println!(
        "record_impressions adds to p99: {:+.2} ms without caps (vs \"context\"), {:+.2} ms under \
         caps (vs \"caps + context, exposures recorded\")",
        p99("context + record_impressions") - p99("context"),
        p99("caps + context + record_impressions") - p99("caps + context, exposures recorded"),
    );
    println!(
        "at a fixed {rate:.0} requests/s (open loop, timed from when each was due): {:+.2} ms \
         under caps",
        p99("paced: caps + context + record_impr.") - p99("paced: caps + context, exp. recorded"),
    );
    println!(
        "per round ({rounds} rounds of one recording and one reading phase, back to back, the \
         order alternating): record_impressions adds to p99 {} closed loop, {} at the fixed rate",
        spread(&mut closed_diffs),
        spread(&mut paced_diffs),
    );
    if let (Some(recording), Some(reading)) = (
        cpu("paced: caps + context + record_impr."),
        cpu("paced: caps + context, exp. recorded"),
    ) {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        println!(
            "recording costs {:+.0} µs of process CPU (clients and server) per request at that \
             rate; the paced phases kept {:.0} % and {:.0} % of {cores:.0} cores busy \
             (reading, recording)",
            recording - reading,
            100.0 * rate * reading / (cores * 1e6),
            100.0 * rate * recording / (cores * 1e6),
        );
    }
    Ok(())
}

/// A phase's row: name, (QPS, p50, p99, errors), CPU µs per request.
type Row = (&'static str, (f64, f64, f64, usize), Option<f64>);

/// Adds one row per `(name, tally)` phase of `seconds`, in the order given.
fn push_rows(rows: &mut Vec<Row>, phases: [(&'static str, &Tally); 2], seconds: f64) {
    for (name, tally) in phases {
        rows.push((
            name,
            summary(tally, seconds),
            tally.cpu_micros_per_request(),
        ));
    }
}

/// `rounds` pairs of a recording phase (`recording_mode`) and a reading one
/// (`reading_mode`), each run by `run`; returns (recording, reading) merged and the
/// per-round p99 differences (recording − reading).
async fn pairs<F, Fut>(
    rounds: usize,
    mut run: F,
    recording_mode: OfferMode,
    reading_mode: OfferMode,
) -> anyhow::Result<(Tally, Tally, Vec<f64>)>
where
    F: FnMut(OfferMode) -> Fut,
    Fut: Future<Output = anyhow::Result<Tally>>,
{
    let (mut recording, mut reading) = (Tally::default(), Tally::default());
    let mut diffs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (one_recording, one_reading) =
            pair(round, run(recording_mode), run(reading_mode)).await?;
        diffs.push(p99_of(&one_recording) - p99_of(&one_reading));
        recording.merge(one_recording);
        reading.merge(one_reading);
    }
    Ok((recording, reading, diffs))
}

/// Runs a recording phase and a reading phase back to back, the recording one first in even
/// rounds and second in odd ones, so a drift of the shared machine over a pair lands on
/// each side equally often; returns (recording, reading).
async fn pair(
    round: usize,
    recording: impl Future<Output = anyhow::Result<Tally>>,
    reading: impl Future<Output = anyhow::Result<Tally>>,
) -> anyhow::Result<(Tally, Tally)> {
    if round.is_multiple_of(2) {
        let rec = recording.await?;
        Ok((rec, reading.await?))
    } else {
        let read = reading.await?;
        Ok((recording.await?, read))
    }
}

/// The p99 (ms) of one phase.
fn p99_of(tally: &Tally) -> f64 {
    // The length only scales the QPS, which is not used here.
    summary(tally, 1.0).2
}

/// "median +x ms (min … max)" of per-round differences.
fn spread(diffs: &mut [f64]) -> String {
    diffs.sort_by(f64::total_cmp);
    let Some((&min, &max)) = diffs.first().zip(diffs.last()) else {
        return "—".to_owned();
    };
    let n = diffs.len();
    let median = if !n.is_multiple_of(2) {
        diffs[n / 2]
    } else {
        (diffs[n / 2 - 1] + diffs[n / 2]) / 2.0
    };
    format!("median {median:+.2} ms ({min:+.2} … {max:+.2})")
}
