//! Bulk uploads of customers, items and events over `Ingest`, each with a progress bar —
//! shared by `import events`, the demo and the load generator.

use doppel_grpc::convert::{customer_to_pb, event_to_pb, item_to_pb};
use doppel_proto::v1 as pb;
use doppel_types::{Customer, Event, Item};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

use doppel_client::{upload_customers, upload_events, upload_items};

/// A progress bar for `len` records of `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Uploads customers, then items, then events; returns the events' summary.
pub async fn upload_all(
    channel: &Channel,
    customers: &[Customer],
    items: &[Item],
    events: &[Event],
) -> anyhow::Result<pb::WriteSummary> {
    let progress = bar(customers.len() as u64, "customers");
    let tick = progress.clone();
    let rows = customers.iter().cloned().map(customer_to_pb).collect();
    upload_customers(channel.clone(), rows, move |_| tick.inc(1)).await?;
    progress.finish();
    let progress = bar(items.len() as u64, "items");
    let tick = progress.clone();
    let rows = items.iter().cloned().map(item_to_pb).collect();
    upload_items(channel.clone(), rows, move |_| tick.inc(1)).await?;
    progress.finish();
    let progress = bar(events.len() as u64, "events");
    let tick = progress.clone();
    let rows = events.iter().cloned().map(event_to_pb).collect();
    let summary = upload_events(channel.clone(), rows, move |_| tick.inc(1)).await?;
    progress.finish();
    Ok(summary)
}
