//! Open-loop load for `doppel bench load`: RecommendOffers sent at a fixed rate whatever
//! the answers take, each timed from the instant it was due (not from when it was sent), so
//! a stall is charged to every request it delays. A closed loop of N clients at saturation
//! measures throughput, not latency: its p99 grows with any added work. This gives the
//! latency a service provisioned below saturation sees at a given load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_proto::v1::recommendations_client::RecommendationsClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use crate::bench_load::{OfferMode, Tally, offer_request};

/// Requests in flight at most; a request due while this many wait counts as failed
/// (RESOURCE_EXHAUSTED), so an overloaded target shows up as errors rather than a quietly
/// lower rate.
const MAX_IN_FLIGHT: usize = 1_024;

/// One paced phase: `rate` RecommendOffers per second of `mode` for `seconds`, for random
/// ones of `customers`, each with `deadline`. Returns the tally once every request ended
/// (empty without customers).
pub(crate) async fn paced_offers(
    channel: &Channel,
    customers: &Arc<Vec<String>>,
    mode: OfferMode,
    rate: f64,
    seconds: u64,
    deadline: Duration,
) -> Tally {
    if customers.is_empty() {
        return Tally::default();
    }
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * seconds as f64).round() as u64;
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let client = RecommendationsClient::new(channel.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (customers, runtime) = (Arc::clone(customers), tokio::runtime::Handle::current());
    // Paced from its own thread: tokio's timer ticks in whole milliseconds, which would
    // send a rate of thousands per second in bursts, each request late by up to a tick.
    let pacer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(mode.record);
        for i in 0..total {
            let due = start + period.mul_f64(i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let request = offer_request(&customers, &mut state, mode);
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                let refused = Err(tonic::Status::resource_exhausted(
                    "bench: too many in flight",
                ));
                let _ = tx.send((due, due.elapsed(), refused));
                continue;
            };
            let (mut client, tx) = (client.clone(), tx.clone());
            runtime.spawn(async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(deadline);
                let result = client.recommend_offers(request).await.map(|_| ());
                drop(permit);
                let _ = tx.send((due, due.elapsed(), result));
            });
        }
    });
    let mut tally = Tally::default();
    while let Some((due, took, result)) = rx.recv().await {
        tally.record_took(due, took, result);
    }
    let _ = pacer.join();
    tally
}
