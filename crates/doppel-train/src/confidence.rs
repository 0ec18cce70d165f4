//! How strongly an event says "this customer likes this item": the confidence formula.
//!
//! Every event contributes a signed *strength* to its (customer, item) cell:
//!
//! ```text
//! strength = ± weight(kind) × (1 + ln max(|quantity|, 1)) × 0.5^(age_days / half_life_days)
//! ```
//!
//! * `weight` is [`ConfidenceConfig::purchase_weight`] > `add_to_cart_weight` >
//!   `view_weight` by default. Returns — and purchases with a negative quantity, which is
//!   how Online Retail records cancellations — *subtract* `return_weight`.
//! * Quantity counts logarithmically: one unit 1.0, ten units 3.3, the 80,995-unit
//!   wholesale line of Online Retail 12.3 — bulk orders weigh more, but do not drown out
//!   every other signal of the customer.
//! * Age is `now − timestamp` (events in the future count as age 0); a half-life of 0
//!   turns decay off.
//!
//! A cell's strength `r` is the sum of its events; cells with `r ≤ 0` (everything bought
//! was returned) are dropped. What ALS sees is the Hu–Koren–Volinsky confidence
//! `c = 1 + alpha × r` on the cells that remain, with preference 1 there and 0 elsewhere.

use doppel_types::{Event, EventType};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// Default [`ConfidenceConfig::purchase_weight`].
pub const DEFAULT_PURCHASE_WEIGHT: f32 = 1.0;
/// Default [`ConfidenceConfig::add_to_cart_weight`].
pub const DEFAULT_ADD_TO_CART_WEIGHT: f32 = 0.3;
/// Default [`ConfidenceConfig::view_weight`].
pub const DEFAULT_VIEW_WEIGHT: f32 = 0.1;
/// Default [`ConfidenceConfig::impression_weight`]: being shown an offer says nothing of
/// taste by itself.
pub const DEFAULT_IMPRESSION_WEIGHT: f32 = 0.0;
/// Default [`ConfidenceConfig::click_weight`]: a click on an offer counts like a view.
pub const DEFAULT_CLICK_WEIGHT: f32 = DEFAULT_VIEW_WEIGHT;
/// Default [`ConfidenceConfig::return_weight`]: a return undoes a purchase of the same size.
pub const DEFAULT_RETURN_WEIGHT: f32 = 1.0;
/// Default [`ConfidenceConfig::half_life_days`]: a month, chosen by `doppel evaluate
/// --tune` on Online Retail's validation split (15–30 days beat 60, 120 and no decay there).
pub const DEFAULT_HALF_LIFE_DAYS: f32 = 30.0;
/// Default [`ConfidenceConfig::alpha`], chosen with the half-life. Far smaller than the
/// paper's 40 because strengths here are weighted and log-scaled (a single purchase is 1.0,
/// a view 0.1), not raw counts.
pub const DEFAULT_ALPHA: f32 = 3.0;

/// Milliseconds in a day.
pub const MS_PER_DAY: f64 = 86_400_000.0;

/// Weights that turn events into confidences. See the [module docs](self) for the formula.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceConfig {
    /// Weight of a purchased unit. Must be finite and ≥ 0.
    pub purchase_weight: f32,
    /// Weight of an add-to-cart. Must be finite and ≥ 0.
    pub add_to_cart_weight: f32,
    /// Weight of a view. Must be finite and ≥ 0.
    pub view_weight: f32,
    /// Weight *subtracted* per returned (or cancelled) unit. Must be finite and ≥ 0.
    pub return_weight: f32,
    /// Weight of an impression (an offer shown). Must be finite and ≥ 0.
    pub impression_weight: f32,
    /// Weight of a click on an offer. Must be finite and ≥ 0.
    pub click_weight: f32,
    /// Age at which an event counts half; 0 disables decay. Must be finite and ≥ 0.
    pub half_life_days: f32,
    /// Confidence slope: `c = 1 + alpha × strength`. Must be finite and > 0.
    pub alpha: f32,
}

impl Default for ConfidenceConfig {
    fn default() -> Self {
        Self {
            purchase_weight: DEFAULT_PURCHASE_WEIGHT,
            add_to_cart_weight: DEFAULT_ADD_TO_CART_WEIGHT,
            view_weight: DEFAULT_VIEW_WEIGHT,
            return_weight: DEFAULT_RETURN_WEIGHT,
            impression_weight: DEFAULT_IMPRESSION_WEIGHT,
            click_weight: DEFAULT_CLICK_WEIGHT,
            half_life_days: DEFAULT_HALF_LIFE_DAYS,
            alpha: DEFAULT_ALPHA,
        }
    }
}

