//! Next-best offers (items nearest the customer's vector) and similar items.

use doppel_index::{PointId, SearchRequest, dot};
use doppel_types::{ContactPolicy, Context};

use crate::error::{Error, Result};
use crate::frequency_caps::CapCounter;
use crate::loaded_version::LoadedVersion;
use crate::profiles::Profiles;

/// A recommendation request, validated for shape at the edge.
#[derive(Clone, Debug, Default)]
pub struct RecommendQuery {
    /// Who the offers are for.
    pub customer_id: String,
    /// Offers wanted.
    pub k: usize,
    /// Where the customer is right now (recorded with impressions; not yet used to score).
    pub context: Context,
    /// Only items of these categories (empty: any).
    pub categories: Vec<String>,
    /// Only items at most this price.
    pub max_price: Option<f64>,
    /// Also offer items the customer already bought.
    pub include_purchased: bool,
    /// Give each offer a human-readable reason.
    pub explain: bool,
    /// Record the offers as impressions before answering (done by the node, which owns
    /// the store; the engine only reads it).
    pub record_impressions: bool,
}

/// One offered item.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// The item.
    pub item_id: String,
    /// Personalised: cosine to the customer; fallback: popularity relative to the top item.
    pub score: f32,
    /// Why it is offered (empty unless explanations were asked for).
    pub reason: String,
}

/// Offers for one customer.
#[derive(Clone, Debug)]
pub struct Recommendation {
    /// The model version that answered.
    pub model_version: String,
    /// Offers, best first.
    pub offers: Vec<Offer>,
    /// False when the popular-items fallback answered (no vector or no on-site consent).
    pub personalized: bool,
    /// Candidates the contact policy's frequency caps removed.
    pub capped: u32,
}

/// Items similar to one item.
#[derive(Clone, Debug)]
pub struct SimilarItemsResult {
    /// The model version that answered.
    pub model_version: String,
    /// Similar in-stock items, closest first; never the item itself.
    pub items: Vec<Offer>,
}

/// Offers for `query` over `version`, none of which breaks a cap of `policy` once shown
/// (windows ending at `now_ms`).
pub(crate) fn recommend(
    version: &LoadedVersion,
    profiles: &Profiles,
    ef_search: usize,
    query: &RecommendQuery,
    policy: &ContactPolicy,
    now_ms: i64,
) -> Result<Recommendation> {
    let slot = profiles
        .customer_slots
        .get(&query.customer_id)
        .ok_or_else(|| Error::not_found("customer_id", query.customer_id.clone()))?;
    let customer = profiles.customer(slot);
    let bought = customer.map(|c| &c.purchased);
    let mut allowed = profiles.offerable_items(
        &query.categories,
        query.max_price,
        bought.filter(|_| !query.include_purchased),
        None,
    );
    let caps = CapCounter::new(policy, profiles, customer.map(|c| &c.exposures), now_ms);
    let blocked = caps.remove_blocked(&mut allowed);
    let vector = customer
        .filter(|c| c.onsite_consent)
        .and_then(|_| version.customer_vector(&query.customer_id, slot));
    let model_version = version.info.version.clone();
    let Some(vector) = vector.filter(|_| !allowed.is_empty()) else {
        let (offers, skipped) = popular(profiles, &allowed, &caps, query.k, query.explain);
        return Ok(Recommendation {
            model_version,
            offers,
            personalized: false,
            capped: (blocked + skipped) as u32,
        });
    };
    // Caps can skip candidates (a category at its cap after the first pick of it): fetch
    // more until k are picked or none are left.
    let eligible = allowed.count();
    let wanted = caps.budget(query.k);
    let mut fetch = query.k;
    let (hits, skipped) = loop {
        let hits = version.items.search(&SearchRequest {
            query: &vector,
            k: fetch,
            ef: ef_search.max(fetch),
            allowed: Some(&allowed),
        })?;
        let (picked, skipped) = caps.pick(hits.iter().map(|h| h.id), wanted);
        if picked.len() == wanted || hits.len() < fetch || fetch >= eligible {
            let hits: Vec<_> = picked.into_iter().map(|i| hits[i]).collect();
            break (hits, skipped);
        }
        fetch = (fetch * 4).min(eligible);
    };
    let history: Vec<(PointId, Vec<f32>)> = match (query.explain, bought) {
        (true, Some(b)) => b
            .iter()
            .filter_map(|&s| version.items.vector(s).map(|v| (s, v)))
            .collect(),
        _ => Vec::new(),
    };
    let offers = hits
        .into_iter()
        .filter_map(|hit| {
            let record = profiles.item(hit.id)?;
            let reason = if query.explain {
                personal_reason(version, profiles, &history, hit.id, hit.score)
            } else {
                String::new()
            };
            Some(Offer {
                item_id: record.item.id.clone(),
                score: hit.score,
                reason,
            })
        })
        .collect();
    Ok(Recommendation {
        model_version,
        offers,
        personalized: true,
        capped: (blocked + skipped) as u32,
    })
}

