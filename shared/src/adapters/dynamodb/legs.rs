//! Legs: each job's progress, claimed and recorded with conditional writes so a job is sent
//! at most once however often SQS delivers it (docs/guarantees.md), and delivery statuses that only
//! move forward (docs/using.md).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use jiff::Timestamp;

use super::attrs::*;
use super::conversations::thread_leg;
use super::{
    DynamoStore, TransactFailure, WAMID_TTL, build_error, cancelled, failed_condition, reason_item, service_error,
    unavailable,
};
use crate::domain::delivery::LegDoubt;
use crate::domain::pacing::{SendPace, SlotOffer, SlotReservation};
use crate::domain::{
    ConversationKey, DeliveryStatus, Job, JobId, JobPayload, LegLocation, LegState, LineId, WaId, Wamid,
};
use crate::ports::{Claim, Deliveries, ForwardedCopy, ForwardedVia, LegFailure, StoreError, ThreadLeg};

/// Standalone jobs (notices) are kept a week: long enough for any redelivery or redrive.
const STANDALONE_JOB_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// One conditional update of one leg, usable alone or inside a transaction.
pub(super) struct LegWrite<'a> {
    pub(super) key: Item,
    pub(super) job_id: &'a str,
    pub(super) update: String,
    pub(super) condition: &'a str,
    pub(super) values: Vec<(&'static str, AttributeValue)>,
}

impl LegWrite<'_> {
    /// Only the placeholders the expressions use: DynamoDB refuses unused ones.
    fn names(&self) -> Vec<(&'static str, String)> {
        let text = format!("{} {}", self.update, self.condition);
        [
            ("#legs", "legs".to_owned()),
            ("#j", self.job_id.to_owned()),
            ("#state", "state".into()),
            ("#error", "error".into()),
            ("#status", "status".into()),
        ]
        .into_iter()
        .filter(|(placeholder, _)| text.contains(placeholder))
        .collect()
    }

    fn transact_item(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(self.key.clone()))
            .update_expression(&self.update)
            .condition_expression(self.condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in self.names() {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in &self.values {
            update = update.expression_attribute_values(*placeholder, value.clone());
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(build_error)?).build())
    }
}

/// `Err`: the write's condition failed; the item it found, if any, is inside.
type ConditionFailed = Option<Item>;
/// `Ok`: the write happened; the updated attributes' previous values.
type UpdatedOld = Item;

