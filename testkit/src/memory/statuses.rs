//! Status reports on legs: delivery statuses that only move forward (`domain::status`), the
//! provider id a lost answer carried, and the legs a 131047 re-send adds
//! (`dynamodb/statuses.rs`).

use std::collections::HashSet;

use jiff::Timestamp;
use shared::domain::{DeliveryStatus, Job, LegLocation, Wamid};
use shared::ports::{ForwardedCopy, LegAddress, LegRef, StatusChange, StatusLog, StoreError};

use super::records::Leg;
use super::{MemoryStore, StoreOp};

/// BatchGetItem's limit on keys per call.
const BATCH_GET: usize = 100;

impl StatusLog for MemoryStore {
    async fn advance_leg_status(
        &self,
        leg: &LegAddress,
        status: DeliveryStatus,
        _error_code: Option<i64>,
        provider_id: Option<&str>,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<StatusChange, StoreError> {
        self.run(StoreOp::AdvanceLegStatus, |state| {
            // The leg's status so far: `None` when there is no such leg.
            let current = state
                .message(&leg.conversation, &leg.message_id)
                .and_then(|message| message.legs.get(&leg.job_id))
                .map(|leg| leg.status);
            let advances = current.is_some_and(|current| status.advances(current));
            if !state.check_leg_write(advances, notices)? {
                return Ok(match current {
                    Some(current) => StatusChange::Unchanged { current },
                    None => StatusChange::Missing,
                });
            }
            let found = state.message_mut(&leg.conversation, &leg.message_id).and_then(|m| m.legs.get_mut(&leg.job_id));
            if let Some(found) = found {
                found.status = Some(status);
                if let Some(id) = provider_id {
                    found.provider_id.get_or_insert_with(|| id.to_owned());
                }
            }
            state.record_notices(notices, now);
            Ok(StatusChange::Advanced)
        })
    }

    async fn note_sent_as(&self, leg: &LegRef, provider_id: &str, _now: Timestamp) -> Result<bool, StoreError> {
        self.run(StoreOp::NoteSentAs, |state| {
            let found = match leg {
                LegRef::Message(address) => state
                    .message_mut(&address.conversation, &address.message_id)
                    .and_then(|message| message.legs.get_mut(&address.job_id)),
                LegRef::Standalone(job_id) => state.standalone_legs.get_mut(job_id),
            };
            // A finished leg keeps what it has.
            match found.filter(|leg| !leg.state.is_done()) {
                Some(leg) => {
                    leg.provider_id.get_or_insert_with(|| provider_id.to_owned());
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    async fn record_copy_route(&self, copy: &ForwardedCopy, wamid: &Wamid, _now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::RecordCopyRoute, |state| {
            state.copies.insert(wamid.clone(), copy.clone());
            Ok(())
        })
    }

    async fn add_leg(&self, job: &Job) -> Result<(), StoreError> {
        self.run(StoreOp::AddLeg, |state| {
            match job.leg_location() {
                // A new queued leg on its message, once; a message erased meanwhile gets none.
                LegLocation::Message { conversation, message_id } => {
                    if let Some(message) = state.message_mut(conversation, message_id) {
                        message.legs.entry(job.job_id.clone()).or_insert_with(|| Leg::new(job));
                    }
                }
                // same rule as dynamodb/statuses.rs (`attribute_exists(legs) AND
                // attribute_not_exists(legs.<job>)`): a standalone job's item always holds its
                // own leg, or doesn't exist, so nothing is ever added.
                LegLocation::Standalone => {}
            }
            Ok(())
        })
    }

    async fn unsent_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>, StoreError> {
        self.run(StoreOp::UnsentJobs, |state| {
            let standalone: Vec<&Job> =
                jobs.iter().filter(|job| matches!(job.leg_location(), LegLocation::Standalone)).collect();
            // The adapter reads them in one BatchGetItem, which refuses these.
            if standalone.len() > BATCH_GET {
                return Err(StoreError::Rejected(
                    "ValidationException: Too many items requested for the BatchGetItem call".into(),
                ));
            }
            let mut ids = HashSet::new();
            if !standalone.iter().all(|job| ids.insert(&job.job_id)) {
                return Err(StoreError::Rejected(
                    "ValidationException: Provided list of item keys contains duplicates".into(),
                ));
            }
            // A job without an item (an automated reply never claimed) is not waiting.
            Ok(standalone
                .into_iter()
                .filter(|job| state.standalone_legs.get(&job.job_id).is_some_and(|leg| !leg.state.is_done()))
                .cloned()
                .collect())
        })
    }
}
