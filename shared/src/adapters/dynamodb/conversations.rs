//! Conversations as agents see them: started by an agent, listed, read as a thread, and the
//! customer's opt-out.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use jiff::Timestamp;

use super::attrs::*;
use super::{DynamoStore, TransactFailure, build_error, cancelled, failed_condition, unavailable};
use crate::domain::retention;
use crate::domain::{
    Attachment, ConversationKey, DeliveryStatus, FailureClass, Handle, JobId, JobKind, LegState, LineId, MessageId,
    WaId,
};
use crate::ports::{
    ConversationSummary, Conversations, Direction, HandleRenewal, LegFailureRecord, StartOutcome, StoreError,
    ThreadLeg, ThreadMessage,
};

impl Conversations for DynamoStore {
    /// An agent texts a customer first (`/to`): the conversation and its handle, reserved
    /// together; the reply is recorded like any other afterwards.
    async fn start_agent_conversation(
        &self,
        key: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        let conversation = HashMap::from([
            pk(conv_pk(key)),
            sk("META"),
            ("line".into(), s(key.line.as_str())),
            ("customer".into(), s(key.customer.as_str())),
            ("handle".into(), s(handle.as_str())),
            ("status".into(), s("open")),
            ("started_by".into(), s("agent")),
            ("created_at".into(), s(now.to_string())),
            ("updated_at".into(), s(now.to_string())),
            ("last_text".into(), s("")),
            ("message_count".into(), n(0)),
            ("GSI1PK".into(), s(open_conversations_pk(&key.line))),
            ("GSI1SK".into(), s(sortable_time(now))),
            ("expires_at".into(), self.conversation_expiry(now)),
            ("handle_expires_at".into(), self.handle_expiry(now)),
        ]);
        let handle_item = self.handle_item(key, handle, now);
        let items = vec![
            self.put(conversation, Some("attribute_not_exists(PK)"))?,
            self.put(handle_item, Some("attribute_not_exists(PK)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(StartOutcome::Started),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                Ok(StartOutcome::ConversationExists)
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => Ok(StartOutcome::HandleTaken),
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn conversation(&self, key: &ConversationKey) -> Result<Option<ConversationSummary>, StoreError> {
        let Some(item) = self.get(conv_pk(key), "META").await? else {
            return Ok(None);
        };
        self.summary(&item).map(Some)
    }

    async fn open_conversations(&self, line: &LineId, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :open")
            .expression_attribute_values(":open", s(open_conversations_pk(line)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        out.items.unwrap_or_default().iter().map(|item| self.summary(item)).collect()
    }

    async fn thread(&self, conversation: &ConversationKey) -> Result<Vec<ThreadMessage>, StoreError> {
        let mut messages = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :msg)")
                .expression_attribute_values(":pk", s(conv_pk(conversation)))
                .expression_attribute_values(":msg", s("MSG#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                messages.push(thread_message(&item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(messages);
            }
        }
    }

    /// The provider refused to text the customer (21610): they opted out at the carrier.
    async fn mark_opted_out(&self, conversation: &ConversationKey, at: Timestamp) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(conversation), "META")))
            .update_expression("SET opted_out = :yes, opt_out_changed_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Erased meanwhile: nothing left to mark.
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if e.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The handle's item and `META`'s note of its expiry, together: a renewal half done
    /// would leave `META` believing a handle renewed that isn't.
    async fn renew_handle(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<HandleRenewal, StoreError> {
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(conversation), "META")))
            .update_expression("SET handle_expires_at = :expires")
            .condition_expression("attribute_exists(PK) AND handle = :handle")
            .expression_attribute_values(":expires", self.handle_expiry(now))
            .expression_attribute_values(":handle", s(handle.as_str()))
            .build()
            .map_err(build_error)?;
        // An item gone by TTL meanwhile is written again; one naming another conversation is not.
        let handle_item = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(handle_pk(&conversation.line, handle), "HANDLE")))
            .update_expression(
                "SET conversation = :conversation, expires_at = :expires, created_at = if_not_exists(created_at, :now)",
            )
            .condition_expression("attribute_not_exists(PK) OR conversation = :conversation")
            .expression_attribute_values(":conversation", s(conv_pk(conversation)))
            .expression_attribute_values(":expires", self.handle_expiry(now))
            .expression_attribute_values(":now", s(now.to_string()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(meta).build(),
            TransactWriteItem::builder().update(handle_item).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(HandleRenewal::Renewed),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                Ok(HandleRenewal::ConversationGone)
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => Ok(HandleRenewal::HandleTaken),
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }
}

impl DynamoStore {
    /// `expires_at` of a conversation touched at `now`.
    pub(super) fn conversation_expiry(&self, now: Timestamp) -> AttributeValue {
        n(retention::conversation_expires_at(now, self.message_retention).as_second())
    }

