//! Next-best offers (items nearest the customer's vector, shifted by the request's
//! context when the version learned one) and similar items.
//!
//! With a context, an offer's score is `cosine + lift`, the version's weighted context
//! log-lift of the item (see [`doppel_types::context_model`]). Where the item index scans
//! the allowed items exactly anyway (a catalogue or a filter of a few thousand items), the
//! lift is added inside that one scan. Otherwise the candidates are the index's best by
//! cosine, re-ranked; then every unfetched item whose lift alone could close the gap
//! between the last fetched cosine and the k-th pick is scored exactly and joins them
//! (items come in falling lift order from the version's per-context table), so no item
//! left out could beat an offer. Without a context, nothing of this runs and the answer is
//! the plain cosine ranking.

use std::sync::Arc;

use doppel_index::{Bitset, Neighbor, PointId, SearchRequest, dot};
use doppel_types::context_model::ActiveContext;
use doppel_types::{ContactPolicy, Context};

use crate::context_ranking::{ContextRanking, LiftTable, SlotMap};

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
    /// Where the customer is right now: shifts the ranking when the version learned a
    /// context model, and is recorded with impressions.
    pub context: Context,
    /// When the offers are for (hour of day and day of week of the context); `None`: now.
    pub timestamp_ms: Option<i64>,
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
    /// Personalised: cosine to the customer, plus the context lift when a context moved
    /// it; fallback: popularity relative to the top item, times `e^lift` under a context.
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

/// Candidates fetched first when a context re-ranks.
const FIRST_CONTEXT_FETCH: usize = 32;
/// Most candidates fetched by cosine under a context; past it the answer is the best
/// re-ranking of these (documented as the limit of exactness).
pub const MAX_CONTEXT_FETCH: usize = 4_096;
/// Most climbers scored in one pass before fetching more by cosine instead.
const MAX_CLIMBERS: usize = 1_024;
/// Smallest lift an explanation mentions.
const EXPLAINED_LIFT: f32 = 0.001;

impl RecommendQuery {
    /// True when the request carries a context (any field, or a time).
    pub fn has_context(&self) -> bool {
        self.timestamp_ms.is_some()
            || !(self.context.channel.is_empty()
                && self.context.device.is_empty()
                && self.context.country.is_empty())
    }
}

/// The version's context lifts resolved for `query`, when both exist.
struct ContextShift {
    ranking: Arc<ContextRanking>,
    active: ActiveContext,
    table: Arc<LiftTable>,
    slots: Arc<SlotMap>,
}

impl ContextShift {
    fn of(
        version: &LoadedVersion,
        profiles: &Profiles,
        query: &RecommendQuery,
        now_ms: i64,
    ) -> Option<Self> {
        if !query.has_context() {
            return None;
        }
        let ranking = version.context.read().clone()?;
        let (active, table) =
            ranking.table(&query.context, query.timestamp_ms.unwrap_or(now_ms))?;
        let slots = ranking.slots(&profiles.item_slots);
        Some(Self {
            ranking,
            active,
            table,
            slots,
        })
    }

    fn lift(&self, slot: PointId) -> f32 {
        self.slots
            .index(slot)
            .map_or(0.0, |i| self.table.by_item[i as usize])
    }

    /// "; context device_daypart=mobile/evening +0.12, hour=20 +0.03" (the two largest
    /// terms), or nothing when the context did not move the item.
    fn reason(&self, slot: PointId) -> String {
        let lifts = &self.ranking.lifts;
        let Some(item) = self.slots.index(slot) else {
            return String::new();
        };
        let terms: Vec<String> = lifts
            .terms(&self.active, item)
            .into_iter()
            .filter(|t| t.lift.abs() >= EXPLAINED_LIFT)
            .take(2)
            .map(|t| format!("{}={} {:+.3}", t.feature, t.value, t.lift))
            .collect();
        if terms.is_empty() {
            String::new()
        } else {
            format!("; context {}", terms.join(", "))
        }
    }

