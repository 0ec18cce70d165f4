//! The demo on the real Online Retail transactions: import them over gRPC, learn vectors,
//! then an audience of lookalikes for the buyers of one product family and offers for one
//! customer. The file carries no consent, so the demo grants both kinds to every customer
//! (a real import would take consent from the source system).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Context as _;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_proto::v1::segments_client::SegmentsClient;
use doppel_types::{Consent, EventType};

use crate::cmd_query::print_offers;
use crate::upload_progress::upload_all;
use doppel_client::retail_csv::{self, RetailData};
use doppel_client::{activate, connect};

/// Most seeds taken from the chosen product family's buyers.
const SEEDS: usize = 2_000;

fn read(path: &Path) -> anyhow::Result<RetailData> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let consent = Consent {
        ads_personalization: true,
        onsite_personalization: true,
    };
    Ok(retail_csv::read(reader, consent, || {})?)
}

/// Loads the file into the server at `addr`, trains, activates, and prints the results.
pub async fn run(addr: &str, path: &Path) -> anyhow::Result<()> {
    let data = tokio::task::block_in_place(|| read(path))?;
    eprintln!(
        "Online Retail: {} customers, {} items, {} purchase/return events",
        data.customers.len(),
        data.items.len(),
        data.events.len()
    );
    let channel = connect(addr).await?;
    upload_all(&channel, &data.customers, &data.items, &data.events).await?;
    let request = pb::TrainRequest {
        model_version: "retail-v1".to_owned(),
        ..Default::default()
    };
    let done = crate::cmd_train::train_with_bar(channel.clone(), request).await?;
    activate(channel.clone(), "retail-v1").await?;
    eprintln!(
        "model retail-v1 learned from {} events: {} customers, {} items in {:.1}s, active",
        done.events, done.customers, done.items, done.elapsed_seconds
    );
    show(channel, &data).await
}

async fn show(channel: tonic::transport::Channel, data: &RetailData) -> anyhow::Result<()> {
    let category: HashMap<&str, &str> = data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();
    let mut buyers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in data.events.iter().filter(|e| e.kind == EventType::Purchase) {
        if let Some(c) = category.get(e.item_id.as_str()) {
            buyers.entry(c).or_default().insert(e.customer_id.as_str());
        }
    }
    // A mid-sized family: the 20th most bought, so lookalikes are not simply "everyone".
    let mut families: Vec<(&str, usize)> = buyers.iter().map(|(c, b)| (*c, b.len())).collect();
    families.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (family, family_buyers) = families
        .get(19)
        .or(families.last())
        .copied()
        .context("no purchases in the file")?;
    // Every second buyer is a seed; the other half is hidden, and a good audience finds it.
    let seeds: Vec<String> = buyers[family]
        .iter()
        .step_by(2)
        .take(SEEDS)
        .map(|s| (*s).to_owned())
        .collect();
    let hidden: BTreeSet<&str> = buyers[family]
        .iter()
        .copied()
        .filter(|b| !seeds.iter().any(|s| s == b))
        .collect();
    let mut stream = AudiencesClient::new(channel.clone())
        .find_lookalikes(pb::LookalikeRequest {
            seed_customer_ids: seeds.clone(),
            size: Some(pb::lookalike_request::Size::Count(20)),
            explain: true,
            ..Default::default()
        })
        .await
        .context("FindLookalikes")?
        .into_inner();
    println!(
        "Lookalikes of {} of the {family_buyers} buyers of stock-code family {family} (the other half hidden; {} customers), top 20:",
        seeds.len(),
        data.customers.len()
    );
    println!("  rank  customer  score   hidden buyer  nearest seeds");
    let (mut shown, mut also) = (0, 0);
    while let Some(batch) = stream.message().await? {
        for p in batch.prospects {
            shown += 1;
            let buys = hidden.contains(p.customer_id.as_str());
            also += usize::from(buys);
            println!(
                "  {shown:>4}  {:<8}  {:.4}  {:<12}  {}",
                p.customer_id,
                p.score,
                if buys { "yes" } else { "no" },
                p.nearest_seed_ids.join(",")
            );
        }
    }
    println!(
        "  {also}/{shown} prospects are hidden buyers of {family} (base rate among non-seeds {:.0}%)\n",
        100.0 * hidden.len() as f64 / (data.customers.len() - seeds.len()).max(1) as f64
    );

    let customer = seeds.first().context("no seed")?;
    let response = RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.clone(),
            k: 5,
            explain: true,
            ..Default::default()
        })
        .await
        .context("RecommendOffers")?
        .into_inner();
    println!(
        "Next-best offers for customer {customer} (model {}, personalized {}):",
        response.model_version, response.personalized
    );
    print_offers(&response.offers);
    let sizes = SegmentsClient::new(channel)
        .list_segments(pb::ListSegmentsRequest { kind: "rfm".into() })
        .await
        .context("ListSegments")?
        .into_inner();
    println!("\nRFM segments:");
    for s in sizes.segments {
        if let Some(g) = s.segment {
            println!("  {:<22} {:>6}", g.name, s.customers);
        }
    }
    Ok(())
}
