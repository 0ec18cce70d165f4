//! Customers, items and events into the engine's profiles, and erasure.
//!
//! Three kinds of event come in: [`Engine::record_event`] for a customer held here (both
//! sides), [`Engine::record_foreign_event`] for one held elsewhere (popularity only) and
//! [`Engine::record_customer_event`] for a shard being taken over (customer side only), so
//! that every event counts once for popularity on every node.

use doppel_types::{Customer, Event, Item};

use super::Engine;

/// Profiles [`Engine::upsert_customers`] applies under one write lock (well under a
/// millisecond at about 1 µs each).
const UPSERT_RUN: usize = 256;

impl Engine {
    /// Inserts or replaces a customer profile.
    pub fn upsert_customer(&self, customer: &Customer) {
        self.profiles.write().upsert_customer_ref(customer);
    }

    /// Inserts or replaces customer profiles (a page of a scan), moving them in, a run of
    /// [`UPSERT_RUN`] under each write lock: fewer lock rounds than one at a time, and a
    /// query waits for one run at most (a takeover reloads profiles while serving).
    pub fn upsert_customers(&self, customers: Vec<Customer>) {
        let mut rest = customers.into_iter().peekable();
        while rest.peek().is_some() {
            let mut profiles = self.profiles.write();
            rest.by_ref()
                .take(UPSERT_RUN)
                .for_each(|c| profiles.upsert_customer(c));
        }
    }

    /// Makes room for about `more` customers before a scan reads them.
    pub fn reserve_customers(&self, more: usize) {
        self.profiles.write().reserve_customers(more);
    }

    /// Inserts or replaces a catalogue item.
    pub fn upsert_item(&self, item: &Item) {
        self.profiles.write().upsert_item(item);
    }

    /// Applies one behavioural event (purchases, popularity).
    pub fn record_event(&self, event: &Event) {
        self.profiles.write().record_event(event);
    }

    /// Applies the impressions of served offers: those of a known customer and item under
    /// the shared lock (only the customer's exposure memory changes), so recording them
    /// never stalls concurrent requests; any other event under one write lock.
    pub fn record_impressions(&self, events: &[Event]) {
        let rest: Vec<Event> = {
            let profiles = self.profiles.read();
            events
                .iter()
                .filter(|e| !profiles.record_impression_shared(e))
                .cloned()
                .collect()
        };
        if !rest.is_empty() {
            self.record_events(&rest);
        }
    }

    /// Applies several events under one write lock (readers wait once, not once per
    /// event).
    pub fn record_events(&self, events: &[Event]) {
        let mut profiles = self.profiles.write();
        for event in events {
            profiles.record_event(event);
        }
    }

    /// Applies the customer side of an event only (purchases), for a shard being taken
    /// over whose events already counted for item popularity here.
    pub fn record_customer_event(&self, event: &Event) {
        self.profiles.write().record_purchase(event);
    }

    /// Item popularity from an event of a customer held elsewhere (a shard node follows
    /// every node's events for the popular-offers fallback).
    pub fn record_foreign_event(&self, event: &Event) {
        self.profiles.write().record_popularity(event);
    }

    /// True if a profile exists for `id`.
    pub fn known_customer(&self, id: &str) -> bool {
        self.profiles.read().knows_customer(id)
    }

    /// True if the catalogue holds `id`.
    pub fn known_item(&self, id: &str) -> bool {
        self.profiles.read().knows_item(id)
    }

    /// Forgets a customer: profile, purchases, and its vector in every loaded version
    /// (tombstoned at once; a later merge drops it for good). True if it was known.
    pub fn erase_customer(&self, id: &str) -> bool {
        self.erased.write().insert(id.to_owned());
        let mut profiles = self.profiles.write();
        let Some(slot) = profiles.erase_customer(id) else {
            return false;
        };
        self.erased_slots.lock().push((id.to_owned(), slot));
        let versions = self.versions.read();
        for version in versions.loaded.values() {
            version.remove_customer(id, slot);
        }
        true
    }
}
