//! Customers' messages: appended to their conversation, or starting it (docs/using.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use jiff::Timestamp;

use super::attrs::*;
use super::{DynamoStore, TransactFailure, build_error, cancelled, failed_condition, reason_item, unavailable};
use crate::domain::compliance::CustomerKeyword;
use crate::domain::copies::{ClaimAssumed, CopyFacts};
use crate::domain::whatsapp_message::truncate_chars;
use crate::domain::{ConversationKey, Handle, LegLocation, MessageId, WaId};
use crate::ports::{AppendOutcome, InboundLog, NewInboundMessage, PriorDelivery, StartOutcome, StoreError};

/// How much of the last text a conversation keeps for the agents' picker.
const LAST_TEXT_CHARS: usize = 80;

impl InboundLog for DynamoStore {
    async fn append_inbound(&self, message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        let now = Timestamp::now();
        // A closed conversation reopens when the customer writes again.
        let mut expression = "SET last_customer_at = :at, last_message_id = :mid, #status = :open, updated_at = :now, \
                              last_text = :text, GSI1PK = :open_pk, GSI1SK = :activity, expires_at = :expires"
            .to_owned();
        let mut values = HashMap::new();
        if let Some(opt_out) = opt_out_value(message) {
            expression.push_str(", opted_out = :opted_out, opt_out_changed_at = :at");
            values.insert(":opted_out".to_owned(), opt_out);
        }
        if let ClaimAssumed::ClaimedBy(agent) = &message.claim_assumed {
            values.insert(":claimer".to_owned(), s(agent.as_str()));
        }
        expression.push_str(" ADD message_count :one");
        let conversation = Update::builder()
            .table_name(&self.table)
            .key("PK", s(conv_pk(&message.conversation)))
            .key("SK", s("META"))
            .update_expression(expression)
            .set_expression_attribute_values(Some(values))
            .condition_expression(claim_condition(&message.claim_assumed))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":at", s(message.received_at.to_string()))
            .expression_attribute_values(":mid", s(message.message_id.as_str()))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":text", s(last_text(message)))
            .expression_attribute_values(":open_pk", s(open_conversations_pk(&message.conversation.line)))
            .expression_attribute_values(":activity", s(sortable_time(message.received_at)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", self.conversation_expiry(message.received_at))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            self.put(self.seen_item(message, now), Some("attribute_not_exists(PK)"))?,
            TransactWriteItem::builder().update(conversation).build(),
            self.put(self.message_item(message), None)?,
        ];
        items.extend(self.outbox_put(&message.jobs, now)?);
        match self.transact(items).await {
            Ok(()) => Ok(AppendOutcome::Appended),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                Ok(AppendOutcome::Duplicate(self.prior_delivery(message, reason_item(reasons, 0)).await?))
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => {
                // The conversation as it is (`ALL_OLD`: the cancellation reason carries the item
                // when there is one; DynamoDB API reference, CancellationReason, read 2026-12-05):
                // none, or another claim.
                let Some(meta) = reason_item(reasons, 1) else { return Ok(AppendOutcome::NoConversation) };
                let claimed_by = opt_s(&meta, "claimed_by")
                    .map(|agent| WaId::parse(agent).map_err(|e| StoreError::Corrupt(e.to_string())))
                    .transpose()?;
                Ok(AppendOutcome::ClaimChanged { claimed_by })
            }
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn copy_facts(&self, conversation: &ConversationKey) -> Result<CopyFacts, StoreError> {
        let duty = super::agents::duty_pk(&conversation.line);
        // Eventually consistent (half the read units): a claim or `/away` a moment old may be
        // missed by one text, which then reaches one agent more.
        let found = self.batch_get(vec![key(conv_pk(conversation), "META"), key(duty, "DUTY")], false).await?;
        let claimed_by = found
            .iter()
            .find(|i| opt_s(i, "SK") == Some("META"))
            .and_then(|meta| opt_s(meta, "claimed_by"))
            .map(|agent| WaId::parse(agent).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?;
        let away = match found.iter().find(|i| opt_s(i, "SK") == Some("DUTY")) {
            Some(roster) => super::agents::away_of(roster)?,
            None => Default::default(),
        };
        Ok(CopyFacts { claimed_by, away })
    }

    async fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        let now = Timestamp::now();
        let key = &message.conversation;
        let mut conversation = HashMap::from([
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
            ("last_text".into(), s(last_text(message))),
            ("message_count".into(), n(1)),
            ("GSI1PK".into(), s(open_conversations_pk(&key.line))),
            ("GSI1SK".into(), s(sortable_time(message.received_at))),
            ("expires_at".into(), self.conversation_expiry(message.received_at)),
            ("handle_expires_at".into(), self.handle_expiry(now)),
        ]);
        if let Some(value) = opt_out_value(message) {
            conversation.insert("opted_out".into(), value);
            conversation.insert("opt_out_changed_at".into(), s(message.received_at.to_string()));
        }
        let handle_item = self.handle_item(key, handle, now);
        let mut items = vec![
            self.put(self.seen_item(message, now), Some("attribute_not_exists(PK)"))?,
            self.put(conversation, Some("attribute_not_exists(PK)"))?,
            self.put(handle_item, Some("attribute_not_exists(PK)"))?,
            self.put(self.message_item(message), None)?,
        ];
        items.extend(self.outbox_put(&message.jobs, now)?);
        match self.transact(items).await {
            Ok(()) => Ok(StartOutcome::Started),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                Ok(StartOutcome::Duplicate(self.prior_delivery(message, reason_item(reasons, 0)).await?))
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => {
                Ok(StartOutcome::ConversationExists)
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 2) => Ok(StartOutcome::HandleTaken),
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }
}

impl DynamoStore {
    fn seen_item(&self, message: &NewInboundMessage, now: Timestamp) -> Item {
        HashMap::from([
            pk(seen_pk(message.provider, &message.provider_message_id)),
            sk("SEEN"),
            ("conversation".into(), s(conv_pk(&message.conversation))),
            ("message_id".into(), s(message.message_id.as_str())),
            ("jobs".into(), jobs_value(&message.jobs)),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, self.dedupe_ttl())),
        ])
    }

    fn message_item(&self, message: &NewInboundMessage) -> Item {
        // A standalone job (an automated reply) keeps its leg in its own item; the dedupe
        // marker still holds it, so a replay offers it again.
        let legs = message
            .jobs
            .iter()
            .filter(|job| matches!(job.leg_location(), LegLocation::Message { .. }))
            .map(|job| (job.job_id.as_str().to_owned(), new_leg(job)))
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
            ("expires_at".into(), expires(message.received_at, self.message_retention)),
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

    /// The dedupe marker's content, from the cancellation reason or, failing that, a read.
    async fn prior_delivery(
        &self,
        message: &NewInboundMessage,
        found: Option<Item>,
    ) -> Result<PriorDelivery, StoreError> {
        let seen = match found {
            Some(item) => Some(item),
            None => {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(seen_pk(message.provider, &message.provider_message_id), "SEEN")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item
            }
        };
        let seen = seen.ok_or_else(|| StoreError::Corrupt("dedupe marker vanished".into()))?;
        prior_from_seen(&seen)
    }
}

pub(super) fn prior_from_seen(seen: &Item) -> Result<PriorDelivery, StoreError> {
    let message_id =
        opt_s(seen, "message_id").map(|id| MessageId::parse(id).map_err(StoreError::Corrupt)).transpose()?;
    Ok(PriorDelivery { message_id, jobs: parse_jobs(seen, "jobs")? })
}

/// The conversation exists, and its claim is the one the copies were decided on.
fn claim_condition(assumed: &ClaimAssumed) -> &'static str {
    match assumed {
        ClaimAssumed::Any => "attribute_exists(PK)",
        ClaimAssumed::Unclaimed => "attribute_exists(PK) AND attribute_not_exists(claimed_by)",
        ClaimAssumed::ClaimedBy(_) => "attribute_exists(PK) AND claimed_by = :claimer",
    }
}

/// STOP sets the conversation's opt-out, START clears it (docs/using.md); nothing else touches it.
fn opt_out_value(message: &NewInboundMessage) -> Option<AttributeValue> {
    match message.keyword {
        Some(CustomerKeyword::OptOut) => Some(AttributeValue::Bool(true)),
        Some(CustomerKeyword::OptIn) => Some(AttributeValue::Bool(false)),
        Some(CustomerKeyword::Help) | None => None,
    }
}

fn last_text(message: &NewInboundMessage) -> String {
    let text = if message.body.trim().is_empty() && !message.attachments.is_empty() {
        format!("[{} attachment(s)]", message.attachments.len())
    } else {
        message.body.clone()
    };
    truncate_chars(&text, LAST_TEXT_CHARS)
}
