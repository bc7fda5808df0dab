//! The outbox (`dynamodb/outbox.rs`): every write that records jobs puts an entry holding
//! them; the sweep reads the due ones in the order recorded and clears them.

use jiff::Timestamp;
use shared::domain::Job;
use shared::ports::{Outbox, OutboxEntry, StoreError};

use super::records::{OutboxRecord, sortable_ms};
use super::{MemoryStore, State, StoreOp};

/// The adapter reads at most one BatchGetItem's worth of entries per call.
const MAX_DUE: usize = 100;

impl State {
    /// The outbox entry for `jobs`, recorded `now`; none for no jobs.
    pub(super) fn record_outbox(&mut self, jobs: &[Job], now: Timestamp) {
        if jobs.is_empty() {
            return;
        }
        self.outbox.push(OutboxRecord {
            // A UUIDv7: entries recorded in the same millisecond keep their order.
            id: uuid::Uuid::now_v7().simple().to_string(),
            recorded_ms: sortable_ms(now),
            jobs: jobs.to_vec(),
        });
    }
}

impl Outbox for MemoryStore {
    async fn due_outbox(&self, recorded_before: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.run(StoreOp::DueOutbox, |state| {
            let before_ms = sortable_ms(recorded_before);
            let mut due: Vec<&OutboxRecord> = state.outbox.iter().filter(|e| e.recorded_ms < before_ms).collect();
            due.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
            // same rule as dynamodb/outbox.rs: `limit.clamp(1, BATCH_GET)`, so 0 still reads one.
            Ok(due.into_iter().take(limit.clamp(1, MAX_DUE)).map(OutboxRecord::entry).collect())
        })
    }

    async fn clear_outbox(&self, ids: &[String]) -> Result<(), StoreError> {
        self.run(StoreOp::ClearOutbox, |state| {
            // Unknown ids are no error: another sweep may have cleared them.
            state.outbox.retain(|entry| !ids.contains(&entry.id));
            Ok(())
        })
    }
}