fn personal_reason(
    version: &LoadedVersion,
    profiles: &Profiles,
    history: &[(PointId, Vec<f32>)],
    item: PointId,
    score: f32,
) -> String {
    let nearest = version.items.vector(item).and_then(|v| {
        history
            .iter()
            .filter(|(s, _)| *s != item)
            .map(|(s, h)| (dot(h, &v), *s))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    });
    match nearest.and_then(|(sim, s)| profiles.item(s).map(|r| (sim, &r.item.id))) {
        Some((sim, id)) => format!(
            "close to {id}, which you bought (similarity {sim:.2}); matches your taste ({score:.2})"
        ),
        None => format!("matches your taste profile (score {score:.2})"),
    }
}

/// The most popular allowed items that break no cap, ties by id; and how many the caps
/// skipped.
fn popular(
    profiles: &Profiles,
    allowed: &doppel_index::Bitset,
    caps: &CapCounter<'_>,
    k: usize,
    explain: bool,
) -> (Vec<Offer>, usize) {
    let mut rows: Vec<(f64, u64, &str, &str, PointId)> = allowed
        .iter()
        .filter_map(|s| profiles.item(s).map(|r| (s, r)))
        .map(|(s, r)| {
            (
                r.popularity,
                r.purchases,
                r.item.id.as_str(),
                r.item.category.as_str(),
                s,
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(b.2)));
    let (picked, skipped) = caps.pick(rows.iter().map(|r| r.4), k);
    let rows: Vec<_> = picked.into_iter().map(|i| rows[i]).collect();
    let top = rows.first().map_or(0.0, |r| r.0).max(f64::MIN_POSITIVE);
    let offers = rows
        .into_iter()
        .map(|(popularity, purchases, id, category, _)| Offer {
            item_id: id.to_owned(),
            score: (popularity / top) as f32,
            reason: if explain {
                format!("popular in {category}: {purchases} units bought")
            } else {
                String::new()
            },
        })
        .collect();
    (offers, skipped)
}

/// In-stock items closest to `item_id`.
pub(crate) fn similar_items(
    version: &LoadedVersion,
    profiles: &Profiles,
    ef_search: usize,
    item_id: &str,
    k: usize,
) -> Result<SimilarItemsResult> {
    let slot = profiles
        .item_slots
        .get(item_id)
        .filter(|_| profiles.knows_item(item_id))
        .ok_or_else(|| Error::not_found("item_id", item_id))?;
    let vector = version.items.vector(slot).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "item_id: `{item_id}` has no vector in model version `{}`",
            version.info.version
        ))
    })?;
    let allowed = profiles.offerable_items(&[], None, None, Some(slot));
    let items = if allowed.is_empty() {
        Vec::new()
    } else {
        version.items.search(&SearchRequest {
            query: &vector,
            k,
            ef: ef_search.max(k),
            allowed: Some(&allowed),
        })?
    };
    let category = profiles.item(slot).map(|r| r.item.category.as_str());
    let items = items
        .into_iter()
        .filter_map(|hit| {
            let record = profiles.item(hit.id)?;
            let same = Some(record.item.category.as_str()) == category;
            Some(Offer {
                item_id: record.item.id.clone(),
                score: hit.score,
                reason: if same {
                    format!("same category, similarity {:.2}", hit.score)
                } else {
                    format!("similarity {:.2}", hit.score)
                },
            })
        })
        .collect();
    Ok(SimilarItemsResult {
        model_version: version.info.version.clone(),
        items,
    })
}
