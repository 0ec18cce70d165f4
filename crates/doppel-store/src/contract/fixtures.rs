//! Records written by the contract cases.

use std::collections::BTreeMap;

use doppel_types::{Consent, Context, Customer, Event, EventType, Item, VersionInfo, VersionState};

/// A customer with a country attribute, ads consent and no on-site consent.
pub fn customer(id: &str) -> Customer {
    Customer {
        id: id.to_owned(),
        attributes: BTreeMap::from([("country".to_owned(), "GB".to_owned())]),
        consent: Consent {
            ads_personalization: true,
            onsite_personalization: false,
        },
    }
}

/// An item in `category`.
pub fn item(id: &str, category: &str) -> Item {
    Item {
        id: id.to_owned(),
        category: category.to_owned(),
        price: 12.5,
        in_stock: true,
        attributes: BTreeMap::from([("brand".to_owned(), "acme".to_owned())]),
    }
}

/// An event of `customer` on `item` at `timestamp_ms`.
pub fn event(customer: &str, item: &str, timestamp_ms: i64) -> Event {
    Event {
        customer_id: customer.to_owned(),
        item_id: item.to_owned(),
        kind: EventType::Purchase,
        timestamp_ms,
        quantity: 2,
        value: 25.0,
        context: Context {
            channel: "web".to_owned(),
            device: "mobile".to_owned(),
            country: "GB".to_owned(),
        },
        event_id: String::new(),
    }
}

/// Version metadata named `name`.
pub fn version(name: &str) -> VersionInfo {
    VersionInfo {
        version: name.to_owned(),
        dim: 3,
        state: VersionState::Ready,
        created_ms: 1_700_000_000_000,
        customer_count: 2,
        item_count: 1,
        params: BTreeMap::from([("factors".to_owned(), "3".to_owned())]),
        ..VersionInfo::default()
    }
}

/// Rows `(id, [i, -0.25, 1e-7])` for the given ids, `i` their position.
pub fn rows(ids: &[&str]) -> Vec<(String, Vec<f32>)> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| ((*id).to_owned(), vec![i as f32, -0.25, 1.0e-7]))
        .collect()
}
