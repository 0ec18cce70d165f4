//! `doppel query lookalike|recommend|similar`: a command-line client of the public API.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;

/// Default server address of the client commands.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Query kinds.
#[derive(Subcommand, Debug)]
pub enum QueryCommand {
    /// A lookalike audience for seed customers (streamed; printed as it arrives).
    Lookalike(LookalikeArgs),
    /// The reach curve of a lookalike query: audience sizes at shares or score cut-offs.
    Reach(ReachArgs),
    /// Next-best offers for a customer.
    Recommend(RecommendArgs),
    /// Items similar to an item.
    Similar(SimilarArgs),
}

/// Seed strategy names on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    /// Pick by seed size and spread.
    Auto,
    /// Cosine to the seed centroid.
    Centroid,
    /// Cosine to the most similar seed.
    MaxSimilarity,
    /// A linear model (ridge-LDA) fitted on the seeds against everyone else.
    Classifier,
}

/// Flags of `doppel query lookalike`.
#[derive(Args, Debug)]
pub struct LookalikeArgs {
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR, env = "DOPPEL_ADDR")]
    pub addr: String,
    /// API key, sent as `authorization: Bearer <key>` (servers with a keys file need one).
    #[arg(long, env = "DOPPEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// TLS to the server.
    #[command(flatten)]
    pub tls: crate::client_tls::TlsArgs,
    /// Seed customer ids, comma separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "seed_segment")]
    pub seeds: Vec<String>,
    /// Seed segments `kind=name` (repeatable), e.g. `rfm=champions`, `cluster=3`.
    #[arg(long = "seed-segment", value_parser = parse_key_value)]
    pub seed_segment: Vec<(String, String)>,
    /// Segments to leave out `kind=name` (repeatable), e.g. `clv=unprofitable`.
    #[arg(long = "exclude-segment", value_parser = parse_key_value)]
    pub exclude_segment: Vec<(String, String)>,
    /// Customers to keep out (and push away from), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub negatives: Vec<String>,
    /// Audience size as a count.
    #[arg(long, group = "size")]
    pub count: Option<u64>,
    /// Audience size as a share (0–100] of the eligible population.
    #[arg(long, group = "size")]
    pub top_percent: Option<f64>,
    /// Everyone with at least this score.
    #[arg(long, group = "size")]
    pub min_score: Option<f32>,
    /// Seed strategy.
    #[arg(long, value_enum, default_value = "auto")]
    pub strategy: StrategyArg,
    /// Leave out customers who already purchased.
    #[arg(long)]
    pub exclude_existing: bool,
    /// Attribute filters `key=value` (repeatable).
    #[arg(long = "filter", value_parser = parse_key_value)]
    pub filters: Vec<(String, String)>,
    /// Ask why each prospect matched (nearest seeds).
    #[arg(long)]
    pub explain: bool,
    /// Customer attributes to audit (selection rate per value), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub audit: Vec<String>,
    /// Balance the audience over the values of this customer attribute.
    #[arg(long)]
    pub balance: Option<String>,
    /// With --balance: every group's selection rate ≥ this × the best group's.
    #[arg(long, default_value_t = 0.8)]
    pub min_selection_ratio: f64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `doppel query reach`.
#[derive(Args, Debug)]
pub struct ReachArgs {
    /// The lookalike query (its size flags are ignored).
    #[command(flatten)]
    pub query: LookalikeArgs,
    /// Shares of the eligible population, comma separated (default 1..10,15,20).
    #[arg(long, value_delimiter = ',')]
    pub at_percents: Vec<f64>,
    /// Score cut-offs, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub at_scores: Vec<f32>,
}

/// Flags of `doppel query recommend`.
#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR, env = "DOPPEL_ADDR")]
    pub addr: String,
    /// API key, sent as `authorization: Bearer <key>` (servers with a keys file need one).
    #[arg(long, env = "DOPPEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// TLS to the server.
    #[command(flatten)]
    pub tls: crate::client_tls::TlsArgs,
    /// Customer id.
    #[arg(long)]
    pub customer: String,
    /// Number of offers.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Only these categories (repeatable).
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Only items at or below this price.
    #[arg(long)]
    pub max_price: Option<f64>,
    /// Also offer already purchased items.
    #[arg(long)]
    pub include_purchased: bool,
    /// Request context: channel.
    #[arg(long, default_value = "")]
    pub channel: String,
    /// Request context: device.
    #[arg(long, default_value = "")]
    pub device: String,
    /// Request context: country.
    #[arg(long, default_value = "")]
    pub country: String,
    /// Ask for a reason per offer.
    #[arg(long)]
    pub explain: bool,
    /// Record the offers returned as impressions (they count toward frequency caps).
    #[arg(long)]
    pub record_impressions: bool,
    /// When the offers are for (ms since the Unix epoch; its UTC hour and weekday are part
    /// of the context); 0 = now.
    #[arg(long, default_value_t = 0)]
    pub timestamp_ms: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `doppel query similar`.
