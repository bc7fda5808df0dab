//! Status reports on legs: delivery statuses that only move forward (`domain::status`), the
//! provider id a lost answer carried, and the legs a 131047 re-send adds.

use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};
use jiff::Timestamp;

use super::attrs::*;
use super::legs::*;
use super::{DynamoStore, build_error, unavailable};
use crate::domain::{DeliveryStatus, Job, LegLocation, LegState, Wamid};
use crate::ports::{ForwardedCopy, LegAddress, LegRef, StatusChange, StatusLog, StoreError};

impl StatusLog for DynamoStore {
    async fn advance_leg_status(
        &self,
        leg: &LegAddress,
        status: DeliveryStatus,
        error_code: Option<i64>,
        provider_id: Option<&str>,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<StatusChange, StoreError> {
        let mut update =
            "SET #legs.#j.#status = :status, #legs.#j.status_rank = :rank, #legs.#j.status_at = :now".to_owned();
        let mut values =
            vec![(":status", s(status.as_str())), (":rank", n(status.rank())), (":now", s(now.to_string()))];
        if let Some(code) = error_code {
            update.push_str(", #legs.#j.status_code = :code");
            values.push((":code", n(code)));
        }
        if let Some(id) = provider_id {
            update.push_str(", #legs.#j.provider_id = if_not_exists(#legs.#j.provider_id, :provider_id)");
            values.push((":provider_id", s(id)));
        }
        let write = LegWrite {
            key: key(conv_pk(&leg.conversation), msg_sk(&leg.message_id)),
            job_id: leg.job_id.as_str(),
            update,
            // `DeliveryStatus::advances` (domain/status.rs) as a condition, so that two reports
            // racing can't both win; the store contract runs the same cases on the twin, which
            // calls `advances` itself.
            condition: "attribute_exists(#legs.#j) AND \
                        (attribute_not_exists(#legs.#j.status_rank) OR #legs.#j.status_rank < :rank)",
            values,
        };
        let mut extra: Vec<TransactWriteItem> =
            notices.iter().map(|notice| self.standalone_job_put(notice, now)).collect::<Result<_, _>>()?;
        extra.extend(self.outbox_put(notices, now)?);
        let found = match self.write_leg_with(&write, extra).await? {
            Ok(()) => return Ok(StatusChange::Advanced),
            Err(found) => found,
        };
        let item = match found {
            Some(item) => Some(item),
            None => {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(write.key.clone()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item
            }
        };
        let found = item.as_ref().and_then(|i| opt_m(i, "legs")).and_then(|legs| opt_m(legs, leg.job_id.as_str()));
        Ok(match found {
            Some(leg) => StatusChange::Unchanged { current: opt_s(leg, "status").and_then(DeliveryStatus::parse) },
            None => StatusChange::Missing,
        })
    }

    async fn note_sent_as(&self, leg: &LegRef, provider_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let (key_item, job_id) = match leg {
            LegRef::Message(address) => {
                (key(conv_pk(&address.conversation), msg_sk(&address.message_id)), address.job_id.as_str())
            }
            LegRef::Standalone(job_id) => (key(format!("JOB#{}", job_id.as_str()), "JOB"), job_id.as_str()),
        };
        let write = LegWrite {
            key: key_item,
            job_id,
            update: "SET #legs.#j.provider_id = if_not_exists(#legs.#j.provider_id, :provider_id), \
                     #legs.#j.updated_at = :now"
                .into(),
            // A finished leg keeps what it has.
            condition: "attribute_exists(#legs.#j) AND NOT (#legs.#j.#state IN (:sent, :failed))",
            values: vec![
                (":provider_id", s(provider_id)),
                (":now", s(now.to_string())),
                (":sent", s(LegState::Sent.as_str())),
                (":failed", s(LegState::Failed.as_str())),
            ],
        };
        Ok(self.write_leg(&write).await?.is_ok())
    }

    async fn record_copy_route(&self, copy: &ForwardedCopy, wamid: &Wamid, now: Timestamp) -> Result<(), StoreError> {
        self.put_item(self.copy_route_item(copy, wamid, now)).await
    }

    /// A new queued leg for `job` on its message, once: a second call finds it and changes
    /// nothing; a message erased meanwhile gets none.
    async fn add_leg(&self, job: &Job) -> Result<(), StoreError> {
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j = :leg".into(),
            condition: "attribute_exists(#legs) AND attribute_not_exists(#legs.#j)",
            values: vec![(":leg", new_leg(job))],
        };
        self.write_leg(&write).await.map(|_| ())
    }

    async fn unsent_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>, StoreError> {
        let standalone: Vec<&Job> =
            jobs.iter().filter(|j| matches!(j.leg_location(), LegLocation::Standalone)).collect();
        if standalone.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        for job in &standalone {
            keys = keys.keys(leg_key(job));
        }
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys.build().map_err(build_error)?)
            .send()
            .await
            .map_err(unavailable)?;
        let found = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
        Ok(standalone
            .into_iter()
            .filter(|job| {
                found.iter().any(|item| {
                    let leg = opt_m(item, "legs").and_then(|legs| opt_m(legs, job.job_id.as_str()));
                    let state = leg.and_then(|l| opt_s(l, "state")).and_then(LegState::parse);
                    state.is_some_and(|state| !state.is_done())
                })
            })
            .cloned()
            .collect())
    }
}
