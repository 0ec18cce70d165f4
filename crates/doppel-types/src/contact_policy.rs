//! The contact policy: frequency caps on offers. A cap bounds how many impressions one
//! customer may have of a scope (an item, a category, an attribute value, or all offers)
//! within a rolling window that ends at the server's clock.

use serde::{Deserialize, Serialize};

/// Most caps in one policy.
pub const MAX_CAPS: usize = 64;
/// Longest cap window: 400 days, in seconds.
pub const MAX_CAP_WINDOW_SECONDS: u64 = 400 * 86_400;
/// Most impressions remembered per customer (the most recent are kept). Caps count
/// within this memory, so a cap never needs more than this many impressions.
pub const MAX_EXPOSURES_PER_CUSTOMER: usize = 16_384;

/// What a cap counts impressions of.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CapScope {
    /// Impressions of the same item.
    Item,
    /// Impressions of any item of the same category.
    Category,
    /// Every impression of the customer.
    All,
    /// Impressions of items sharing the value of this item attribute (e.g. `campaign`);
    /// items without the attribute are not capped by it.
    Attribute(String),
}

/// At most `max_impressions` impressions of one scope within `window_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrequencyCap {
    /// What is counted.
    pub scope: CapScope,
    /// Impressions allowed within the window.
    pub max_impressions: u32,
    /// The rolling window, in seconds.
    pub window_seconds: u64,
}

impl FrequencyCap {
    /// The window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::try_from(self.window_seconds.saturating_mul(1_000)).unwrap_or(i64::MAX)
    }
}

/// Every cap applied to offers. Empty: offers are not capped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPolicy {
    /// The caps; an offer is shown only if it breaks none.
    pub caps: Vec<FrequencyCap>,
}

impl ContactPolicy {
    /// The longest window of any cap, in ms (0 without caps).
    pub fn longest_window_ms(&self) -> i64 {
        self.caps
            .iter()
            .map(FrequencyCap::window_ms)
            .max()
            .unwrap_or(0)
    }

    /// Checks the bounds: at most [`MAX_CAPS`] caps, each with a non-zero
    /// `max_impressions` and a window in `1..=MAX_CAP_WINDOW_SECONDS`, and an attribute
    /// name for an attribute scope. The error names the field (`caps[i].…`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.caps.len() > MAX_CAPS {
            return Err(("caps".into(), format!("at most {MAX_CAPS} caps")));
        }
        for (i, cap) in self.caps.iter().enumerate() {
            let field = |name: &str| format!("caps[{i}].{name}");
            if let CapScope::Attribute(name) = &cap.scope
                && name.is_empty()
            {
                return Err((
                    field("attribute"),
                    "an ATTRIBUTE cap names the item attribute it counts".into(),
                ));
            }
            if cap.max_impressions == 0 || cap.max_impressions as usize > MAX_EXPOSURES_PER_CUSTOMER
            {
                return Err((
                    field("max_impressions"),
                    format!(
                        "must be in 1..={MAX_EXPOSURES_PER_CUSTOMER} (the impressions remembered per customer)"
                    ),
                ));
            }
            if cap.window_seconds == 0 || cap.window_seconds > MAX_CAP_WINDOW_SECONDS {
                return Err((
                    field("window_seconds"),
                    format!("must be in 1..={MAX_CAP_WINDOW_SECONDS} (400 days)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(scope: CapScope, max: u32, window: u64) -> FrequencyCap {
        FrequencyCap {
            scope,
            max_impressions: max,
            window_seconds: window,
        }
    }

    #[test]
    fn bad_caps_name_their_field() {
        let field = |caps: Vec<FrequencyCap>| ContactPolicy { caps }.validate().err().map(|e| e.0);
        assert_eq!(field(vec![cap(CapScope::Item, 3, 86_400)]), None);
        assert_eq!(
            field(vec![cap(CapScope::Item, 3, 60), cap(CapScope::Item, 0, 60)]),
            Some("caps[1].max_impressions".into())
        );
        assert_eq!(
            field(vec![cap(CapScope::All, 1, 0)]),
            Some("caps[0].window_seconds".into())
        );
        assert_eq!(
            field(vec![cap(CapScope::All, 1, MAX_CAP_WINDOW_SECONDS + 1)]),
            Some("caps[0].window_seconds".into())
        );
        assert_eq!(
            field(vec![cap(CapScope::Attribute(String::new()), 1, 60)]),
            Some("caps[0].attribute".into())
        );
        assert_eq!(
            field(vec![cap(CapScope::All, 1, 60); MAX_CAPS + 1]),
            Some("caps".into())
        );
    }
}