#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR, env = "DOPPEL_ADDR")]
    pub addr: String,
    /// API key, sent as `authorization: Bearer <key>` (servers with a keys file need one).
    #[arg(long, env = "DOPPEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// TLS to the server.
    #[command(flatten)]
    pub tls: crate::client_tls::TlsArgs,
    /// Item id.
    #[arg(long)]
    pub item: String,
    /// Number of items.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}

/// Runs a query command.
pub async fn run(command: QueryCommand) -> anyhow::Result<()> {
    match command {
        QueryCommand::Lookalike(args) => lookalike(args).await,
        QueryCommand::Reach(args) => reach(args).await,
        QueryCommand::Recommend(args) => recommend(args).await,
        QueryCommand::Similar(args) => similar(args).await,
    }
}

/// Adds `authorization: Bearer <key>` to every call when a key is given.
#[derive(Clone)]
pub struct ApiKey(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl ApiKey {
    /// The interceptor of `key` (none: calls go without one).
    pub fn new(key: Option<&str>) -> anyhow::Result<Self> {
        let value = key
            .map(|k| {
                format!("Bearer {}", k.trim())
                    .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
            })
            .transpose()
            .map_err(|_| anyhow::anyhow!("--api-key: not a valid header value"))?
            .map(|mut v| {
                // Never indexed by HPACK nor printed by h2's traces.
                v.set_sensitive(true);
                v
            });
        Ok(Self(value))
    }
}

impl tonic::service::Interceptor for ApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The request a `LookalikeArgs` describes.
pub fn lookalike_request(args: &LookalikeArgs) -> anyhow::Result<pb::LookalikeRequest> {
    use pb::lookalike_request::Size;
    let size = match (args.count, args.top_percent, args.min_score) {
        (Some(n), None, None) => Size::Count(n),
        (None, Some(p), None) => Size::TopPercent(p),
        (None, None, Some(s)) => Size::MinScore(s),
        (None, None, None) => Size::Count(100),
        _ => anyhow::bail!("give one of --count, --top-percent, --min-score"),
    };
    let strategy = match args.strategy {
        StrategyArg::Auto => pb::Strategy::Auto,
        StrategyArg::Centroid => pb::Strategy::Centroid,
        StrategyArg::MaxSimilarity => pb::Strategy::MaxSimilarity,
        StrategyArg::Classifier => pb::Strategy::Classifier,
    };
    Ok(pb::LookalikeRequest {
        seed_customer_ids: args.seeds.clone(),
        negative_customer_ids: args.negatives.clone(),
        size: Some(size),
        strategy: strategy as i32,
        exclude_existing_customers: args.exclude_existing,
        filter: args.filters.iter().cloned().collect(),
        explain: args.explain,
        seed_segments: segments(&args.seed_segment),
        exclude_segments: segments(&args.exclude_segment),
        audit_attributes: args.audit.clone(),
        balance_attribute: args.balance.clone().unwrap_or_default(),
        min_selection_ratio: if args.balance.is_some() {
            args.min_selection_ratio
        } else {
            0.0
        },
    })
}

fn print_audit(audit: &[pb::GroupAudit]) {
    for a in audit {
        eprintln!(
            "  {}={:<16} {:>8} of {:>8}  rate {:.4}  ratio to best {:.3}{}",
            a.attribute,
            format!("{:?}", a.value),
            a.audience_count,
            a.eligible_count,
            a.selection_rate,
            a.ratio_to_best,
            if a.below_four_fifths {
                "  below four-fifths"
            } else {
                ""
            }
        );
    }
}

async fn reach(args: ReachArgs) -> anyhow::Result<()> {
    let query = lookalike_request(&args.query)?;
    let key = ApiKey::new(args.query.api_key.as_deref())?;
    let mut client =
        AudiencesClient::with_interceptor(args.query.tls.connect(&args.query.addr).await?, key);
    let curve = client
        .estimate_reach(pb::ReachRequest {
            query: Some(query),
            top_percents: args.at_percents.clone(),
            min_scores: args.at_scores.clone(),
        })
        .await
        .context("EstimateReach")?
        .into_inner();
    eprintln!(
        "model {} · eligible {} · shards {}/{}",
        curve.model_version, curve.eligible_population, curve.shards_answered, curve.shards_total
    );
    for p in &curve.points {
        if args.query.json {
            println!(
                "{}",
                serde_json::json!({"top_percent": p.top_percent, "min_score": p.min_score, "size": p.size, "mean_score": p.mean_score})
            );
        } else {
            println!(
                "{:>7.2} %  size {:>9}  cut-off {:>7.4}  mean {:>7.4}",
                p.top_percent, p.size, p.min_score, p.mean_score
            );
        }
        print_audit(&p.audit);
    }
    Ok(())
}

fn segments(pairs: &[(String, String)]) -> Vec<pb::Segment> {
    pairs
        .iter()
        .map(|(kind, name)| pb::Segment {
            kind: kind.clone(),
            name: name.clone(),
        })
        .collect()
}

async fn lookalike(args: LookalikeArgs) -> anyhow::Result<()> {
    let request = lookalike_request(&args)?;
    let key = ApiKey::new(args.api_key.as_deref())?;
    let mut client = AudiencesClient::with_interceptor(args.tls.connect(&args.addr).await?, key);
    let mut stream = client
        .find_lookalikes(request)
        .await
        .context("FindLookalikes")?
        .into_inner();
    let mut rank = 0usize;
    let mut last = pb::LookalikeBatch::default();
    while let Some(mut batch) = stream.message().await.context("FindLookalikes stream")? {
        last.audit = std::mem::take(&mut batch.audit);
        last.mean_score = batch.mean_score;
        last.mean_score_unbalanced = batch.mean_score_unbalanced;
        if batch.batch_index == 0 {
            eprintln!(
                "model {} · eligible {} · shards {}/{} · ignored seeds {:?}",
                batch.model_version,
                batch.eligible_population,
                batch.shards_answered,
                batch.shards_total,
                batch.ignored_seed_ids
            );
        }
        for p in batch.prospects {
            rank += 1;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"rank": rank, "customer_id": p.customer_id, "score": p.score, "nearest_seed_ids": p.nearest_seed_ids})
                );
            } else {
                println!(
                    "{rank:>6}  {:<16} {:>7.4}  {}",
                    p.customer_id,
                    p.score,
                    p.nearest_seed_ids.join(",")
                );
            }
        }
    }
    eprintln!(
        "{rank} prospects · mean score {:.4} (unbalanced {:.4})",
        last.mean_score, last.mean_score_unbalanced
    );
    print_audit(&last.audit);
    Ok(())
}