    /// `expires_at` of a handle written or renewed at `now` (and `META`'s copy of it).
    pub(super) fn handle_expiry(&self, now: Timestamp) -> AttributeValue {
        n(retention::handle_expires_at(now, self.message_retention).as_second())
    }

    pub(super) fn handle_item(&self, key: &ConversationKey, handle: &Handle, now: Timestamp) -> Item {
        HashMap::from([
            pk(handle_pk(&key.line, handle)),
            sk("HANDLE"),
            ("conversation".into(), s(conv_pk(key))),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), self.handle_expiry(now)),
        ])
    }

    /// Whether the `META` item's copy of its handle's expiry says it is due for renewal.
    pub(super) fn handle_renewal_due(&self, meta: &Item) -> bool {
        let expires_at = opt_n(meta, "handle_expires_at").and_then(|s| Timestamp::from_second(s).ok());
        retention::handle_renewal_due(expires_at, Timestamp::now(), self.message_retention)
    }

    fn summary(&self, item: &Item) -> Result<ConversationSummary, StoreError> {
        summary(item, self.handle_renewal_due(item))
    }
}

fn summary(item: &Item, handle_renewal_due: bool) -> Result<ConversationSummary, StoreError> {
    Ok(ConversationSummary {
        handle_renewal_due,
        key: parse_conv_pk(get_s(item, "PK")?)?,
        handle: Handle::parse(get_s(item, "handle")?).map_err(StoreError::Corrupt)?,
        open: opt_s(item, "status") == Some("open"),
        last_text: opt_s(item, "last_text").unwrap_or_default().to_owned(),
        opted_out: opted_out(item),
        claimed_by: opt_s(item, "claimed_by_name").map(str::to_owned),
        claimer: opt_s(item, "claimed_by")
            .map(WaId::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

/// One leg of a message (or of a standalone job's item), as the thread shows it.
pub(super) fn thread_leg(id: &str, leg: &Item) -> Result<ThreadLeg, StoreError> {
    Ok(ThreadLeg {
        job_id: JobId::parse(id).map_err(StoreError::Corrupt)?,
        kind: parsed(leg, "kind", JobKind::parse)?,
        to: opt_s(leg, "to").unwrap_or_default().to_owned(),
        state: parsed(leg, "state", LegState::parse)?,
        status: opt_s(leg, "status").and_then(DeliveryStatus::parse),
        provider_id: opt_s(leg, "provider_id").map(str::to_owned),
        error: opt_m(leg, "error")
            .map(|e| {
                Ok::<_, StoreError>(LegFailureRecord {
                    class: parsed(e, "class", FailureClass::parse)?,
                    code: opt_n(e, "code"),
                    reason: opt_s(e, "reason").unwrap_or_default().to_owned(),
                })
            })
            .transpose()?,
    })
}

fn thread_message(item: &Item) -> Result<ThreadMessage, StoreError> {
    let direction = match get_s(item, "direction")? {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => return Err(StoreError::Corrupt(format!("direction `{other}`"))),
    };
    let mut legs: Vec<ThreadLeg> = match item.get("legs") {
        Some(AttributeValue::M(legs)) => legs
            .iter()
            .filter_map(|(id, leg)| match leg {
                AttributeValue::M(leg) => Some((id, leg)),
                _ => None,
            })
            .map(|(id, leg)| thread_leg(id, leg))
            .collect::<Result<_, StoreError>>()?,
        _ => Vec::new(),
    };
    legs.sort_by(|a, b| a.job_id.as_str().cmp(b.job_id.as_str()));
    Ok(ThreadMessage {
        message_id: MessageId::parse(get_s(item, "message_id")?).map_err(StoreError::Corrupt)?,
        direction,
        agent: opt_s(item, "agent").map(WaId::parse).transpose().map_err(|e| StoreError::Corrupt(e.to_string()))?,
        body: opt_s(item, "body").unwrap_or_default().to_owned(),
        attachments: match item.get("attachments") {
            Some(AttributeValue::L(parts)) => parts
                .iter()
                .filter_map(|part| part.as_m().ok())
                .map(|part| Attachment {
                    url: opt_s(part, "url").unwrap_or_default().to_owned(),
                    content_type: opt_s(part, "content_type").unwrap_or_default().to_owned(),
                })
                .collect(),
            _ => Vec::new(),
        },
        at: get_s(item, "received_at")?.parse().map_err(|_| StoreError::Corrupt("bad received_at".into()))?,
        legs,
    })
}

/// A kind or state stored by name; one the code doesn't know means the item is corrupt.
fn parsed<T>(item: &Item, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text = get_s(item, name)?;
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{name} `{text}`")))
}

pub(super) fn opted_out(conversation: &Item) -> bool {
    matches!(conversation.get("opted_out"), Some(AttributeValue::Bool(true)))
}
