//! [`Store`] for [`EmbeddedStore`]: each method moves its arguments to the blocking pool
//! and calls the sync function of the matching module.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use doppel_types::{
    AuditEvent, CheckpointScope, ContactPolicy, ContextModel, Customer, Entity, Event,
    EventCheckpoint, ExperimentBook, Item, SavedAudienceInfo, SavedAudienceLimits,
    SavedAudienceWrite, SavedMember, VersionInfo,
};

use super::{
    EmbeddedStore, audit_log, contact_policy, erasure, event_checkpoints, events, experiments,
    profiles, retention, saved_audiences, vectors, versions,
};
use crate::error::Result;
use crate::store_trait::{Appended, Store};

#[async_trait]
impl Store for EmbeddedStore {
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<()> {
        self.run(move |db| profiles::upsert_customers(db, customers))
            .await
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>> {
        let id = id.to_owned();
        self.run(move |db| profiles::get_customer(db, &id)).await
    }

    async fn get_customers(&self, ids: &[String]) -> Result<Vec<Option<Customer>>> {
        let ids = ids.to_vec();
        self.run(move |db| profiles::get_customers(db, &ids)).await
    }

    async fn scan_customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>> {
        let after = after.map(str::to_owned);
        self.run(move |db| profiles::scan_customers(db, after.as_deref(), limit))
            .await
    }

    async fn delete_customer(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let (owners, writer) = (
            Arc::clone(&self.batch_owners),
            Arc::clone(&self.batch_writer),
        );
        self.run(move |db| {
            let _one_writer = writer.lock();
            let rows = owners.lock().rows(&id).to_vec();
            let existed = erasure::delete_customer(db, &id, &rows)?;
            owners.lock().forget(&id);
            Ok(existed)
        })
        .await
    }

    async fn erased_customers(&self) -> Result<Vec<String>> {
        self.run(erasure::erased_customers).await
    }

    async fn is_erased(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |db| erasure::is_erased(db, &id)).await
    }