    /// Allowed items not among `fetched` whose lift reaches `threshold`, with their exact
    /// `cosine + lift` against `vector` (scored by the index over just them): the only
    /// unfetched items that could still beat the k-th pick. `None` when more than
    /// [`MAX_CLIMBERS`] qualify (fetch more by cosine instead).
    fn climbers(
        &self,
        version: &LoadedVersion,
        ef_search: usize,
        allowed: &Bitset,
        fetched: &[Neighbor],
        vector: &[f32],
        threshold: f32,
    ) -> Result<Option<Vec<Neighbor>>> {
        let mut open = allowed.clone();
        for hit in fetched {
            open.remove(hit.id);
        }
        let mut climbers = Bitset::new(allowed.len_bits());
        let mut n = 0;
        for &i in &self.table.order {
            if self.table.by_item[i as usize] < threshold {
                break;
            }
            if let Some(slot) = self.slots.slot_of[i as usize].filter(|&s| open.contains(s)) {
                climbers.insert(slot);
                n += 1;
                if n > MAX_CLIMBERS {
                    return Ok(None);
                }
            }
        }
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut hits = version.items.search(&SearchRequest {
            query: vector,
            k: n,
            ef: ef_search.max(n),
            allowed: Some(&climbers),
        })?;
        for hit in &mut hits {
            hit.score += self.lift(hit.id);
        }
        Ok(Some(hits))
    }
}

fn best_first(hits: &mut [Neighbor]) {
    hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
}

/// Candidates and picks (positions in the candidates) and the candidates caps skipped.
type Picks = (Vec<Neighbor>, Vec<usize>, usize);

/// The picks under a context when the item index answers the allowed items by an exact
/// scan anyway (a small catalogue or a narrow filter): every allowed item is scored by
/// cosine + lift in that one scan, so the ranking is exact with no extra candidates. When
/// caps skip some, the scan runs once more keeping every allowed item (a scan costs the
/// same whatever it keeps). `None` when the index would walk its graph.
fn scan_with_lifts(
    version: &LoadedVersion,
    vector: &[f32],
    allowed: &Bitset,
    shift: &ContextShift,
    caps: &CapCounter<'_>,
    wanted: usize,
) -> Result<Option<Picks>> {
    let most = allowed.count().min(doppel_index::MAX_K);
    let mut fetch = wanted.clamp(1, most.max(1));
    loop {
        let request = SearchRequest {
            query: vector,
            k: fetch,
            ef: fetch,
            allowed: Some(allowed),
        };
        let Some(hits) = version
            .items
            .scan_with_bias(&request, &|slot| shift.lift(slot))?
        else {
            return Ok(None);
        };
        let (picked, skipped) = caps.pick(hits.iter().map(|h| h.id), wanted);
        if picked.len() >= wanted || hits.len() < fetch || fetch >= most {
            return Ok(Some((hits, picked, skipped)));
        }
        fetch = most;
    }
}