impl Deliveries for DynamoStore {
    async fn reserve_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
    ) -> Result<SlotReservation, StoreError> {
        self.reserve_slot(sender, pace, now).await
    }

    async fn offer_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
        within: Duration,
    ) -> Result<SlotOffer, StoreError> {
        self.offer_slot(sender, pace, now, within).await
    }

    async fn give_back_send_slot(&self, sender: &str, slot: SlotReservation, pace: SendPace) -> Result<(), StoreError> {
        self.give_back_slot(sender, slot, pace).await
    }

    async fn claim_job(
        &self,
        job: &Job,
        now: Timestamp,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Claim, StoreError> {
        if let JobPayload::AutoReply(reply) = &job.payload
            && !self.create_auto_reply_leg(job, &reply.conversation, now).await?
        {
            return Ok(Claim::Missing);
        }
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j.#state = :sending, #legs.#j.lease_until_ms = :lease, \
                     #legs.#j.attempts = #legs.#j.attempts + :one, #legs.#j.updated_at = :now, \
                     #legs.#j.claimed_at_ms = :now_ms, #legs.#j.lease_owner = :owner"
                .into(),
            // `uncertain_since_ms` stays through the claim: an earlier attempt that may have
            // gone out is still in doubt if this claim's answer is lost (`claimed_from`).
            // Free to take: never tried, given back, uncertain (the claimer finds out before
            // sending), held by a lease that ran out, or by this process's own.
            condition: "attribute_exists(#legs.#j) AND (#legs.#j.#state IN (:queued, :retry, :uncertain) \
                        OR (#legs.#j.#state = :sending AND (#legs.#j.lease_until_ms < :now_ms \
                        OR #legs.#j.lease_owner = :owner)))",
            values: vec![
                (":owner", s(owner)),
                (":sending", s(LegState::Sending.as_str())),
                (":queued", s(LegState::Queued.as_str())),
                (":retry", s(LegState::Retry.as_str())),
                (":uncertain", s(LegState::Uncertain.as_str())),
                (":lease", n(lease_until.as_millisecond())),
                (":now_ms", n(now.as_millisecond())),
                (":now", s(now.to_string())),
                (":one", n(1)),
            ],
        };
        let found = match self.write_leg_returning(&write, ReturnValue::AllOld).await? {
            Ok(old) => {
                let leg = opt_m(&old, "legs").and_then(|legs| opt_m(legs, job.job_id.as_str()));
                return Ok(claimed_from(leg, owner, now));
            }
            Err(found) => found,
        };
        let Some(leg) = self.leg_of(job, found).await? else {
            return Ok(Claim::Missing);
        };
        match opt_s(&leg, "state").and_then(LegState::parse) {
            Some(LegState::Sending) => {
                let until = timestamp_ms(&leg, "lease_until_ms")?.unwrap_or(now);
                Ok(Claim::Busy { until })
            }
            Some(state) => Ok(Claim::AlreadyDone { state }),
            None => Err(StoreError::Corrupt(format!("leg {} has no state", job.job_id))),
        }
    }

    async fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(copy) = ForwardedCopy::of_job(job) else {
            return Err(StoreError::Corrupt(format!("{} is not a forward", job.job_id)));
        };
        let write = sent_write(job, wamid.as_str(), now, ", #legs.#j.via = :via", vec![(":via", s(via.as_str()))]);
        if via == ForwardedVia::Digest {
            // A digest's routing record lists every part; one part's must not replace it.
            return self.write_leg(&write).await.map(|_| ());
        }
        let copy = self.copy_route_item(&copy, wamid, now);
        // The reply-routing record first, then the leg: the leg's `sent` is what finishes the
        // job, so a stop between the two only leaves a harmless extra record. Two plain
        // writes cost half a transaction's capacity. A failed leg condition means the
        // message was erased while we sent: the record goes again (it names the customer).
        // Never over a digest's record: it stays whole when one of its parts is recorded
        // after it (a reconciled send).
        let route = key(format!("WAMID#{}", wamid.as_str()), "WAMID");
        self.put_item_unless_digest(copy).await?;
        self.record_or_undo(&write, route).await
    }

    async fn record_digest_sent(&self, jobs: &[&Job], wamid: &Wamid, now: Timestamp) -> Result<(), StoreError> {
        let Some(route) = ForwardedCopy::digest_of(jobs)? else { return Ok(()) };
        // As for one copy: the routing record (listing every part) first, then the legs.
        self.put_item(self.copy_route_item(&route, wamid, now)).await?;
        let mut erased = false;
        for job in jobs {
            let via = s(ForwardedVia::Digest.as_str());
            let write = sent_write(job, wamid.as_str(), now, ", #legs.#j.via = :via", vec![(":via", via)]);
            erased |= self.write_leg(&write).await?.is_err();
        }
        if erased {
            // A part's message was erased while we sent: the record names that customer.
            self.delete_item(key(format!("WAMID#{}", wamid.as_str()), "WAMID")).await?;
        }
        Ok(())
    }

    async fn park_copy(&self, line: &LineId, agent: &WaId, job: &Job, now: Timestamp) -> Result<(), StoreError> {
        self.park(line, agent, job, now).await
    }

    async fn elect_digest_carrier(
        &self,
        line: &LineId,
        agent: &WaId,
        slot_at_us: i64,
        job: &JobId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.elect_carrier(line, agent, slot_at_us, job, now).await
    }

    async fn parked_copies(&self, line: &LineId, agent: &WaId) -> Result<Vec<Job>, StoreError> {
        self.parked(line, agent).await
    }

    async fn unpark_copies(&self, line: &LineId, agent: &WaId, jobs: &[JobId]) -> Result<(), StoreError> {
        self.unpark(line, agent, jobs).await
    }

    async fn record_sms_sent(
        &self,
        job: &Job,
        sid: &str,
        status: Option<DeliveryStatus>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let JobPayload::SendSms(sms) = &job.payload else {
            return Err(StoreError::Corrupt(format!("{} is not an SMS", job.job_id)));
        };
        // A status callback may have overtaken this write: keep what it recorded.
        let (extra, values) = match status {
            Some(status) => (
                ", #legs.#j.#status = if_not_exists(#legs.#j.#status, :status), \
                 #legs.#j.status_rank = if_not_exists(#legs.#j.status_rank, :rank)",
                vec![(":status", s(status.as_str())), (":rank", n(status.rank()))],
            ),
            None => ("", vec![]),
        };
        let write = sent_write(job, sid, now, extra, values);
        let record = HashMap::from([
            pk(format!("SMS#{sid}")),
            sk("SMS"),
            ("conversation".into(), s(conv_pk(&sms.conversation))),
            ("message_id".into(), s(sms.message_id.as_str())),
            ("job_id".into(), s(job.job_id.as_str())),
            ("agent".into(), s(sms.agent.as_str())),
            ("agent_wamid".into(), s(sms.agent_wamid.as_str())),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, self.message_retention)),
        ]);
        // As for forwarded copies: the lookup record, then the leg that finishes the job.
        self.put_item(record).await?;
        self.record_or_undo(&write, key(format!("SMS#{sid}"), "SMS")).await
    }

    async fn record_job_sent(&self, job: &Job, provider_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.write_leg(&sent_write(job, provider_id, now, "", vec![])).await.map(|_| ())
    }

    async fn record_job_failed(
        &self,
        job: &Job,
        failure: &LegFailure,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j.#state = :failed, #legs.#j.#error = :error, #legs.#j.updated_at = :now \
                     REMOVE #legs.#j.lease_until_ms, #legs.#j.uncertain_since_ms"
                .into(),
            condition: "attribute_exists(#legs.#j)",
            values: vec![
                (":failed", s(LegState::Failed.as_str())),
                (":error", failure_value(failure, now)),
                (":now", s(now.to_string())),
            ],
        };
        let mut extra: Vec<TransactWriteItem> =
            notices.iter().map(|notice| self.standalone_job_put(notice, now)).collect::<Result<_, _>>()?;
        extra.extend(self.outbox_put(notices, now)?);
        self.write_leg_with(&write, extra).await.map(|_| ())
    }

    async fn release_job(&self, job: &Job, failure: &LegFailure, now: Timestamp) -> Result<(), StoreError> {
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j.#state = :retry, #legs.#j.#error = :error, #legs.#j.updated_at = :now \
                     REMOVE #legs.#j.lease_until_ms, #legs.#j.uncertain_since_ms"
                .into(),
            condition: "#legs.#j.#state = :sending",
            values: vec![
                (":retry", s(LegState::Retry.as_str())),
                (":sending", s(LegState::Sending.as_str())),
                (":error", failure_value(failure, now)),
                (":now", s(now.to_string())),
            ],
        };
        self.write_leg(&write).await.map(|_| ())
    }

    async fn hand_back_untried(&self, job: &Job, now: Timestamp) -> Result<(), StoreError> {
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j.#state = :retry, #legs.#j.updated_at = :now, \
                     #legs.#j.attempts = #legs.#j.attempts - :one \
                     REMOVE #legs.#j.lease_until_ms, #legs.#j.uncertain_since_ms"
                .into(),
            condition: "#legs.#j.#state = :sending AND #legs.#j.attempts > :zero",
            values: vec![
                (":retry", s(LegState::Retry.as_str())),
                (":sending", s(LegState::Sending.as_str())),
                (":now", s(now.to_string())),
                (":one", n(1)),
                (":zero", n(0)),
            ],
        };
        self.write_leg(&write).await.map(|_| ())
    }

    async fn mark_job_uncertain(
        &self,
        job: &Job,
        failure: &LegFailure,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let write = LegWrite {
            key: leg_key(job),
            job_id: job.job_id.as_str(),
            update: "SET #legs.#j.#state = :uncertain, #legs.#j.#error = :error, #legs.#j.updated_at = :now, \
                     #legs.#j.uncertain_since_ms = :since REMOVE #legs.#j.lease_until_ms"
                .into(),
            condition: "#legs.#j.#state = :sending",
            values: vec![
                (":uncertain", s(LegState::Uncertain.as_str())),
                (":sending", s(LegState::Sending.as_str())),
                (":error", failure_value(failure, now)),
                (":since", n(since.as_millisecond())),
                (":now", s(now.to_string())),
            ],
        };
        self.write_leg(&write).await.map(|_| ())
    }

    async fn job_leg(&self, job: &Job) -> Result<Option<ThreadLeg>, StoreError> {
        self.leg_of(job, None).await?.as_ref().map(|leg| thread_leg(job.job_id.as_str(), leg)).transpose()
    }
}