    async fn upsert_items(&self, items: Vec<Item>) -> Result<()> {
        self.run(move |db| profiles::upsert_items(db, items)).await
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>> {
        let id = id.to_owned();
        self.run(move |db| profiles::get_item(db, &id)).await
    }

    async fn scan_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        let after = after.map(str::to_owned);
        self.run(move |db| profiles::scan_items(db, after.as_deref(), limit))
            .await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<Appended> {
        self.run(move |db| events::append_events(db, &events)).await
    }

    async fn append_impressions(&self, events: Arc<[Event]>) -> Result<Appended> {
        let (owners, writer) = (
            Arc::clone(&self.batch_owners),
            Arc::clone(&self.batch_writer),
        );
        let appended = self
            .run(move |db| {
                let _one_writer = writer.lock();
                events::append_impressions(db, &events, &owners)
            })
            .await?;
        self.unflushed.store(true, Ordering::Release);
        Ok(appended)
    }

    async fn customer_events(&self, customer_id: &str) -> Result<Vec<Event>> {
        let id = customer_id.to_owned();
        let owners = Arc::clone(&self.batch_owners);
        self.run(move |db| {
            let rows = owners.lock().rows(&id).to_vec();
            events::customer_events(db, &id, &rows)
        })
        .await
    }

    async fn scan_events(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>> {
        self.run(move |db| events::scan_events(db, after_seq, limit))
            .await
    }

    async fn last_event_seq(&self) -> Result<u64> {
        self.run(events::last_event_seq).await
    }

    async fn put_vectors(
        &self,
        version: &str,
        entity: Entity,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Result<usize> {
        let version = version.to_owned();
        self.run(move |db| vectors::put_vectors(db, &version, entity, rows))
            .await
    }

    async fn get_vector(
        &self,
        version: &str,
        entity: Entity,
        id: &str,
    ) -> Result<Option<Vec<f32>>> {
        let (version, id) = (version.to_owned(), id.to_owned());
        self.run(move |db| vectors::get_vector(db, &version, entity, &id))
            .await
    }

    async fn scan_vectors(
        &self,
        version: &str,
        entity: Entity,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        let version = version.to_owned();
        let after = after.map(str::to_owned);
        self.run(move |db| vectors::scan_vectors(db, &version, entity, after.as_deref(), limit))
            .await
    }

    async fn delete_version(&self, version: &str) -> Result<()> {
        let version = version.to_owned();
        self.run(move |db| versions::delete_version(db, &version))
            .await
    }

    async fn put_version(&self, info: VersionInfo) -> Result<()> {
        self.run(move |db| versions::put_version(db, info)).await
    }

    async fn get_version(&self, version: &str) -> Result<Option<VersionInfo>> {
        let version = version.to_owned();
        self.run(move |db| versions::get_version(db, &version))
            .await
    }

    async fn list_versions(&self) -> Result<Vec<VersionInfo>> {
        self.run(versions::list_versions).await
    }

    async fn set_active_version(&self, version: &str) -> Result<()> {
        let version = version.to_owned();
        self.run(move |db| versions::set_active_version(db, &version))
            .await
    }

    async fn active_version(&self) -> Result<Option<String>> {
        self.run(versions::active_version).await
    }

    async fn put_saved_audience(
        &self,
        info: &SavedAudienceInfo,
        query: Option<&[u8]>,
        members: &[SavedMember],
        write: SavedAudienceWrite,
        limits: SavedAudienceLimits,
    ) -> Result<SavedAudienceInfo> {
        let (info, query, members) = (info.clone(), query.map(<[u8]>::to_vec), members.to_vec());
        self.run(move |db| {
            saved_audiences::put(db, &info, query.as_deref(), &members, write, limits)
        })
        .await
    }

    async fn saved_audience(&self, id: &str) -> Result<Option<SavedAudienceInfo>> {
        let id = id.to_owned();
        self.run(move |db| saved_audiences::info(db, &id)).await
    }

    async fn saved_audience_query(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let id = id.to_owned();
        self.run(move |db| saved_audiences::query(db, &id)).await
    }

    async fn put_saved_audience_query(
        &self,
        id: &str,
        expected: &[u8],
        query: &[u8],
    ) -> Result<bool> {
        let (id, expected, query) = (id.to_owned(), expected.to_vec(), query.to_vec());
        self.run(move |db| saved_audiences::put_query(db, &id, &expected, &query))
            .await
    }

    async fn saved_audiences(&self) -> Result<Vec<SavedAudienceInfo>> {
        self.run(saved_audiences::infos).await
    }

    async fn saved_audience_members(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<Vec<(u64, SavedMember)>>> {
        let id = id.to_owned();
        self.run(move |db| saved_audiences::members(db, &id, after, limit))
            .await
    }

    async fn delete_saved_audience(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |db| saved_audiences::delete(db, &id)).await
    }

    async fn append_audit_event(&self, event: &AuditEvent) -> Result<u64> {
        let event = event.clone();
        self.run(move |db| audit_log::append(db, &event)).await
    }

    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
        self.run(move |db| audit_log::events(db, after, limit))
            .await
    }

    async fn put_contact_policy(&self, policy: &ContactPolicy) -> Result<()> {
        let policy = policy.clone();
        self.run(move |db| contact_policy::put_contact_policy(db, &policy))
            .await
    }

    async fn contact_policy(&self) -> Result<Option<ContactPolicy>> {
        self.run(contact_policy::contact_policy).await
    }

    async fn put_event_checkpoint(
        &self,
        scope: CheckpointScope,
        checkpoint: &EventCheckpoint,
    ) -> Result<bool> {
        let checkpoint = checkpoint.clone();
        self.run(move |db| event_checkpoints::put(db, scope, &checkpoint))
            .await
    }

    async fn event_checkpoint(&self, scope: CheckpointScope) -> Result<Option<EventCheckpoint>> {
        self.run(move |db| event_checkpoints::get(db, scope)).await
    }

    async fn event_checkpoint_seqs(&self, scopes: &[CheckpointScope]) -> Result<Vec<Option<u64>>> {
        let scopes = scopes.to_vec();
        self.run(move |db| event_checkpoints::seqs(db, &scopes))
            .await
    }

    async fn compact_events(&self, through: u64, before_ms: i64, limit: usize) -> Result<u64> {
        let (removed, newest) = self
            .run(move |db| retention::compact_events(db, through, before_ms, limit))
            .await?;
        if newest > 0 {
            self.batch_owners.lock().forget_through(newest);
        }
        Ok(removed)
    }

    async fn advance_event_checkpoint(&self, scope: CheckpointScope, through: u64) -> Result<bool> {
        self.run(move |db| event_checkpoints::advance(db, scope, through))
            .await
    }

    async fn events_compacted_through(&self) -> Result<u64> {
        self.run(event_checkpoints::compacted_through).await
    }

    async fn experiments(&self) -> Result<ExperimentBook> {
        self.run(experiments::experiments).await
    }

    async fn put_experiments(&self, book: &ExperimentBook) -> Result<bool> {
        let book = book.clone();
        self.run(move |db| experiments::put_experiments(db, &book))
            .await
    }

    async fn put_context_model(&self, version: &str, model: &ContextModel) -> Result<()> {
        let (version, model) = (version.to_owned(), model.clone());
        self.run(move |db| versions::put_context_model(db, &version, &model))
            .await
    }

    async fn context_model(&self, version: &str) -> Result<Option<ContextModel>> {
        let version = version.to_owned();
        self.run(move |db| versions::context_model(db, &version))
            .await
    }

    async fn flush(&self) -> Result<()> {
        // Every other commit is durable on return; only lazy impressions wait for this.
        if !self.unflushed.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = self.run(|db| super::write(db, |_| Ok(()))).await;
        if flushed.is_err() {
            self.unflushed.store(true, Ordering::Release);
        }
        flushed
    }

    fn health(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        Some(self.handle.health())
    }
}
