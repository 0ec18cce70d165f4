//! Customers, items and behavioural events as the rest of doppel sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a customer agreed to. Both default to `false`: no consent, no personalisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// May this customer be put into ad audiences (lookalikes)?
    pub ads_personalization: bool,
    /// May on-site offers be personalised from this customer's behaviour?
    pub onsite_personalization: bool,
}

/// A customer profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Client-chosen id, unique per deployment.
    pub id: String,
    /// Free-form attributes (e.g. `country`), used by audience filters.
    pub attributes: BTreeMap<String, String>,
    /// Consent flags.
    pub consent: Consent,
}

/// An item that can be offered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Client-chosen id (e.g. a stock code).
    pub id: String,
    /// Category used by offer filters.
    pub category: String,
    /// Unit price in the shop's currency.
    pub price: f64,
    /// Out-of-stock items are never offered.
    pub in_stock: bool,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
}

/// The kind of a behavioural event, in increasing order of intent (returns reduce it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// The customer looked at the item.
    #[default]
    View,
    /// The customer put the item in the basket.
    AddToCart,
    /// The customer bought the item.
    Purchase,
    /// The customer returned (or cancelled) the item.
    Return,
    /// The item was shown to the customer as an offer (counts toward frequency caps;
    /// never a purchase).
    Impression,
    /// The customer clicked an offer of the item (never a purchase).
    Click,
}

/// Where and how an event happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// e.g. `web`, `app`, `email`.
    pub channel: String,
    /// e.g. `mobile`, `desktop`.
    pub device: String,
    /// ISO country or free text (Online Retail uses country names).
    pub country: String,
}

/// One behavioural event of a customer on an item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Who.
    pub customer_id: String,
    /// What.
    pub item_id: String,
    /// Which kind of interaction.
    pub kind: EventType,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Units (purchases, returns); 1 for views.
    pub quantity: i32,
    /// Monetary value of the event (quantity × unit price for purchases).
    pub value: f64,
    /// Channel, device and country.
    pub context: Context,
    /// Optional client-chosen id; (customer id, event id) identifies the event, so a
    /// retried write is not applied twice. Empty means no deduplication. Not part of the
    /// stored encoding (`serde(skip)`): stores keep ids in their own dedup table, so events
    /// written before ids existed stay readable.
    #[serde(skip)]
    pub event_id: String,
}

/// Longest event id, in bytes (ids are `[A-Za-z0-9._:-]`).
pub const MAX_EVENT_ID_LEN: usize = 128;

/// Which kind of entity a vector or an index belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Entity {
    /// Customer vectors: the lookalike space.
    Customer,
    /// Item vectors: the offer space.
    Item,
}