impl DynamoStore {
    pub(super) async fn write_leg(
        &self,
        write: &LegWrite<'_>,
    ) -> Result<Result<UpdatedOld, ConditionFailed>, StoreError> {
        self.write_leg_returning(write, ReturnValue::UpdatedOld).await
    }

    /// The leg write, answering with the item's attributes as `returns` asks.
    pub(super) async fn write_leg_returning(
        &self,
        write: &LegWrite<'_>,
        returns: ReturnValue,
    ) -> Result<Result<UpdatedOld, ConditionFailed>, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(write.key.clone()))
            .update_expression(&write.update)
            .condition_expression(write.condition)
            .return_values(returns)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in write.names() {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in &write.values {
            request = request.expression_attribute_values(*placeholder, value.clone());
        }
        match request.send().await {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => Ok(Err(c.item)),
                other => Err(service_error(&other)),
            },
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The leg write, plus `extra` writes in the same transaction when there are any.
    pub(super) async fn write_leg_with(
        &self,
        write: &LegWrite<'_>,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Result<(), ConditionFailed>, StoreError> {
        if extra.is_empty() {
            return self.write_leg(write).await.map(|r| r.map(|_| ()));
        }
        let mut items = vec![write.transact_item(&self.table)?];
        items.extend(extra);
        match self.transact(items).await {
            Ok(()) => Ok(Ok(())),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                Ok(Err(reason_item(reasons, 0)))
            }
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    /// The leg's `sent`, after its lookup record `written`: when the leg is gone (its message
    /// erased while the job was sending) the record is deleted again, so an erasure stays whole.
    async fn record_or_undo(&self, write: &LegWrite<'_>, written: Item) -> Result<(), StoreError> {
        if self.write_leg(write).await?.is_ok() {
            return Ok(());
        }
        self.delete_item(written).await
    }

    pub(super) async fn delete_item(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// `put_item` of a copy's routing record, unless a digest's is there (then nothing changes).
    async fn put_item_unless_digest(&self, item: Item) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(digest)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// A notice's own item, holding its leg.
    pub(super) fn standalone_job_put(&self, job: &Job, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
        self.put(standalone_job_item(job, now), Some("attribute_not_exists(PK)"))
    }

    /// An automated reply's leg is created when first delivered, not with the message that
    /// caused it: its id names the reply's "at most once" key, so a second message wanting
    /// the same reply finds this leg done (docs/using.md) without making the webhook read first.
    /// Only while the conversation exists: a reply still queued when the customer's data was
    /// erased writes nothing (the leg holds their number) and sends nothing. `false`: gone.
    pub(super) async fn create_auto_reply_leg(
        &self,
        job: &Job,
        conversation: &ConversationKey,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(conversation), "META")))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(exists).build(),
            self.put(standalone_job_item(job, now), Some("attribute_not_exists(PK)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => Ok(false),
            // Created by an earlier delivery: the claim decides.
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => Ok(true),
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    /// The job's leg as `found` in a failed write, or as read now.
    pub(super) async fn leg_of(&self, job: &Job, found: Option<Item>) -> Result<Option<Item>, StoreError> {
        let item = match found {
            Some(item) => Some(item),
            None => {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(leg_key(job)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item
            }
        };
        Ok(item.as_ref().and_then(|i| opt_m(i, "legs")).and_then(|legs| opt_m(legs, job.job_id.as_str())).cloned())
    }

    /// The `WAMID#` record that routes an agent's swipe-reply to the copy's conversation.
    pub(super) fn copy_route_item(&self, copy: &ForwardedCopy, wamid: &Wamid, now: Timestamp) -> Item {
        let mut item = HashMap::from([
            pk(format!("WAMID#{}", wamid.as_str())),
            sk("WAMID"),
            ("conversation".into(), s(conv_pk(&copy.conversation))),
            ("message_id".into(), s(copy.message_id.as_str())),
            ("job_id".into(), s(copy.job_id.as_str())),
            ("agent".into(), s(copy.agent.as_str())),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, WAMID_TTL.min(self.message_retention))),
        ]);
        if !copy.digest.is_empty() {
            let parts = copy
                .digest
                .iter()
                .map(|part| {
                    AttributeValue::M(HashMap::from([
                        ("conversation".into(), s(conv_pk(&part.conversation))),
                        ("message_id".into(), s(part.message_id.as_str())),
                        ("job_id".into(), s(part.job_id.as_str())),
                    ]))
                })
                .collect();
            item.insert("digest".into(), AttributeValue::L(parts));
        }
        item
    }
}

/// What a successful claim took over, from the leg as it was before.
pub(super) fn claimed_from(before: Option<&Item>, owner: &str, now: Timestamp) -> Claim {
    let attempts = before.and_then(|leg| opt_n(leg, "attempts")).and_then(|a| u32::try_from(a).ok()).unwrap_or(0);
    let state = before.and_then(|leg| opt_s(leg, "state")).and_then(LegState::parse);
    let at = |name: &str| before.and_then(|leg| opt_n(leg, name)).and_then(|ms| Timestamp::from_millisecond(ms).ok());
    let provider_id = before.and_then(|leg| opt_s(leg, "provider_id")).map(str::to_owned);
    // This very claim, sent again by the SDK after its answer was lost: nothing happened
    // in between, so nothing can have been sent. The store keeps milliseconds; `now` may
    // be finer.
    let same_claim = state == Some(LegState::Sending)
        && before.and_then(|leg| opt_s(leg, "lease_owner")) == Some(owner)
        && before.and_then(|leg| opt_n(leg, "claimed_at_ms")) == Some(now.as_millisecond());
    let doubt =
        LegDoubt { state, same_claim, uncertain_since: at("uncertain_since_ms"), claimed_at: at("claimed_at_ms") };
    Claim::took_over(attempts, provider_id, doubt.assess())
}

pub(super) fn leg_key(job: &Job) -> Item {
    match job.leg_location() {
        LegLocation::Message { conversation, message_id } => key(conv_pk(conversation), msg_sk(message_id)),
        LegLocation::Standalone => key(format!("JOB#{}", job.job_id.as_str()), "JOB"),
    }
}

/// The leg is done: `sent`, with the provider's id for the copy.
pub(super) fn sent_write<'a>(
    job: &'a Job,
    provider_id: &str,
    now: Timestamp,
    extra_set: &str,
    extra_values: Vec<(&'static str, AttributeValue)>,
) -> LegWrite<'a> {
    let mut values =
        vec![(":sent", s(LegState::Sent.as_str())), (":provider_id", s(provider_id)), (":now", s(now.to_string()))];
    values.extend(extra_values);
    LegWrite {
        key: leg_key(job),
        job_id: job.job_id.as_str(),
        update: format!(
            "SET #legs.#j.#state = :sent, #legs.#j.provider_id = :provider_id, #legs.#j.updated_at = :now{extra_set} \
             REMOVE #legs.#j.lease_until_ms, #legs.#j.#error, #legs.#j.uncertain_since_ms"
        ),
        condition: "attribute_exists(#legs.#j)",
        values,
    }
}

/// A standalone job's own item (notices, automated replies), holding its one leg.
pub(super) fn standalone_job_item(job: &Job, now: Timestamp) -> Item {
    HashMap::from([
        pk(format!("JOB#{}", job.job_id.as_str())),
        sk("JOB"),
        ("kind".into(), s(job.kind().as_str())),
        ("legs".into(), AttributeValue::M(HashMap::from([(job.job_id.as_str().to_owned(), new_leg(job))]))),
        ("created_at".into(), s(now.to_string())),
        ("expires_at".into(), expires(now, STANDALONE_JOB_TTL)),
    ])
}
