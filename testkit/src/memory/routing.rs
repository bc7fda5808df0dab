//! Routing: the records that route agents' replies and status reports (`WAMID#`, `HANDLE#`,
//! `SMS#`), and a reply's leg (`dynamodb/routing.rs`).

use shared::domain::{ConversationKey, Handle, JobId, LineId, MessageId, Wamid};
use shared::ports::{ForwardedCopy, OutboundLeg, Routing, SentSmsRecord, StoreError};

use super::records::Author;
use super::{MemoryStore, StoreOp};

impl Routing for MemoryStore {
    async fn find_forwarded_copy(&self, wamid: &Wamid) -> Result<Option<ForwardedCopy>, StoreError> {
        self.run(StoreOp::FindForwardedCopy, |state| Ok(state.copies.get(wamid).cloned()))
    }

    async fn find_handle(&self, line: &LineId, handle: &Handle) -> Result<Option<ConversationKey>, StoreError> {
        self.run(StoreOp::FindHandle, |state| Ok(state.handles.get(&(line.clone(), handle.clone())).cloned()))
    }

    async fn find_sent_sms(&self, sid: &str) -> Result<Option<SentSmsRecord>, StoreError> {
        self.run(StoreOp::FindSentSms, |state| Ok(state.sent_sms.get(sid).cloned()))
    }

    async fn outbound_leg(
        &self,
        conversation: &ConversationKey,
        message_id: &MessageId,
        job_id: &JobId,
    ) -> Result<Option<OutboundLeg>, StoreError> {
        self.run(StoreOp::OutboundLeg, |state| {
            let Some(message) = state.message(conversation, message_id) else {
                return Ok(None);
            };
            let Some(leg) = message.legs.get(job_id) else {
                return Ok(None);
            };
            // Only an agent's reply has one: a customer's message has no author to tell.
            Ok(match &message.author {
                Author::Agent { agent, agent_wamid, handle } => Some(OutboundLeg {
                    agent: agent.clone(),
                    agent_wamid: agent_wamid.clone(),
                    status: leg.status,
                    send_recorded: leg.provider_id.is_some(),
                    handle: Some(handle.clone()),
                    body: message.body.clone(),
                }),
                Author::Customer => None,
            })
        })
    }
}