/// The picks by the index's candidates (nearest by cosine), re-ranked by the context's
/// lifts when there is one: see the module's documentation.
fn fetch_and_rerank(
    version: &LoadedVersion,
    ef_search: usize,
    vector: &[f32],
    allowed: &Bitset,
    shift: Option<&ContextShift>,
    caps: &CapCounter<'_>,
    k: usize,
) -> Result<Picks> {
    // Caps can skip candidates (a category at its cap after the first pick of it): fetch
    // more until k are picked or none are left. Under a context, an unfetched item has a
    // cosine at most the last fetched one's, so it can beat the k-th pick only with a lift
    // of at least the difference: those few ("climbers") are scored exactly and join,
    // until the k-th pick stops falling. Too many climbers, or a k-th pick below the last
    // cosine, means fetching more by cosine instead.
    let eligible = allowed.count();
    let wanted = caps.budget(k);
    let mut fetch = match shift {
        Some(_) => k.max(FIRST_CONTEXT_FETCH).min(eligible),
        None => k,
    };
    let picks = loop {
        let mut hits = version.items.search(&SearchRequest {
            query: vector,
            k: fetch,
            ef: ef_search.max(fetch),
            allowed: Some(allowed),
        })?;
        let last_cosine = hits.last().map_or(f32::NEG_INFINITY, |h| h.score);
        let exhausted = hits.len() < fetch || fetch >= eligible;
        let grown = (fetch * 4).min(eligible);
        let capped_out = shift.is_some() && fetch >= MAX_CONTEXT_FETCH;
        if let Some(shift) = &shift {
            for hit in &mut hits {
                hit.score += shift.lift(hit.id);
            }
            best_first(&mut hits);
        }
        let (mut picked, mut skipped) = caps.pick(hits.iter().map(|h| h.id), wanted);
        if exhausted || capped_out {
            break (hits, picked, skipped);
        }
        if picked.len() < wanted {
            fetch = grown;
            continue;
        }
        let Some(shift) = &shift else {
            break (hits, picked, skipped);
        };
        let mut settled = false;
        let mut threshold = f32::INFINITY;
        while let Some(&kth) = picked.last() {
            let t = hits[kth].score - last_cosine;
            if t >= threshold {
                settled = true;
                break;
            }
            threshold = t;
            if t < 0.0 {
                break;
            }
            let Some(climbers) = shift.climbers(version, ef_search, allowed, &hits, vector, t)?
            else {
                break;
            };
            if climbers.is_empty() {
                settled = true;
                break;
            }
            hits.extend(climbers);
            best_first(&mut hits);
            (picked, skipped) = caps.pick(hits.iter().map(|h| h.id), wanted);
            if picked.len() < wanted {
                break;
            }
        }
        if settled || picked.is_empty() {
            break (hits, picked, skipped);
        }
        fetch = grown.min(MAX_CONTEXT_FETCH.max(k));
    };
    Ok(picks)
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
    let caps = {
        let shown = customer.map(|c| c.exposures.lock());
        CapCounter::new(policy, profiles, shown.as_deref(), now_ms)
    };
    let blocked = caps.remove_blocked(&mut allowed);
    let shift = ContextShift::of(version, profiles, query, now_ms);
    let vector = customer
        .filter(|c| c.onsite_consent && !allowed.is_empty())
        .and_then(|_| version.customer_vector(&query.customer_id, slot))
        .map(|v| version.offer_query(v, bought.into_iter().flat_map(|b| b.newest_first())));
    let model_version = version.info.version.clone();
    let Some(vector) = vector else {
        let (offers, skipped) = popular(
            profiles,
            &allowed,
            &caps,
            shift.as_ref(),
            query.k,
            query.explain,
        );
        return Ok(Recommendation {
            model_version,
            offers,
            personalized: false,
            capped: (blocked + skipped) as u32,
        });
    };
    let wanted = caps.budget(query.k);
    let scanned = match &shift {
        Some(shift) => scan_with_lifts(version, &vector, &allowed, shift, &caps, wanted)?,
        None => None,
    };
    let (hits, picked, skipped) = match scanned {
        Some(scanned) => scanned,
        None => fetch_and_rerank(
            version,
            ef_search,
            &vector,
            &allowed,
            shift.as_ref(),
            &caps,
            query.k,
        )?,
    };
    let hits: Vec<Neighbor> = picked.into_iter().map(|i| hits[i]).collect();
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
                let context = shift.as_ref().map(|s| s.reason(hit.id)).unwrap_or_default();
                personal_reason(version, profiles, &history, hit.id, hit.score) + &context
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

/// The most popular allowed items that break no cap (under a context, popularity times
/// `e^lift`), ties by id; and how many the caps skipped.
fn popular(
    profiles: &Profiles,
    allowed: &Bitset,
    caps: &CapCounter<'_>,
    shift: Option<&ContextShift>,
    k: usize,
    explain: bool,
) -> (Vec<Offer>, usize) {
    let mut rows: Vec<(f64, u64, &str, &str, PointId)> = allowed
        .iter()
        .filter_map(|s| profiles.item(s).map(|r| (s, r)))
        .map(|(s, r)| {
            let lift = shift.map_or(0.0, |c| c.lift(s));
            (
                r.popularity * f64::from(lift).exp(),
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
        .map(|(popularity, purchases, id, category, slot)| Offer {
            item_id: id.to_owned(),
            score: (popularity / top) as f32,
            reason: if explain {
                let context = shift.map(|c| c.reason(slot)).unwrap_or_default();
                format!("popular in {category}: {purchases} units bought{context}")
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
