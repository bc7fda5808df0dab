//! Routing: the records that route agents' replies and status reports (`WAMID#`, `HANDLE#`,
//! `SMS#`), and a reply's leg.

use aws_sdk_dynamodb::types::AttributeValue;

use super::attrs::*;
use super::{DynamoStore, unavailable};
use crate::domain::{ConversationKey, DeliveryStatus, Handle, JobId, LineId, MessageId, WaId, Wamid};
use crate::ports::{DigestPart, ForwardedCopy, OutboundLeg, Routing, SentSmsRecord, StoreError};

impl DynamoStore {
    pub(super) async fn get(&self, pk_value: String, sk_value: &str) -> Result<Option<Item>, StoreError> {
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
}

impl Routing for DynamoStore {
    async fn find_forwarded_copy(&self, wamid: &Wamid) -> Result<Option<ForwardedCopy>, StoreError> {
        let Some(item) = self.get(format!("WAMID#{}", wamid.as_str()), "WAMID").await? else {
            return Ok(None);
        };
        Ok(Some(ForwardedCopy {
            conversation: parse_conv_pk(get_s(&item, "conversation")?)?,
            message_id: MessageId::parse(get_s(&item, "message_id")?).map_err(StoreError::Corrupt)?,
            job_id: JobId::parse(get_s(&item, "job_id")?).map_err(StoreError::Corrupt)?,
            agent: WaId::parse(get_s(&item, "agent")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            digest: digest_parts(&item)?,
        }))
    }

    async fn find_handle(&self, line: &LineId, handle: &Handle) -> Result<Option<ConversationKey>, StoreError> {
        let Some(item) = self.get(handle_pk(line, handle), "HANDLE").await? else {
            return Ok(None);
        };
        parse_conv_pk(get_s(&item, "conversation")?).map(Some)
    }

    async fn find_sent_sms(&self, sid: &str) -> Result<Option<SentSmsRecord>, StoreError> {
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

    async fn outbound_leg(
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
                send_recorded: opt_s(leg, "provider_id").is_some(),
                handle: opt_s(&item, "handle").and_then(|h| Handle::parse(h).ok()),
                body: opt_s(&item, "body").unwrap_or_default().to_owned(),
            })),
            _ => Ok(None),
        }
    }
}

/// A digest's parts (`copy_route_item`), none for a copy of one conversation.
fn digest_parts(item: &Item) -> Result<Vec<DigestPart>, StoreError> {
    let Some(AttributeValue::L(parts)) = item.get("digest") else { return Ok(Vec::new()) };
    parts
        .iter()
        .map(|part| {
            let AttributeValue::M(part) = part else {
                return Err(StoreError::Corrupt("a digest part is not a map".into()));
            };
            Ok(DigestPart {
                conversation: parse_conv_pk(get_s(part, "conversation")?)?,
                message_id: MessageId::parse(get_s(part, "message_id")?).map_err(StoreError::Corrupt)?,
                job_id: JobId::parse(get_s(part, "job_id")?).map_err(StoreError::Corrupt)?,
            })
        })
        .collect()
}
