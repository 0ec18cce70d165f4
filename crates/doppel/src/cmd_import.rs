//! `doppel import events FILE.csv[.gz]`: loads a transaction file (Online Retail layout)
//! into a running server through the public API, with progress bars.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use doppel_types::Consent;
use indicatif::ProgressBar;

use crate::cmd_query::DEFAULT_ADDR;
use crate::upload_progress::upload_all;
use doppel_client::connect;
use doppel_client::retail_csv;

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
        tokio::task::spawn_blocking(move || retail_csv::read(reader, consent, || ticker.inc(1)))
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
    let summary = upload_all(&channel, &data.customers, &data.items, &data.events).await?;
    eprintln!("imported: {} events accepted", summary.accepted);
    Ok(())
}
