//! Reads: the records that route replies and status callbacks, conversations, threads.

use aws_sdk_dynamodb::types::AttributeValue;

use super::attrs::*;
use super::{DynamoStore, unavailable};
use crate::domain::{Attachment, ConversationKey, DeliveryStatus, Handle, JobId, LineId, MessageId, WaId, Wamid};
use crate::ports::{
    ConversationSummary, Direction, ForwardedCopy, LegFailureRecord, OutboundLeg, SentSmsRecord, StoreError, ThreadLeg,
    ThreadMessage,
};

impl DynamoStore {
    async fn get(&self, pk_value: String, sk_value: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk_value, sk_value)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item)
    }

    pub(super) async fn forwarded_copy(&self, wamid: &Wamid) -> Result<Option<ForwardedCopy>, StoreError> {
        let Some(item) = self.get(format!("WAMID#{}", wamid.as_str()), "WAMID").await? else {
            return Ok(None);
        };
        Ok(Some(ForwardedCopy {
            conversation: parse_conv_pk(get_s(&item, "conversation")?)?,
            message_id: MessageId::parse(get_s(&item, "message_id")?).map_err(StoreError::Corrupt)?,
            job_id: JobId::parse(get_s(&item, "job_id")?).map_err(StoreError::Corrupt)?,
            agent: WaId::parse(get_s(&item, "agent")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        }))
    }

    pub(super) async fn handle_target(
        &self,
        line: &LineId,
        handle: &Handle,
    ) -> Result<Option<ConversationKey>, StoreError> {
        let Some(item) = self.get(handle_pk(line, handle), "HANDLE").await? else {
            return Ok(None);
        };
        parse_conv_pk(get_s(&item, "conversation")?).map(Some)
    }

    pub(super) async fn sent_sms(&self, sid: &str) -> Result<Option<SentSmsRecord>, StoreError> {
        let Some(item) = self.get(format!("SMS#{sid}"), "SMS").await? else {
            return Ok(None);
        };
        Ok(Some(SentSmsRecord {
            conversation: parse_conv_pk(get_s(&item, "conversation")?)?,
            message_id: MessageId::parse(get_s(&item, "message_id")?).map_err(StoreError::Corrupt)?,
            job_id: JobId::parse(get_s(&item, "job_id")?).map_err(StoreError::Corrupt)?,
            agent: WaId::parse(get_s(&item, "agent")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            agent_wamid: Wamid::parse(get_s(&item, "agent_wamid")?).map_err(StoreError::Corrupt)?,
        }))
    }

    pub(super) async fn conversation_summary(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let Some(item) = self.get(conv_pk(key), "META").await? else {
            return Ok(None);
        };
        summary(&item).map(Some)
    }

    pub(super) async fn open_conversations_of(
        &self,
        line: &LineId,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
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
        out.items.unwrap_or_default().iter().map(summary).collect()
    }

    pub(super) async fn outbound_leg_of(
        &self,
        conversation: &ConversationKey,
        message_id: &MessageId,
        job_id: &JobId,
    ) -> Result<Option<OutboundLeg>, StoreError> {
        let Some(item) = self.get(conv_pk(conversation), &msg_sk(message_id)).await? else {
            return Ok(None);
        };
        let Some(leg) = opt_m(&item, "legs").and_then(|legs| opt_m(legs, job_id.as_str())) else {
            return Ok(None);
        };
        match (opt_s(&item, "agent"), opt_s(&item, "agent_wamid")) {
            (Some(agent), Some(wamid)) => Ok(Some(OutboundLeg {
                agent: WaId::parse(agent).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                agent_wamid: Wamid::parse(wamid).map_err(StoreError::Corrupt)?,
                status: opt_s(leg, "status").and_then(DeliveryStatus::parse),
                handle: opt_s(&item, "handle").and_then(|h| Handle::parse(h).ok()),
                body: opt_s(&item, "body").unwrap_or_default().to_owned(),
            })),
            _ => Ok(None),
        }
    }

    pub(super) async fn thread_of(&self, conversation: &ConversationKey) -> Result<Vec<ThreadMessage>, StoreError> {
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
}

fn summary(item: &Item) -> Result<ConversationSummary, StoreError> {
    Ok(ConversationSummary {
        key: parse_conv_pk(get_s(item, "PK")?)?,
        handle: Handle::parse(get_s(item, "handle")?).map_err(StoreError::Corrupt)?,
        open: opt_s(item, "status") == Some("open"),
        last_text: opt_s(item, "last_text").unwrap_or_default().to_owned(),
        opted_out: opted_out(item),
        claimed_by: opt_s(item, "claimed_by_name").map(str::to_owned),
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
            .map(|(id, leg)| {
                Ok(ThreadLeg {
                    job_id: JobId::parse(id).map_err(StoreError::Corrupt)?,
                    kind: opt_s(leg, "kind").unwrap_or_default().to_owned(),
                    to: opt_s(leg, "to").unwrap_or_default().to_owned(),
                    state: opt_s(leg, "state").unwrap_or_default().to_owned(),
                    status: opt_s(leg, "status").and_then(DeliveryStatus::parse),
                    provider_id: opt_s(leg, "provider_id").map(str::to_owned),
                    error: opt_m(leg, "error").map(|e| LegFailureRecord {
                        class: opt_s(e, "class").unwrap_or_default().to_owned(),
                        code: opt_n(e, "code"),
                        reason: opt_s(e, "reason").unwrap_or_default().to_owned(),
                    }),
                })
            })
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

pub(super) fn opted_out(conversation: &Item) -> bool {
    matches!(conversation.get("opted_out"), Some(AttributeValue::Bool(true)))
}