/// Prints offers as a table.
pub fn print_offers(offers: &[pb::Offer]) {
    for (i, o) in offers.iter().enumerate() {
        println!(
            "{:>3}  {:<16} {:>7.4}  {}",
            i + 1,
            o.item_id,
            o.score,
            o.reason
        );
    }
}

async fn recommend(args: RecommendArgs) -> anyhow::Result<()> {
    let key = ApiKey::new(args.api_key.as_deref())?;
    let mut client =
        RecommendationsClient::with_interceptor(args.tls.connect(&args.addr).await?, key);
    let response = client
        .recommend_offers(pb::RecommendRequest {
            customer_id: args.customer.clone(),
            k: args.k,
            context: Some(pb::Context {
                channel: args.channel.clone(),
                device: args.device.clone(),
                country: args.country.clone(),
            }),
            filter: Some(pb::OfferFilter {
                categories: args.categories.clone(),
                max_price: args.max_price,
            }),
            include_purchased: args.include_purchased,
            explain: args.explain,
            record_impressions: args.record_impressions,
            timestamp_ms: args.timestamp_ms,
        })
        .await
        .context("RecommendOffers")?
        .into_inner();
    if args.json {
        let offers: Vec<_> = response
            .offers
            .iter()
            .map(
                |o| serde_json::json!({"item_id": o.item_id, "score": o.score, "reason": o.reason}),
            )
            .collect();
        println!(
            "{}",
            serde_json::json!({"model_version": response.model_version, "personalized": response.personalized, "capped": response.capped, "offers": offers})
        );
    } else {
        eprintln!(
            "model {} · personalized {} · capped {}",
            response.model_version, response.personalized, response.capped
        );
        print_offers(&response.offers);
    }
    Ok(())
}

async fn similar(args: SimilarArgs) -> anyhow::Result<()> {
    let key = ApiKey::new(args.api_key.as_deref())?;
    let mut client =
        RecommendationsClient::with_interceptor(args.tls.connect(&args.addr).await?, key);
    let response = client
        .similar_items(pb::SimilarItemsRequest {
            item_id: args.item.clone(),
            k: args.k,
        })
        .await
        .context("SimilarItems")?
        .into_inner();
    eprintln!("model {}", response.model_version);
    print_offers(&response.items);
    Ok(())
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    #[test]
    fn an_api_key_goes_as_a_bearer_header_and_none_sends_nothing() {
        let mut with = ApiKey::new(Some(" k3y ")).expect("key");
        let request = with.call(tonic::Request::new(())).expect("call");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer k3y")
        );
        let mut without = ApiKey::new(None).expect("no key");
        let request = without.call(tonic::Request::new(())).expect("call");
        assert!(request.metadata().get("authorization").is_none());
        assert!(ApiKey::new(Some("bad\nkey")).is_err());
    }
}
