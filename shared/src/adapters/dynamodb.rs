//! The conversation store over DynamoDB: one table, `PK`/`SK` string keys, TTL on
//! `expires_at` (SPEC §3). Writes that must agree are single conditional writes or one
//! `TransactWriteItems`; nothing reads and then writes.
//!
//! | item           | PK                           | SK         |
//! |----------------|------------------------------|------------|
//! | conversation   | `CONV#<line>#<customer>`     | `META`     |
//! | message + legs | `CONV#<line>#<customer>`     | `MSG#<id>` |
//! | handle         | `HANDLE#<line>#<handle>`     | `HANDLE`   |
//! | forwarded copy | `WAMID#<wamid>`              | `WAMID`    |
//! | dedupe marker  | `SEEN#<provider>#<id>`       | `SEEN`     |
//! | agent          | `AGENT#<line>#<wa_id>`       | `AGENT`    |
//!
//! A message's delivery legs live in its item under `legs.<job_id>`, so the thread and the
//! state of every copy come back in one query, and a job's claim is one conditional update.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use jiff::Timestamp;

use crate::domain::{ConversationKey, Handle, Job, JobPayload, LineId, MessageId, WaId, Wamid};
use crate::ports::{
    AppendOutcome, Claim, ConversationStore, ForwardContext, ForwardedVia, LegFailure, NewInboundMessage,
    PriorDelivery, StartOutcome, StoreError,
};

type Item = HashMap<String, AttributeValue>;

const DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const WAMID_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_MESSAGE_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