impl ConfidenceConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let non_negative = [
            ("purchase_weight", self.purchase_weight),
            ("add_to_cart_weight", self.add_to_cart_weight),
            ("view_weight", self.view_weight),
            ("return_weight", self.return_weight),
            ("impression_weight", self.impression_weight),
            ("click_weight", self.click_weight),
            ("half_life_days", self.half_life_days),
        ];
        for (name, value) in non_negative {
            if !value.is_finite() || value < 0.0 {
                return Err(invalid(
                    name,
                    format!("must be finite and >= 0, got {value}"),
                ));
            }
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(invalid(
                "alpha",
                format!("must be finite and > 0, got {}", self.alpha),
            ));
        }
        Ok(())
    }

    /// True if events of this kind have a non-zero weight (impressions, by default, do
    /// not): only those move the decay reference, so showing offers does not age the rest.
    pub fn carries_signal(&self, event: &Event) -> bool {
        self.event_strength(event, event.timestamp_ms) != 0.0
    }

    /// The signed strength one event adds to its cell, as of `now_ms`.
    pub fn event_strength(&self, event: &Event, now_ms: i64) -> f64 {
        let units = quantity_scale(event.quantity);
        let signed_weight = match event.kind {
            EventType::View => f64::from(self.view_weight),
            EventType::AddToCart => f64::from(self.add_to_cart_weight),
            EventType::Purchase if event.quantity >= 0 => f64::from(self.purchase_weight),
            EventType::Purchase | EventType::Return => -f64::from(self.return_weight),
            EventType::Impression => f64::from(self.impression_weight),
            EventType::Click => f64::from(self.click_weight),
        };
        signed_weight * units * self.decay(event.timestamp_ms, now_ms)
    }

    /// The Hu–Koren–Volinsky confidence `1 + alpha × strength` of a cell.
    pub fn confidence(&self, strength: f64) -> f32 {
        (1.0 + f64::from(self.alpha) * strength) as f32
    }

    /// `0.5^(age / half_life)`, or 1 when decay is off or the event is not in the past.
    fn decay(&self, timestamp_ms: i64, now_ms: i64) -> f64 {
        if self.half_life_days <= 0.0 {
            return 1.0;
        }
        let age_days = now_ms.saturating_sub(timestamp_ms).max(0) as f64 / MS_PER_DAY;
        0.5f64.powf(age_days / f64::from(self.half_life_days))
    }
}

/// `1 + ln max(|q|, 1)`: one unit counts 1, bulk quantities grow slowly.
fn quantity_scale(quantity: i32) -> f64 {
    1.0 + f64::from(quantity.unsigned_abs().max(1)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, quantity: i32, timestamp_ms: i64) -> Event {
        Event {
            kind,
            quantity,
            timestamp_ms,
            ..Event::default()
        }
    }

    #[test]
    fn intent_orders_the_weights_and_returns_subtract() {
        let cfg = ConfidenceConfig {
            half_life_days: 0.0,
            ..ConfidenceConfig::default()
        };
        let s = |kind, q| cfg.event_strength(&event(kind, q, 0), 0);
        assert!(s(EventType::Purchase, 1) > s(EventType::AddToCart, 1));
        assert!(s(EventType::AddToCart, 1) > s(EventType::View, 1));
        assert_eq!(s(EventType::Return, 1), -s(EventType::Purchase, 1));
        assert_eq!(s(EventType::Purchase, -1), -s(EventType::Purchase, 1));
        assert_eq!(s(EventType::View, 0), s(EventType::View, 1));
        let ten = s(EventType::Purchase, 10);
        assert!((ten - (1.0 + 10f64.ln())).abs() < 1e-9);
    }

    #[test]
    fn one_half_life_halves_and_future_events_do_not_grow() {
        let cfg = ConfidenceConfig {
            half_life_days: 10.0,
            ..ConfidenceConfig::default()
        };
        let now = 100 * MS_PER_DAY as i64;
        let fresh = cfg.event_strength(&event(EventType::Purchase, 1, now), now);
        let old = cfg.event_strength(&event(EventType::Purchase, 1, now - 10 * 86_400_000), now);
        let future = cfg.event_strength(&event(EventType::Purchase, 1, now + 86_400_000), now);
        assert!((old - fresh / 2.0).abs() < 1e-12);
        assert_eq!(future, fresh);
    }

    #[test]
    fn validate_names_the_field() {
        let bad = ConfidenceConfig {
            view_weight: f32::NAN,
            ..ConfidenceConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(crate::Error::InvalidParameter {
                name: "view_weight",
                ..
            })
        ));
        let bad = ConfidenceConfig {
            alpha: 0.0,
            ..ConfidenceConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(crate::Error::InvalidParameter { name: "alpha", .. })
        ));
        assert!(ConfidenceConfig::default().validate().is_ok());
    }
}
