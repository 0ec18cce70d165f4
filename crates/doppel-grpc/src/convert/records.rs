//! Protobuf ⇄ domain conversions. Incoming messages are destructured field by field so a
//! new proto field breaks the build until it is handled here; every refusal names the field.

use std::collections::{BTreeMap, HashMap};

use doppel_proto::v1 as pb;
use doppel_types::entity::MAX_EVENT_ID_LEN;
use doppel_types::limits::{
    MAX_ATTRIBUTE_LEN, MAX_ATTRIBUTES, MAX_EVENT_AHEAD_MS, MAX_ID_LEN, MIN_EVENT_TIMESTAMP_MS,
};
use doppel_types::segment::is_segment_key;
use doppel_types::{Consent, Context, Customer, Event, EventType, Item, VersionInfo};

use crate::status::FieldViolation;

/// Checks an event id: empty (no deduplication) or at most [`MAX_EVENT_ID_LEN`] bytes of
/// `[A-Za-z0-9._:-]`, so ids are safe in store keys and logs.
pub fn validate_event_id(id: &str) -> Result<(), FieldViolation> {
    if id.len() > MAX_EVENT_ID_LEN {
        return Err(FieldViolation::new(
            "event_id",
            format!("longer than {MAX_EVENT_ID_LEN} bytes"),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(FieldViolation::new(
            "event_id",
            format!("contains {c:?}; only A-Z a-z 0-9 . _ : - are allowed"),
        ));
    }
    Ok(())
}

/// Checks a customer or item id: non-empty, bounded, no control characters.
pub fn validate_id(field: &str, id: &str) -> Result<(), FieldViolation> {
    if id.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(FieldViolation::new(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(FieldViolation::new(field, "contains control characters"));
    }
    Ok(())
}

/// Checks an attribute map (profile attributes, a lookalike filter): at most
/// `MAX_ATTRIBUTES` entries, keys 1..=`MAX_ATTRIBUTE_LEN` bytes, values at most that.
pub fn attributes(
    field: &str,
    map: HashMap<String, String>,
) -> Result<BTreeMap<String, String>, FieldViolation> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(FieldViolation::new(
            field,
            format!("more than {MAX_ATTRIBUTES} entries"),
        ));
    }
    for (key, value) in &map {
        if key.is_empty() || key.len() > MAX_ATTRIBUTE_LEN || value.len() > MAX_ATTRIBUTE_LEN {
            return Err(FieldViolation::new(
                format!("{field}[{key}]"),
                format!("keys must be 1..={MAX_ATTRIBUTE_LEN} bytes, values ≤ {MAX_ATTRIBUTE_LEN}"),
            ));
        }
    }
    Ok(map.into_iter().collect())
}

fn short_text(field: &str, text: String) -> Result<String, FieldViolation> {
    if text.len() > MAX_ATTRIBUTE_LEN {
        return Err(FieldViolation::new(
            field,
            format!("longer than {MAX_ATTRIBUTE_LEN} bytes"),
        ));
    }
    Ok(text)
}

/// Converts and validates a customer.
pub fn customer_from_pb(customer: pb::Customer) -> Result<Customer, FieldViolation> {
    let pb::Customer {
        id,
        attributes: attrs,
        consent,
    } = customer;
    validate_id("id", &id)?;
    let consent = consent
        .map(|c| {
            let pb::Consent {
                ads_personalization,
                onsite_personalization,
            } = c;
            Consent {
                ads_personalization,
                onsite_personalization,
            }
        })
        .unwrap_or_default();
    let attributes = attributes("attributes", attrs)?;
    if let Some(key) = attributes.keys().find(|k| is_segment_key(k)) {
        return Err(FieldViolation::new(
            format!("attributes[{key}]"),
            "keys starting with `segment.` are reserved for computed segments",
        ));
    }
    Ok(Customer {
        id,
        attributes,
        consent,
    })
}

/// Converts and validates an item.
pub fn item_from_pb(item: pb::Item) -> Result<Item, FieldViolation> {
    let pb::Item {
        id,
        category,
        price,
        in_stock,
        attributes: attrs,
    } = item;
    validate_id("id", &id)?;
    if !price.is_finite() || price < 0.0 {
        return Err(FieldViolation::new("price", "must be a finite number ≥ 0"));
    }
    Ok(Item {
        id,
        category: short_text("category", category)?,
        price,
        in_stock,
        attributes: attributes("attributes", attrs)?,
    })
}

/// Converts and validates a context (absent = empty).
pub fn context_from_pb(context: Option<pb::Context>) -> Result<Context, FieldViolation> {
    let pb::Context {
        channel,
        device,
        country,
    } = context.unwrap_or_default();
    Ok(Context {
        channel: short_text("context.channel", channel)?,
        device: short_text("context.device", device)?,
        country: short_text("context.country", country)?,
    })
}

/// An event's time must lie between 1990-01-01 and one day ahead of the server clock: one
/// far-future timestamp would otherwise make every other event look ancient to training.
pub fn check_event_time(timestamp_ms: i64, now_ms: i64) -> Result<(), FieldViolation> {
    let latest = now_ms.saturating_add(MAX_EVENT_AHEAD_MS);
    if (MIN_EVENT_TIMESTAMP_MS..=latest).contains(&timestamp_ms) {
        Ok(())
    } else {
        Err(FieldViolation::new(
            "timestamp_ms",
            format!(
                "{timestamp_ms} is outside [{MIN_EVENT_TIMESTAMP_MS} (1990-01-01), server \
                 clock + 1 day = {latest}] (ms since the Unix epoch)"
            ),
        ))
    }
}

/// Converts and validates an event (the existence of its customer and item is checked by
/// the ingest service).
pub fn event_from_pb(event: pb::Event) -> Result<Event, FieldViolation> {
    let pb::Event {
        customer_id,
        item_id,
        r#type,
        timestamp_ms,
        quantity,
        value,
        context,
        event_id,
    } = event;
    validate_id("customer_id", &customer_id)?;
    validate_id("item_id", &item_id)?;
    validate_event_id(&event_id)?;
    let kind = match pb::EventType::try_from(r#type) {
        Ok(pb::EventType::View) => EventType::View,
        Ok(pb::EventType::AddToCart) => EventType::AddToCart,
        Ok(pb::EventType::Purchase) => EventType::Purchase,
        Ok(pb::EventType::Return) => EventType::Return,
        Ok(pb::EventType::Impression) => EventType::Impression,
        Ok(pb::EventType::Click) => EventType::Click,
        Ok(pb::EventType::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                "type",
                "must be VIEW, ADD_TO_CART, PURCHASE, RETURN, IMPRESSION or CLICK",
            ));
        }
    };
    check_event_time(timestamp_ms, doppel_types::clock::now_ms())?;
    if quantity < 0 {
        return Err(FieldViolation::new(
            "quantity",
            "must be ≥ 0 (a RETURN event carries the returned units)",
        ));
    }
    if !value.is_finite() {
        return Err(FieldViolation::new("value", "must be finite"));
    }
    Ok(Event {
        customer_id,
        item_id,
        kind,
        timestamp_ms,
        quantity: quantity.max(1),
        value,
        context: context_from_pb(context)?,
        event_id,
    })
}

