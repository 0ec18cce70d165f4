//! `doppel import events FILE.csv[.gz]`: loads a transaction file (Online Retail layout)
//! into a running server through the public API, with progress bars.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use doppel_grpc::convert::{customer_to_pb, event_to_pb, item_to_pb};
use doppel_types::Consent;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cmd_query::DEFAULT_ADDR;
use crate::online_retail;
use doppel_client::{connect, upload_customers, upload_events, upload_items};

/// What to import.
#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Customers, items and purchase/return events from a transaction CSV (optionally
    /// gzip-compressed) in the Online Retail layout.
    Events(ImportEventsArgs),
}

/// Flags of `doppel import events`.
#[derive(Args, Debug)]
pub struct ImportEventsArgs {
    /// The CSV file (`.csv` or `.csv.gz`).
    pub file: PathBuf,
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR, env = "DOPPEL_ADDR")]
    pub addr: String,
    /// Record ads and on-site consent for every imported customer. The file carries no
    /// consent: without this flag customers are imported without it and never appear in
    /// audiences or get personalised offers.
    #[arg(long)]
    pub assume_consent: bool,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Runs an import command.
pub async fn run(command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Events(args) = command;
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let reader: Box<dyn Read + Send> = if args.file.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let consent = Consent {
        ads_personalization: args.assume_consent,
        onsite_personalization: args.assume_consent,
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("reading rows");
    let ticker = spinner.clone();
    let data =
        tokio::task::spawn_blocking(move || online_retail::read(reader, consent, || ticker.inc(1)))
            .await
            .context("reader task")??;
    spinner.finish_and_clear();
    eprintln!(
        "read {} customers, {} items, {} events ({} guest rows and {} bad rows skipped)",
        data.customers.len(),
        data.items.len(),
        data.events.len(),
        data.guest_rows,
        data.bad_rows
    );
    let channel = connect(&args.addr).await?;
    let progress = bar(data.customers.len() as u64, "customers");
    let tick = progress.clone();
    upload_customers(
        channel.clone(),
        data.customers.into_iter().map(customer_to_pb).collect(),
        move |_| tick.inc(1),
    )
    .await?;
    progress.finish();
    let progress = bar(data.items.len() as u64, "items");
    let tick = progress.clone();
    upload_items(
        channel.clone(),
        data.items.into_iter().map(item_to_pb).collect(),
        move |_| tick.inc(1),
    )
    .await?;
    progress.finish();
    let progress = bar(data.events.len() as u64, "events");
    let tick = progress.clone();
    let summary = upload_events(
        channel,
        data.events.into_iter().map(event_to_pb).collect(),
        move |_| tick.inc(1),
    )
    .await?;
    progress.finish();
    eprintln!("imported: {} events accepted", summary.accepted);
    Ok(())
}
