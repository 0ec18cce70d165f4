//! What RFM and CLV need from the event log, per customer.

use std::collections::BTreeMap;

use doppel_types::{Event, EventType};

use crate::confidence::MS_PER_DAY;

/// One customer's purchases, summed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PurchaseHistory {
    /// Customer id.
    pub customer_id: String,
    /// Earliest purchase (ms since the epoch), if any.
    pub first_purchase_ms: Option<i64>,
    /// Latest purchase (ms since the epoch), if any.
    pub last_purchase_ms: Option<i64>,
    /// Distinct UTC days with a purchase: the order count. Events carry no order id; the
    /// lines of one invoice share a timestamp, so days are a close, stable proxy (two
    /// orders on one day count once).
    pub purchase_days: u32,
    /// Sum of `|value|` over purchases.
    pub gross_value: f64,
    /// Sum of `|value|` over returns and negative-quantity purchases (cancellations).
    pub returned_value: f64,
}

impl PurchaseHistory {
    /// Gross minus returned value.
    pub fn net_value(&self) -> f64 {
        self.gross_value - self.returned_value
    }

    /// Days from the last purchase to `now_ms` (≥ 0), if the customer ever bought.
    pub fn recency_days(&self, now_ms: i64) -> Option<f64> {
        self.last_purchase_ms
            .map(|last| now_ms.saturating_sub(last).max(0) as f64 / MS_PER_DAY)
    }
}

/// Histories of every customer in `events` (views and carts alone give an empty history),
/// sorted by customer id.
pub fn purchase_histories(events: &[Event]) -> Vec<PurchaseHistory> {
    let mut by_customer: BTreeMap<&str, (PurchaseHistory, Vec<i64>)> = BTreeMap::new();
    for event in events {
        let (history, days) = by_customer
            .entry(&event.customer_id)
            .or_insert_with(|| (PurchaseHistory::default(), Vec::new()));
        match event.kind {
            EventType::Purchase if event.quantity >= 0 => {
                let ts = event.timestamp_ms;
                history.gross_value += event.value.abs();
                history.first_purchase_ms =
                    Some(history.first_purchase_ms.map_or(ts, |f| f.min(ts)));
                history.last_purchase_ms = Some(history.last_purchase_ms.map_or(ts, |l| l.max(ts)));
                days.push(ts.div_euclid(MS_PER_DAY as i64));
            }
            EventType::Purchase | EventType::Return => history.returned_value += event.value.abs(),
            EventType::View | EventType::AddToCart | EventType::Impression | EventType::Click => {}
        }
    }
    by_customer
        .into_iter()
        .map(|(id, (mut history, mut days))| {
            days.sort_unstable();
            days.dedup();
            history.customer_id = id.to_owned();
            history.purchase_days = days.len() as u32;
            history
        })
        .collect()
}