/// The protobuf form of a customer.
pub fn customer_to_pb(customer: Customer) -> pb::Customer {
    let Customer {
        id,
        attributes,
        consent,
    } = customer;
    pb::Customer {
        id,
        attributes: attributes.into_iter().collect(),
        consent: Some(pb::Consent {
            ads_personalization: consent.ads_personalization,
            onsite_personalization: consent.onsite_personalization,
        }),
    }
}

/// The protobuf form of an item.
pub fn item_to_pb(item: Item) -> pb::Item {
    let Item {
        id,
        category,
        price,
        in_stock,
        attributes,
    } = item;
    pb::Item {
        id,
        category,
        price,
        in_stock,
        attributes: attributes.into_iter().collect(),
    }
}

/// The protobuf form of an event.
pub fn event_to_pb(event: Event) -> pb::Event {
    let Event {
        customer_id,
        item_id,
        kind,
        timestamp_ms,
        quantity,
        value,
        context,
        event_id,
    } = event;
    let kind = match kind {
        EventType::View => pb::EventType::View,
        EventType::AddToCart => pb::EventType::AddToCart,
        EventType::Purchase => pb::EventType::Purchase,
        EventType::Return => pb::EventType::Return,
        EventType::Impression => pb::EventType::Impression,
        EventType::Click => pb::EventType::Click,
    };
    let Context {
        channel,
        device,
        country,
    } = context;
    pb::Event {
        customer_id,
        item_id,
        r#type: kind as i32,
        timestamp_ms,
        quantity,
        value,
        context: Some(pb::Context {
            channel,
            device,
            country,
        }),
        event_id,
    }
}

/// The protobuf form of a version's metadata.
pub fn version_to_pb(info: VersionInfo) -> pb::VersionInfo {
    let VersionInfo {
        version,
        dim,
        source,
        state,
        created_ms,
        customer_count,
        item_count,
        params,
    } = info;
    pb::VersionInfo {
        model_version: version,
        dim,
        source: format!("{source:?}").to_lowercase(),
        state: state.name().to_owned(),
        created_ms,
        customer_count,
        item_count,
        params: params.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_records_name_their_field() {
        let err = customer_from_pb(pb::Customer::default()).unwrap_err();
        assert_eq!(err.field, "id");
        let err = item_from_pb(pb::Item {
            id: "i".into(),
            price: f64::NAN,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.field, "price");
        let event = pb::Event {
            customer_id: "c".into(),
            item_id: "i".into(),
            r#type: 0,
            timestamp_ms: 1,
            ..Default::default()
        };
        assert_eq!(event_from_pb(event).unwrap_err().field, "type");
        assert_eq!(validate_id("x", &"a".repeat(300)).unwrap_err().field, "x");
    }
}
