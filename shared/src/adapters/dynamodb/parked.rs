//! Copies parked for an agent's next digest (`Deliveries::park_copy`, docs/using.md "A busy
//! line: digests"): one item per copy, `DIGEST#<line>#<agent>` / `JOB#<job id>`, holding the
//! job as the queue carries it. The job's own queue message stays the source of truth: a
//! parked copy that no digest took is sent by its own next delivery, and one a digest sent
//! finds its leg done. The items expire with the messages they copy. Beside them, one
//! `CARRIER` item names the copy elected to carry the next digest (no number in it).

use aws_sdk_dynamodb::error::SdkError;
use jiff::Timestamp;

use super::DynamoStore;
use super::attrs::*;
use super::unavailable;
use crate::domain::{Job, JobId, LineId, WaId};
use crate::ports::StoreError;

/// A digest's carrier only matters until its slot.
const CARRIER_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// At most this many parked copies are read for one digest: more than one message holds.
const PARKED_READ_MAX: i32 = 50;

fn parked_pk(line: &LineId, agent: &WaId) -> String {
    format!("DIGEST#{line}#{}", agent.as_str())
}

fn parked_sk(job: &JobId) -> String {
    format!("JOB#{}", job.as_str())
}

impl DynamoStore {
    pub(super) async fn park(&self, line: &LineId, agent: &WaId, job: &Job, now: Timestamp) -> Result<(), StoreError> {
        let item = [
            pk(parked_pk(line, agent)),
            sk(parked_sk(&job.job_id)),
            ("job".into(), s(job.encode())),
            ("parked_at_ms".into(), n(now.as_millisecond())),
            ("expires_at".into(), expires(now, self.message_retention)),
        ];
        self.put_item(item.into_iter().collect()).await
    }

    /// Oldest first: a parked copy's sort key is its job id, so the order comes from when
    /// it was parked.
    pub(super) async fn parked(&self, line: &LineId, agent: &WaId) -> Result<Vec<Job>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :job)")
            .expression_attribute_values(":pk", s(parked_pk(line, agent)))
            .expression_attribute_values(":job", s("JOB#"))
            .consistent_read(true)
            .limit(PARKED_READ_MAX)
            .send()
            .await
            .map_err(unavailable)?;
        let mut parked: Vec<(i64, Job)> = Vec::new();
        for item in out.items.unwrap_or_default() {
            // An unreadable entry is skipped: its job is still in the queue, and sends itself.
            match Job::decode(get_s(&item, "job")?) {
                Ok(job) => parked.push((opt_n(&item, "parked_at_ms").unwrap_or(0), job)),
                Err(e) => tracing::warn!(error = %e, "a parked copy could not be read; its own delivery sends it"),
            }
        }
        parked.sort_by_key(|(at, _)| *at);
        Ok(parked.into_iter().map(|(_, job)| job).collect())
    }

    /// One `CARRIER` item per agent: the slot its digest goes at, and the copy carrying it.
    pub(super) async fn elect_carrier(
        &self,
        line: &LineId,
        agent: &WaId,
        slot_at_us: i64,
        job: &JobId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let elected = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(parked_pk(line, agent), "CARRIER")))
            .update_expression("SET slot_us = :slot, job_id = :job, expires_at = :expires")
            .condition_expression(
                "attribute_not_exists(slot_us) OR slot_us < :slot OR (slot_us = :slot AND job_id = :job)",
            )
            .expression_attribute_values(":slot", n(slot_at_us))
            .expression_attribute_values(":job", s(job.as_str()))
            .expression_attribute_values(":expires", expires(now, CARRIER_TTL))
            .send()
            .await;
        match elected {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) async fn unpark(&self, line: &LineId, agent: &WaId, jobs: &[JobId]) -> Result<(), StoreError> {
        for job in jobs {
            self.delete_item(key(parked_pk(line, agent), parked_sk(job))).await?;
        }
        Ok(())
    }
}
