//! [`Store`] for [`RedisStore`]: each method calls the function of the matching module.

use async_trait::async_trait;
use doppel_types::{
    AuditEvent, CheckpointScope, ContactPolicy, ContextModel, Customer, Entity, Event,
    EventCheckpoint, ExperimentBook, Item, SavedAudienceInfo, SavedAudienceLimits,
    SavedAudienceWrite, SavedMember, VersionInfo,
};

use super::{
    RedisStore, audit_log, contact_policy, erasure, event_checkpoints, events, experiments,
    profiles, retention, saved_audiences, vectors, versions,
};
use doppel_types::shard::ShardId;

use crate::error::Result;
use crate::shard_scans;
use crate::store_trait::{Appended, Store};

#[async_trait]
impl Store for RedisStore {
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<()> {
        profiles::upsert_customers(self, customers).await
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>> {
        profiles::get_customer(self, id).await
    }

    async fn get_customers(&self, ids: &[String]) -> Result<Vec<Option<Customer>>> {
        profiles::get_customers(self, ids).await
    }

    async fn scan_customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>> {
        profiles::scan_customers(self, after, limit).await
    }

    async fn delete_customer(&self, id: &str) -> Result<bool> {
        erasure::delete_customer(self, id).await
    }

    async fn erased_customers(&self) -> Result<Vec<String>> {
        erasure::erased_customers(self).await
    }

    async fn is_erased(&self, id: &str) -> Result<bool> {
        erasure::is_erased(self, id).await
    }

    async fn upsert_items(&self, items: Vec<Item>) -> Result<()> {
        profiles::upsert_items(self, items).await
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>> {
        profiles::get_item(self, id).await
    }

    async fn scan_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        profiles::scan_items(self, after, limit).await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<Appended> {
        events::append_events(self, events).await
    }

    async fn customer_events(&self, customer_id: &str) -> Result<Vec<Event>> {
        events::customer_events(self, customer_id).await
    }

    async fn scan_events(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>> {
        events::scan_events(self, after_seq, limit).await
    }

    async fn last_event_seq(&self) -> Result<u64> {
        events::last_event_seq(self).await
    }

    async fn scan_shard_customers(
        &self,
        shard: ShardId,
        shard_count: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Customer>> {
        if shard_count != self.layout.logical_shards() {
            return shard_scans::customers(self, shard, shard_count, after, limit).await;
        }
        profiles::scan_shard_customers(self, shard, after, limit).await
    }

    async fn scan_shard_events(
        &self,
        shard: ShardId,
        shard_count: u32,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>> {
        if shard_count != self.layout.logical_shards() {
            return shard_scans::events(self, shard, shard_count, after_seq, limit).await;
        }
        events::scan_shard_events(self, shard, after_seq, limit).await
    }

    async fn scan_shard_vectors(
        &self,
        version: &str,
        shard: ShardId,
        shard_count: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        if shard_count != self.layout.logical_shards() {
            return shard_scans::vectors(self, version, shard, shard_count, after, limit).await;
        }
        vectors::scan_shard_vectors(self, version, shard, after, limit).await
    }

    async fn put_vectors(
        &self,
        version: &str,
        entity: Entity,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Result<usize> {
        vectors::put_vectors(self, version, entity, rows).await
    }

    async fn get_vector(
        &self,
        version: &str,
        entity: Entity,
        id: &str,
    ) -> Result<Option<Vec<f32>>> {
        vectors::get_vector(self, version, entity, id).await
    }

    async fn scan_vectors(
        &self,
        version: &str,
        entity: Entity,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        vectors::scan_vectors(self, version, entity, after, limit).await
    }

    async fn delete_version(&self, version: &str) -> Result<()> {
        versions::delete_version(self, version).await
    }

    async fn put_version(&self, info: VersionInfo) -> Result<()> {
        versions::put_version(self, info).await
    }

    async fn get_version(&self, version: &str) -> Result<Option<VersionInfo>> {
        versions::get_version(self, version).await
    }

    async fn list_versions(&self) -> Result<Vec<VersionInfo>> {
        versions::list_versions(self).await
    }

    async fn set_active_version(&self, version: &str) -> Result<()> {
        versions::set_active_version(self, version).await
    }

    async fn active_version(&self) -> Result<Option<String>> {
        versions::active_version(self).await
    }

    async fn put_saved_audience(
        &self,
        info: &SavedAudienceInfo,
        query: Option<&[u8]>,
        members: &[SavedMember],
        write: SavedAudienceWrite,
        limits: SavedAudienceLimits,
    ) -> Result<SavedAudienceInfo> {
        saved_audiences::put(self, info, query, members, write, limits).await
    }

    async fn saved_audience(&self, id: &str) -> Result<Option<SavedAudienceInfo>> {
        saved_audiences::info(self, id).await
    }

    async fn saved_audience_query(&self, id: &str) -> Result<Option<Vec<u8>>> {
        saved_audiences::query(self, id).await
    }

    async fn put_saved_audience_query(
        &self,
        id: &str,
        expected: &[u8],
        query: &[u8],
    ) -> Result<bool> {
        saved_audiences::put_query(self, id, expected, query).await
    }

    async fn saved_audiences(&self) -> Result<Vec<SavedAudienceInfo>> {
        saved_audiences::infos(self).await
    }

    async fn saved_audience_members(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<Vec<(u64, SavedMember)>>> {
        saved_audiences::members(self, id, after, limit).await
    }

    async fn delete_saved_audience(&self, id: &str) -> Result<bool> {
        saved_audiences::delete(self, id).await
    }

    async fn append_audit_event(&self, event: &AuditEvent) -> Result<u64> {
        audit_log::append(self, event).await
    }

    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
        audit_log::events(self, after, limit).await
    }

    async fn put_contact_policy(&self, policy: &ContactPolicy) -> Result<()> {
        contact_policy::put_contact_policy(self, policy).await
    }

    async fn contact_policy(&self) -> Result<Option<ContactPolicy>> {
        contact_policy::contact_policy(self).await
    }

    async fn put_event_checkpoint(
        &self,
        scope: CheckpointScope,
        checkpoint: &EventCheckpoint,
    ) -> Result<bool> {
        event_checkpoints::put(self, scope, checkpoint).await
    }

    async fn event_checkpoint(&self, scope: CheckpointScope) -> Result<Option<EventCheckpoint>> {
        event_checkpoints::get(self, scope).await
    }

    async fn event_checkpoint_seqs(&self, scopes: &[CheckpointScope]) -> Result<Vec<Option<u64>>> {
        event_checkpoints::seqs(self, scopes).await
    }

    async fn advance_event_checkpoint(&self, scope: CheckpointScope, through: u64) -> Result<bool> {
        event_checkpoints::advance(self, scope, through).await
    }

    async fn compact_events(&self, through: u64, before_ms: i64, limit: usize) -> Result<u64> {
        retention::compact_events(self, through, before_ms, limit).await
    }

    async fn events_compacted_through(&self) -> Result<u64> {
        event_checkpoints::compacted_through(self).await
    }

    async fn experiments(&self) -> Result<ExperimentBook> {
        experiments::experiments(self).await
    }

    async fn experiments_revision(&self) -> Result<u64> {
        experiments::revision(self).await
    }

    async fn put_experiments(&self, book: &ExperimentBook) -> Result<bool> {
        experiments::put_experiments(self, book).await
    }

    async fn put_context_model(&self, version: &str, model: &ContextModel) -> Result<()> {
        versions::put_context_model(self, version, model).await
    }

    async fn context_model(&self, version: &str) -> Result<Option<ContextModel>> {
        versions::context_model(self, version).await
    }

    async fn flush(&self) -> Result<()> {
        // Durability is the server's AOF policy (see the module docs); nothing to do here.
        Ok(())
    }
}
