//! The outbox (docs/guarantees.md, "Recorded means delivered"): every write that records jobs also puts
//! an `OUTBOX#` item holding them, in the same transaction. The webhook enqueues the jobs
//! right after; the sweep re-offers every entry once its grace has passed and then deletes
//! it. Re-offering is harmless: SQS FIFO drops a deduplication id (the job id) it accepted in
//! the last five minutes, and the grace plus the sweep's interval are well inside that. What
//! the webhook couldn't enqueue (SQS down, the function stopped) is enqueued by the sweep.
//!
//! | item   | PK              | SK       | GSI2PK   | GSI2SK                        |
//! |--------|-----------------|----------|----------|-------------------------------|
//! | entry  | `OUTBOX#<id>`   | `OUTBOX` | `OUTBOX` | `<recorded, epoch ms>#<id>`   |
//!
//! `GSI2` is sparse and projects keys only: the sweep reads the entries it finds.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, TransactWriteItem, WriteRequest};
use jiff::Timestamp;

use super::attrs::*;
use super::{DynamoStore, build_error, unavailable};
use crate::domain::Job;
use crate::ports::{Outbox, OutboxEntry, StoreError};

/// The sparse index the sweep queries.
pub const OUTBOX_INDEX: &str = "GSI2";
const OUTBOX_PARTITION: &str = "OUTBOX";
/// An entry outlives any sweep; TTL removes one a bug left behind.
const OUTBOX_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// BatchGetItem and BatchWriteItem limits.
const BATCH_GET: usize = 100;
const BATCH_WRITE: usize = 25;

impl DynamoStore {
    /// The outbox entry for `jobs`, recorded `now`; none for no jobs.
    pub(super) fn outbox_put(&self, jobs: &[Job], now: Timestamp) -> Result<Option<TransactWriteItem>, StoreError> {
        if jobs.is_empty() {
            return Ok(None);
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let item = HashMap::from([
            pk(format!("OUTBOX#{id}")),
            sk("OUTBOX"),
            ("jobs".into(), jobs_value(jobs)),
            ("GSI2PK".into(), s(OUTBOX_PARTITION)),
            ("GSI2SK".into(), s(format!("{}#{id}", sortable_time(now)))),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, OUTBOX_TTL)),
        ]);
        self.put(item, None).map(Some)
    }
}

impl Outbox for DynamoStore {
    async fn due_outbox(&self, recorded_before: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i32::try_from(limit.clamp(1, BATCH_GET)).unwrap_or(1);
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OUTBOX_INDEX)
            .key_condition_expression("GSI2PK = :outbox AND GSI2SK < :before")
            .expression_attribute_values(":outbox", s(OUTBOX_PARTITION))
            .expression_attribute_values(":before", s(sortable_time(recorded_before)))
            .limit(limit)
            .send()
            .await
            .map_err(unavailable)?
            .items
            .unwrap_or_default();
        if found.is_empty() {
            return Ok(Vec::new());
        }
        // In due order: the order the jobs were recorded in.
        let order: Vec<String> = found.iter().filter_map(|i| opt_s(i, "PK").map(str::to_owned)).collect();
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        for pk_value in &order {
            keys = keys.keys(key(pk_value.clone(), "OUTBOX"));
        }
        let mut keys = keys.build().map_err(build_error)?;
        let mut items: Vec<Item> = Vec::new();
        for attempt in 0..5u32 {
            let out =
                self.client.batch_get_item().request_items(&self.table, keys).send().await.map_err(unavailable)?;
            items.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => {
                    keys = rest;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                _ => break,
            }
        }
        let mut entries = Vec::new();
        for pk_value in order {
            // Deleted by another sweep meanwhile: nothing to do.
            let Some(item) = items.iter().find(|i| opt_s(i, "PK") == Some(pk_value.as_str())) else { continue };
            let id = pk_value.trim_start_matches("OUTBOX#").to_owned();
            entries.push(OutboxEntry { id, jobs: parse_jobs(item, "jobs")? });
        }
        Ok(entries)
    }

    async fn clear_outbox(&self, ids: &[String]) -> Result<(), StoreError> {
        for chunk in ids.chunks(BATCH_WRITE) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|id| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key(format!("OUTBOX#{id}"), "OUTBOX")))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0..5u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                match out.unprocessed_items.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.is_empty() => {
                        requests = rest;
                        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }
}
