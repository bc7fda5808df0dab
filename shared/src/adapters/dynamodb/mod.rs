//! The conversation store over DynamoDB: one table, `PK`/`SK` string keys, TTL on
//! `expires_at`, one GSI listing open conversations (ARCHITECTURE.md). Writes that must agree are
//! single conditional writes or one `TransactWriteItems`; nothing reads and then writes.
//!
//! | item                 | PK                             | SK         |
//! |----------------------|--------------------------------|------------|
//! | conversation         | `CONV#<line>#<customer>`       | `META`     |
//! | message + its legs   | `CONV#<line>#<customer>`       | `MSG#<id>` |
//! | handle               | `HANDLE#<line>#<handle>`       | `HANDLE`   |
//! | forwarded copy       | `WAMID#<wamid>`                | `WAMID`    |
//! | SMS sent             | `SMS#<provider id>`            | `SMS`      |
//! | dedupe marker        | `SEEN#<provider>#<id>`         | `SEEN`     |
//! | agent                | `AGENT#<line>#<wa_id>`         | `AGENT`    |
//! | agent's user id      | `AGENTID#<line>#<user_id>`     | `AGENTID`  |
//! | duty roster          | `DUTY#<line>`                  | `DUTY`     |
//! | a sender's next slot | `PACE#<sender>`                | `PACE`     |
//! | notice to an agent   | `JOB#<job_id>`                 | `JOB`      |
//! | outbox entry         | `OUTBOX#<id>`                  | `OUTBOX`   |
//! | non-agent, per day   | `NONAGENT#<line>#<id>#<day>`   | `NONAGENT` |
//! | an erasure's record  | `ERASED#<line or *>#<digest>`  | `ERASED`   |
//!
//! Open conversations carry `GSI1PK = OPEN#<line>` and `GSI1SK` = their last customer
//! activity, so the "which conversation?" list is one query on `GSI1`. Outbox entries carry
//! `GSI2PK = OUTBOX` and their due time in `GSI2SK` (`outbox.rs`).
//!
//! One file per role of the store (`crate::ports`): `inbound.rs`, `conversations.rs`,
//! `agents.rs`, `routing.rs`, `legs.rs` (deliveries), `statuses.rs`, `outbox.rs`.
//!
//! A job's progress is a *leg*: `legs.<job_id>` in the message it delivers (so the thread
//! and every copy's state come back in one query), or in its own `JOB#` item for notices.

mod agents;
mod attrs;
mod conversations;
pub mod erasure;
mod inbound;
mod legs;
mod outbox;
mod pacing;
mod parked;
mod routing;
mod statuses;
mod table;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

pub use outbox::OUTBOX_INDEX;
pub use table::create_table;

use crate::ports::*;
use attrs::Item;

pub const DEFAULT_MESSAGE_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
const DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const WAMID_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct DynamoStore {
    client: Client,
    table: String,
    message_retention: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, message_retention: Duration) -> Self {
        Self { client, table: table.into(), message_retention }
    }

    /// The items of `keys` that exist, in one `BatchGetItem` (asked again, briefly, for keys
    /// DynamoDB hands back unprocessed under load). `consistent`: a strongly consistent
    /// read, at twice the read units.
    async fn batch_get(&self, keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(consistent)
            .build()
            .map_err(build_error)?;
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..5u32 {
            let out =
                self.client.batch_get_item().request_items(&self.table, keys).send().await.map_err(unavailable)?;
            found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => {
                    keys = rest;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                _ => break,
            }
        }
        Ok(found)
    }

    /// Opens the connection to DynamoDB during a cold start (a read of a key that never
    /// exists), so the first request doesn't pay the TLS handshake. Errors are the caller's
    /// to ignore.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S("WARMUP".into()))
            .key("SK", AttributeValue::S("WARMUP".into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))
    }

    /// Dedupe markers hold jobs, texts included: they never outlive the messages.
    fn dedupe_ttl(&self) -> Duration {
        DEDUPE_TTL.min(self.message_retention)
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
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(TransactFailure::from(e)),
        }
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

/// The item a cancelled transaction's `index`-th write found (`ReturnValuesOnConditionCheckFailure`).
fn reason_item(reasons: Vec<CancellationReason>, index: usize) -> Option<Item> {
    reasons.into_iter().nth(index).and_then(|r| r.item)
}

fn cancelled(reasons: &[CancellationReason]) -> StoreError {
    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
        return StoreError::Conflict;
    }
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
}

/// A service error as `Code: message`; anything else (timeouts, connection errors) with
/// its causes. Never the raw response, which would carry item contents into logs.
fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (&e, e.code()) {
        (SdkError::ServiceError(_), Some(code)) => classified(code, e.message().unwrap_or_default()),
        _ => StoreError::Unavailable(crate::domain::scrub_numbers(&DisplayErrorContext(&e).to_string())),
    }
}

fn service_error(e: &impl ProvideErrorMetadata) -> StoreError {
    classified(e.code().unwrap_or("unknown"), e.message().unwrap_or_default())
}

/// DynamoDB's error codes that no retry can fix (its API reference, "Common errors" and each
/// operation's errors); everything else (throttling, 5xx, conflicts) may pass.
const REFUSALS: &[&str] = &[
    "ResourceNotFoundException",
    "ValidationException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
    "InvalidSignatureException",
    "ItemCollectionSizeLimitExceededException",
];

fn classified(code: &str, message: &str) -> StoreError {
    let text = crate::domain::scrub_numbers(&format!("{code}: {message}"));
    if REFUSALS.contains(&code) { StoreError::Rejected(text) } else { StoreError::Unavailable(text) }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("request not built: {e}"))
}