pub struct DynamoStore {
    client: Client,
    table: String,
    message_retention: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, message_retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            message_retention,
        }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(TransactFailure::from(e)),
        }
    }

    fn seen_item(&self, message: &NewInboundMessage, now: Timestamp) -> Item {
        let jobs = message.jobs.iter().map(|j| s(j.encode())).collect();
        HashMap::from([
            pk(seen_pk(message.provider, &message.provider_message_id)),
            sk("SEEN"),
            ("conversation".into(), s(conv_pk(&message.conversation))),
            ("message_id".into(), s(message.message_id.as_str())),
            ("jobs".into(), AttributeValue::L(jobs)),
            ("created_at".into(), s(now.to_string())),
            // The marker holds the jobs, texts included: it never outlives the messages.
            (
                "expires_at".into(),
                expires(now, DEDUPE_TTL.min(self.message_retention)),
            ),
        ])
    }

    fn message_item(&self, message: &NewInboundMessage) -> Item {
        let legs = message
            .jobs
            .iter()
            .map(|job| {
                let JobPayload::ForwardToAgent(forward) = &job.payload;
                let leg = HashMap::from([
                    ("kind".to_owned(), s(job.kind())),
                    ("to".to_owned(), s(forward.agent.as_str())),
                    ("state".to_owned(), s("queued")),
                    ("attempts".to_owned(), n(0)),
                ]);
                (job.job_id.as_str().to_owned(), AttributeValue::M(leg))
            })
            .collect();
        let mut item = HashMap::from([
            pk(conv_pk(&message.conversation)),
            sk(msg_sk(&message.message_id)),
            ("message_id".into(), s(message.message_id.as_str())),
            ("direction".into(), s("inbound")),
            ("provider".into(), s(message.provider)),
            ("provider_message_id".into(), s(&message.provider_message_id)),
            ("body".into(), s(&message.body)),
            ("received_at".into(), s(message.received_at.to_string())),
            ("legs".into(), AttributeValue::M(legs)),
            (
                "expires_at".into(),
                expires(message.received_at, self.message_retention),
            ),
        ]);
        if !message.attachments.is_empty() {
            let attachments = message
                .attachments
                .iter()
                .map(|a| {
                    AttributeValue::M(HashMap::from([
                        ("url".into(), s(&a.url)),
                        ("content_type".into(), s(&a.content_type)),
                    ]))
                })
                .collect();
            item.insert("attachments".into(), AttributeValue::L(attachments));
        }
        item
    }

    fn prior_delivery(&self, seen: Option<&Item>) -> Result<PriorDelivery, StoreError> {
        let seen = seen.ok_or_else(|| StoreError::Corrupt("dedupe marker without its content".into()))?;
        let message_id = MessageId::parse(get_s(seen, "message_id")?).map_err(StoreError::Corrupt)?;
        let jobs = match seen.get("jobs") {
            Some(AttributeValue::L(jobs)) => jobs
                .iter()
                .map(|j| match j {
                    AttributeValue::S(json) => Job::decode(json).map_err(|e| StoreError::Corrupt(e.to_string())),
                    _ => Err(StoreError::Corrupt("job is not a string".into())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        Ok(PriorDelivery { message_id, jobs })
    }

    /// The dedupe marker, read when the store's cancellation reason didn't carry it.
    async fn seen(&self, message: &NewInboundMessage, reason_item: Option<Item>) -> Result<PriorDelivery, StoreError> {
        if let Some(item) = reason_item {
            return self.prior_delivery(Some(&item));
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(seen_pk(message.provider, &message.provider_message_id)))
            .key("SK", s("SEEN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        self.prior_delivery(out.item())
    }

    fn leg_key(&self, job: &Job) -> (String, String) {
        let JobPayload::ForwardToAgent(forward) = &job.payload;
        (conv_pk(&forward.conversation), msg_sk(&forward.message_id))
    }

    async fn leg_state(&self, job: &Job, from_error: Option<Item>) -> Result<Option<Item>, StoreError> {
        let item = match from_error {
            Some(item) => Some(item),
            None => {
                let (pk_value, sk_value) = self.leg_key(job);
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .key("PK", s(pk_value))
                    .key("SK", s(sk_value))
                    .projection_expression("#legs.#j")
                    .expression_attribute_names("#legs", "legs")
                    .expression_attribute_names("#j", job.job_id.as_str())
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item
            }
        };
        Ok(item.and_then(|item| match item.get("legs") {
            Some(AttributeValue::M(legs)) => match legs.get(job.job_id.as_str()) {
                Some(AttributeValue::M(leg)) => Some(leg.clone()),
                _ => None,
            },
            _ => None,
        }))
    }

    async fn update_leg(
        &self,
        job: &Job,
        set: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let (pk_value, sk_value) = self.leg_key(job);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(pk_value))
            .key("SK", s(sk_value))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#legs", "legs")
            .expression_attribute_names("#j", job.job_id.as_str())
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#error", "error");
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl ConversationStore for DynamoStore {
    async fn append_inbound(&self, message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        let now = Timestamp::now();
        let conversation = Update::builder()
            .table_name(&self.table)
            .key("PK", s(conv_pk(&message.conversation)))
            .key("SK", s("META"))
            // A closed conversation reopens when the customer writes again.
            .update_expression(
                "SET last_customer_at = :at, last_message_id = :mid, #status = :open, updated_at = :now ADD message_count :one",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":at", s(message.received_at.to_string()))
            .expression_attribute_values(":mid", s(message.message_id.as_str()))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        let items = vec![
            self.put(self.seen_item(message, now), Some("attribute_not_exists(PK)"))?,
            TransactWriteItem::builder().update(conversation).build(),
            self.put(self.message_item(message), None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(AppendOutcome::Appended),
            Err(TransactFailure::Cancelled(reasons)) => {
                if failed_condition(&reasons, 0) {
                    let item = reasons.into_iter().next().and_then(|r| r.item);
                    Ok(AppendOutcome::Duplicate(self.seen(message, item).await?))
                } else if failed_condition(&reasons, 1) {
                    Ok(AppendOutcome::NoConversation)
                } else {
                    Err(cancelled(&reasons))
                }
            }
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        let now = Timestamp::now();
        let key = &message.conversation;
        let conversation = HashMap::from([
            pk(conv_pk(key)),
            sk("META"),
            ("line".into(), s(key.line.as_str())),
            ("customer".into(), s(key.customer.as_str())),
            ("handle".into(), s(handle.as_str())),
            ("status".into(), s("open")),
            ("created_at".into(), s(now.to_string())),
            ("updated_at".into(), s(now.to_string())),
            ("last_customer_at".into(), s(message.received_at.to_string())),
            ("last_message_id".into(), s(message.message_id.as_str())),
            ("message_count".into(), n(1)),
        ]);
        let handle_item = HashMap::from([
            pk(handle_pk(&key.line, handle)),
            sk("HANDLE"),
            ("conversation".into(), s(conv_pk(key))),
            ("created_at".into(), s(now.to_string())),
        ]);
        let items = vec![
            self.put(self.seen_item(message, now), Some("attribute_not_exists(PK)"))?,
            self.put(conversation, Some("attribute_not_exists(PK)"))?,
            self.put(handle_item, Some("attribute_not_exists(PK)"))?,
            self.put(self.message_item(message), None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(StartOutcome::Started),
            Err(TransactFailure::Cancelled(reasons)) => {
                if failed_condition(&reasons, 0) {
                    let item = reasons.into_iter().next().and_then(|r| r.item);
                    Ok(StartOutcome::Duplicate(self.seen(message, item).await?))
                } else if failed_condition(&reasons, 1) {
                    Ok(StartOutcome::ConversationExists)
                } else if failed_condition(&reasons, 2) {
                    Ok(StartOutcome::HandleTaken)
                } else {
                    Err(cancelled(&reasons))
                }
            }
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn claim_job(&self, job: &Job, now: Timestamp, lease: Duration) -> Result<Claim, StoreError> {
        let (pk_value, sk_value) = self.leg_key(job);
        let lease_until = now.as_millisecond() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(pk_value))
            .key("SK", s(sk_value))
            .update_expression(
                "SET #legs.#j.#state = :sending, #legs.#j.lease_until_ms = :lease, \
                 #legs.#j.attempts = #legs.#j.attempts + :one, #legs.#j.updated_at = :now",
            )
            // Free to take: never tried, given back for a retry, or held by a lease that ran out.
            .condition_expression(
                "attribute_exists(#legs.#j) AND (#legs.#j.#state IN (:queued, :retry) \
                 OR (#legs.#j.#state = :sending AND #legs.#j.lease_until_ms < :now_ms))",
            )
            .expression_attribute_names("#legs", "legs")
            .expression_attribute_names("#j", job.job_id.as_str())
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":retry", s("retry"))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":now_ms", n(now.as_millisecond()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old_item = match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                other => return Err(service_error(&other)),
            },
            Err(e) => return Err(unavailable(e)),
        };
        let Some(leg) = self.leg_state(job, old_item).await? else {
            return Ok(Claim::Missing);
        };
        match leg.get("state") {
            Some(AttributeValue::S(state)) if state == "sending" => Ok(Claim::Busy),
            Some(AttributeValue::S(state)) => Ok(Claim::AlreadyDone { state: state.clone() }),
            _ => Err(StoreError::Corrupt(format!("leg {} has no state", job.job_id))),
        }
    }

    async fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> Result<Option<ForwardContext>, StoreError> {
        let conv_key = HashMap::from([pk(conv_pk(conversation)), sk("META")]);
        let agent_key = HashMap::from([pk(agent_pk(&conversation.line, agent)), sk("AGENT")]);
        let mut keys = KeysAndAttributes::builder()
            .keys(conv_key)
            .keys(agent_key)
            .consistent_read(true)
            .build()
            .map_err(build_error)?;
        let mut found: Vec<Item> = Vec::new();
        // BatchGetItem may hand back unprocessed keys under load: ask again, briefly.
        for attempt in 0..5u32 {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(unavailable)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => {
                    keys = rest;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                _ => break,
            }
        }
        let meta = found
            .iter()
            .find(|i| matches!(i.get("SK"), Some(AttributeValue::S(k)) if k == "META"));
        let Some(meta) = meta else { return Ok(None) };
        let handle = Handle::parse(get_s(meta, "handle")?).map_err(StoreError::Corrupt)?;
        let agent_item = found
            .iter()
            .find(|i| matches!(i.get("SK"), Some(AttributeValue::S(k)) if k == "AGENT"));
        let agent_last_inbound_at = match agent_item.and_then(|i| i.get("last_inbound_at_ms")) {
            Some(AttributeValue::N(ms)) => {
                let corrupt = || StoreError::Corrupt(format!("bad last_inbound_at_ms `{ms}`"));
                Some(Timestamp::from_millisecond(ms.parse().map_err(|_| corrupt())?).map_err(|_| corrupt())?)
            }
            _ => None,
        };
        Ok(Some(ForwardContext {
            handle,
            agent_last_inbound_at,
        }))
    }

    async fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let JobPayload::ForwardToAgent(forward) = &job.payload;
        let (pk_value, sk_value) = self.leg_key(job);
        let leg = Update::builder()
            .table_name(&self.table)
            .key("PK", s(pk_value.clone()))
            .key("SK", s(sk_value))
            .update_expression(
                "SET #legs.#j.#state = :sent, #legs.#j.wamid = :wamid, #legs.#j.via = :via, \
                 #legs.#j.updated_at = :now REMOVE #legs.#j.lease_until_ms, #legs.#j.#error",
            )
            .condition_expression("attribute_exists(#legs.#j)")
            .expression_attribute_names("#legs", "legs")
            .expression_attribute_names("#j", job.job_id.as_str())
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":wamid", s(wamid.as_str()))
            .expression_attribute_values(":via", s(via.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .build()
            .map_err(build_error)?;
        let copy = HashMap::from([
            pk(format!("WAMID#{}", wamid.as_str())),
            sk("WAMID"),
            ("conversation".into(), s(pk_value)),
            ("message_id".into(), s(forward.message_id.as_str())),
            ("job_id".into(), s(job.job_id.as_str())),
            ("agent".into(), s(forward.agent.as_str())),
            ("line".into(), s(forward.conversation.line.as_str())),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, WAMID_TTL)),
        ]);
        let items = vec![TransactWriteItem::builder().update(leg).build(), self.put(copy, None)?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // The message was erased while we sent: there is nothing left to record on.
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => Ok(()),
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn record_job_failed(&self, job: &Job, failure: &LegFailure, now: Timestamp) -> Result<(), StoreError> {
        self.update_leg(
            job,
            "SET #legs.#j.#state = :failed, #legs.#j.#error = :error, #legs.#j.updated_at = :now REMOVE #legs.#j.lease_until_ms",
            "attribute_exists(#legs.#j)",
            vec![(":failed", s("failed")), (":error", failure_value(failure, now)), (":now", s(now.to_string()))],
        )
        .await
        .map(|_| ())
    }

    async fn release_job(&self, job: &Job, failure: &LegFailure, now: Timestamp) -> Result<(), StoreError> {
        self.update_leg(
            job,
            "SET #legs.#j.#state = :retry, #legs.#j.#error = :error, #legs.#j.updated_at = :now REMOVE #legs.#j.lease_until_ms",
            "#legs.#j.#state = :sending",
            vec![
                (":retry", s("retry")),
                (":sending", s("sending")),
                (":error", failure_value(failure, now)),
                (":now", s(now.to_string())),
            ],
        )
        .await
        .map(|_| ())
    }
}

/// Marks the agent's window open (SPEC §5.2). Used by tests now; the WhatsApp webhook's
/// routing calls it for every message from an agent.
impl DynamoStore {
    pub async fn record_agent_inbound(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(agent_pk(line, agent)))
            .key("SK", s("AGENT"))
            .update_expression("SET last_inbound_at = :at, last_inbound_at_ms = :at_ms")
            // Out-of-order webhooks must not move the window back.
            .condition_expression("attribute_not_exists(last_inbound_at_ms) OR last_inbound_at_ms < :at_ms")
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":at_ms", n(at.as_millisecond()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match &e {
                SdkError::ServiceError(se)
                    if matches!(se.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
                {
                    Ok(())
                }
                _ => Err(unavailable(e)),
            })
    }
}

enum TransactFailure {
    Cancelled(Vec<CancellationReason>),
    Other(StoreError),
}

impl From<SdkError<TransactWriteItemsError>> for TransactFailure {
    fn from(e: SdkError<TransactWriteItemsError>) -> Self {
        match e {
            SdkError::ServiceError(se) => match se.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    Self::Cancelled(c.cancellation_reasons.unwrap_or_default())
                }
                TransactWriteItemsError::TransactionInProgressException(_) => Self::Other(StoreError::Conflict),
                other => Self::Other(service_error(&other)),
            },
            other => Self::Other(unavailable(other)),
        }
    }
}

fn failed_condition(reasons: &[CancellationReason], index: usize) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
}

fn cancelled(reasons: &[CancellationReason]) -> StoreError {
    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
        return StoreError::Conflict;
    }
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
}

fn failure_value(failure: &LegFailure, now: Timestamp) -> AttributeValue {
    let mut m = HashMap::from([
        ("class".to_owned(), s(failure.class)),
        ("reason".to_owned(), s(&failure.reason)),
        ("at".to_owned(), s(now.to_string())),
    ]);
    if let Some(code) = failure.code {
        m.insert("code".into(), n(code));
    }
    AttributeValue::M(m)
}

fn conv_pk(key: &ConversationKey) -> String {
    format!("CONV#{}#{}", key.line.as_str(), key.customer.as_str())
}

fn msg_sk(id: &MessageId) -> String {
    format!("MSG#{}", id.as_str())
}

fn handle_pk(line: &LineId, handle: &Handle) -> String {
    format!("HANDLE#{}#{}", line.as_str(), handle.as_str())
}

fn seen_pk(provider: &str, id: &str) -> String {
    format!("SEEN#{provider}#{id}")
}

fn agent_pk(line: &LineId, agent: &WaId) -> String {
    format!("AGENT#{}#{}", line.as_str(), agent.as_str())
}

fn pk(value: String) -> (String, AttributeValue) {
    ("PK".to_owned(), AttributeValue::S(value))
}

fn sk(value: impl Into<String>) -> (String, AttributeValue) {
    ("SK".to_owned(), AttributeValue::S(value.into()))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn expires(from: Timestamp, after: Duration) -> AttributeValue {
    n(from.as_second() + i64::try_from(after.as_secs()).unwrap_or(i64::MAX / 2))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Corrupt(format!("missing string attribute `{name}`"))),
    }
}

/// A service error as `Code: message`; anything else (timeouts, connection errors) with
/// its causes. Never the raw response, which would carry item contents into logs.
fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(match (&e, e.code()) {
        (SdkError::ServiceError(_), Some(code)) => format!("{code}: {}", e.message().unwrap_or_default()),
        _ => DisplayErrorContext(&e).to_string(),
    })
}

fn service_error(e: &impl ProvideErrorMetadata) -> StoreError {
    StoreError::Unavailable(format!(
        "{}: {}",
        e.code().unwrap_or("unknown"),
        e.message().unwrap_or_default()
    ))
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("request not built: {e}"))
}

/// Creates the bridge's table as `template.yaml` declares it (local stack and tests).
/// An existing table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(build_error)
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("PK", KeyType::Hash)?)
        .key_schema(key("SK", KeyType::Range)?)
        .attribute_definitions(attr("PK")?)
        .attribute_definitions(attr("SK")?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => return Ok(()),
        Err(e) => return Err(unavailable(e)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
