//! Agents: their 24 h window, focus and pending text, and their messages recorded once
//! (`dynamodb/agents.rs`).

use std::collections::BTreeSet;

use jiff::Timestamp;
use shared::domain::{ConversationKey, Job, LineId, UserId, WaId, Wamid, WhatsAppRecipient};
use shared::ports::{
    AgentEffect, AgentMessageRecord, AgentState, Agents, ForwardContext, NewOutboundMessage, NonAgentOutcome,
    RecordOutcome, StoreError,
};

use super::records::{Author, ConversationStatus, FocusRecord, Leg, MessageRecord, SeenMarker, from_ms};
use super::transaction::Conditions;
use super::{MemoryStore, State, StoreOp};

/// Agents' messages are deduplicated under this provider name, as the adapter's.
const WHATSAPP: &str = "whatsapp";

impl Agents for MemoryStore {
    async fn agent_state(&self, line: &LineId, agent: &WaId) -> Result<AgentState, StoreError> {
        self.run(StoreOp::AgentState, |state| {
            let Some(record) = state.agents.get(&(line.clone(), agent.clone())) else {
                return Ok(AgentState::default());
            };
            Ok(AgentState {
                focus: record.focus.as_ref().and_then(|focus| focus.focus(line)),
                pending: record.pending.clone(),
                last_inbound_at: record.last_inbound_at_ms.and_then(from_ms),
            })
        })
    }

    async fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> Result<Option<ForwardContext>, StoreError> {
        self.run(StoreOp::ForwardContext, |state| {
            let Some(record) = state.conversations.get(conversation) else {
                return Ok(None);
            };
            let agent = state.agents.get(&(conversation.line.clone(), agent.clone()));
            Ok(Some(ForwardContext {
                handle: record.handle.clone(),
                agent_last_inbound_at: agent.and_then(|a| a.last_inbound_at_ms).and_then(from_ms),
                agent_window_closed_at: agent.and_then(|a| a.window_closed_at_ms).and_then(from_ms),
                opted_out: record.opted_out,
                handle_renewal_due: record.handle_renewal_due(),
            }))
        })
    }

    async fn mark_window_closed(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::MarkWindowClosed, |state| {
            // An unconditional update: it creates the agent's item if need be.
            state.agents.entry((line.clone(), agent.clone())).or_default().window_closed_at_ms =
                Some(at.as_millisecond());
            Ok(())
        })
    }

    async fn record_agent_message(&self, record: &AgentMessageRecord) -> Result<RecordOutcome, StoreError> {
        self.run(StoreOp::RecordAgentMessage, |state| state.record_agent_message(record))
    }

    async fn away_agents(&self, line: &LineId) -> Result<BTreeSet<WaId>, StoreError> {
        self.run(StoreOp::AwayAgents, |state| Ok(state.away.get(line).cloned().unwrap_or_default()))
    }

    async fn agent_by_user_id(&self, line: &LineId, user_id: &UserId) -> Result<Option<WaId>, StoreError> {
        self.run(StoreOp::AgentByUserId, |state| {
            Ok(state.agent_user_ids.get(&(line.clone(), user_id.clone())).cloned())
        })
    }

    async fn learn_agent_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
        agent: &WaId,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(StoreOp::LearnAgentUserId, |state| {
            state.agent_user_ids.insert((line.clone(), user_id.clone()), agent.clone());
            Ok(())
        })
    }

    async fn forget_agent_user_id(&self, line: &LineId, user_id: &UserId) -> Result<(), StoreError> {
        self.run(StoreOp::ForgetAgentUserId, |state| {
            state.agent_user_ids.remove(&(line.clone(), user_id.clone()));
            Ok(())
        })
    }

    async fn record_non_agent(
        &self,
        line: &LineId,
        from: &WhatsAppRecipient,
        wamid: &Wamid,
        day: &str,
        reply: &Job,
    ) -> Result<NonAgentOutcome, StoreError> {
        self.run(StoreOp::RecordNonAgent, |state| {
            state.record_non_agent(line, from, wamid, day, reply, Timestamp::now())
        })
    }
}

impl State {
    fn record_agent_message(&mut self, record: &AgentMessageRecord) -> Result<RecordOutcome, StoreError> {
        let now = record.received_at;
        let mut jobs: Vec<Job> = Vec::new();
        let mut message_id = None;
        if let AgentEffect::Reply { message, .. } = &record.effect {
            jobs.extend(message.jobs.iter().cloned());
            message_id = Some(message.message_id.clone());
        }
        jobs.extend(record.notices.iter().cloned());
        let seen_key = (WHATSAPP.to_owned(), record.wamid.as_str().to_owned());

        // The adapter's transaction, item by item: the dedupe marker, the agent's item, the
        // conversation's write if the effect has one (then a reply's message), the notices'
        // items, the outbox entry.
        let mut conditions = Conditions::default();
        conditions.push(self.seen.contains_key(&seen_key)).push(false);
        match &record.effect {
            AgentEffect::Reply { message, .. } => {
                conditions.push(!self.conversations.contains_key(&message.conversation)).push(false);
            }
            AgentEffect::Claim { conversation, .. }
            | AgentEffect::Close { conversation, .. }
            | AgentEffect::Unclaim { conversation }
            | AgentEffect::OptOut { conversation } => {
                conditions.push(!self.conversations.contains_key(conversation));
            }
            // The roster's update has no condition.
            AgentEffect::Duty { .. } => _ = conditions.push(false),
            AgentEffect::Pending(_) | AgentEffect::Focus { .. } | AgentEffect::Nothing => {}
        }
        for notice in &record.notices {
            conditions.push(self.has_standalone(notice));
        }
        if let Some(seen) = self.seen.get(&seen_key) {
            return Ok(RecordOutcome::Duplicate(seen.prior()));
        }
        // same rule as dynamodb/agents.rs: the conversation's write (the third item, when the
        // effect has one) failing means "gone".
        let writes_conversation = matches!(
            record.effect,
            AgentEffect::Reply { .. }
                | AgentEffect::Claim { .. }
                | AgentEffect::Close { .. }
                | AgentEffect::Unclaim { .. }
        );
        if writes_conversation && conditions.failed(2) {
            return Ok(RecordOutcome::ConversationGone);
        }
        if conditions.any_failed() {
            return Err(conditions.cancelled());
        }

        self.seen.insert(seen_key, SeenMarker { message_id, jobs: jobs.clone() });
        self.update_agent(record);
        match &record.effect {
            AgentEffect::Reply { message, .. } => self.put_reply(message),
            AgentEffect::Claim { conversation, name, .. } => {
                if let Some(conversation) = self.conversations.get_mut(conversation) {
                    conversation.claimed_by_name = Some(name.clone());
                    conversation.claimed_by = Some(record.agent.clone());
                }
            }
            AgentEffect::Unclaim { conversation } => {
                if let Some(conversation) = self.conversations.get_mut(conversation) {
                    conversation.claimed_by_name = None;
                    conversation.claimed_by = None;
                }
            }
            AgentEffect::OptOut { conversation } => {
                if let Some(conversation) = self.conversations.get_mut(conversation) {
                    conversation.opted_out = true;
                }
            }
            AgentEffect::Duty { on_duty } => {
                let away = self.away.entry(record.line.clone()).or_default();
                if *on_duty {
                    away.remove(&record.agent);
                } else {
                    away.insert(record.agent.clone());
                }
            }
            AgentEffect::Close { conversation, .. } => {
                // Closed: off the open list until the customer writes again.
                if let Some(conversation) = self.conversations.get_mut(conversation) {
                    conversation.status = ConversationStatus::Closed;
                }
            }
            AgentEffect::Pending(_) | AgentEffect::Focus { .. } | AgentEffect::Nothing => {}
        }
        self.put_standalone(&record.notices);
        self.record_outbox(&jobs, now);
        Ok(RecordOutcome::Recorded)
    }

    /// The agent's window (moved to this message even if an older one: the adapter's SET is
    /// unconditional here), focus and pending text.
    fn update_agent(&mut self, record: &AgentMessageRecord) {
        let at_ms = record.received_at.as_millisecond();
        let agent = self.agents.entry((record.line.clone(), record.agent.clone())).or_default();
        agent.last_inbound_at_ms = Some(at_ms);
        let focus = match &record.effect {
            AgentEffect::Reply { message, .. } => Some((&message.conversation.customer, &message.handle)),
            AgentEffect::Focus { conversation, handle } | AgentEffect::Claim { conversation, handle, .. } => {
                Some((&conversation.customer, handle))
            }
            AgentEffect::Pending(_)
            | AgentEffect::Close { .. }
            | AgentEffect::Unclaim { .. }
            | AgentEffect::OptOut { .. }
            | AgentEffect::Duty { .. }
            | AgentEffect::Nothing => None,
        };
        if let Some((customer, handle)) = focus {
            agent.focus = Some(FocusRecord { customer: customer.clone(), handle: handle.clone(), since_ms: at_ms });
        }
        match &record.effect {
            AgentEffect::Reply { clear_pending: true, .. } => agent.pending = None,
            AgentEffect::Close { unfocus: true, .. } => agent.focus = None,
            AgentEffect::Pending(pending) => agent.pending = Some(pending.clone()),
            _ => {}
        }
    }

    /// An agent's reply in its conversation's thread, a queued leg per job.
    fn put_reply(&mut self, message: &NewOutboundMessage) {
        let record = MessageRecord {
            author: Author::Agent {
                agent: message.agent.clone(),
                agent_wamid: message.agent_wamid.clone(),
                handle: message.handle.clone(),
            },
            body: message.body.clone(),
            attachments: Vec::new(),
            at: message.sent_at,
            legs: message.jobs.iter().map(|job| (job.job_id.clone(), Leg::new(job))).collect(),
        };
        self.put_message(&message.conversation, &message.message_id, record);
    }

    fn record_non_agent(
        &mut self,
        line: &LineId,
        from: &WhatsAppRecipient,
        wamid: &Wamid,
        day: &str,
        reply: &Job,
        now: Timestamp,
    ) -> Result<NonAgentOutcome, StoreError> {
        let seen_key = (WHATSAPP.to_owned(), wamid.as_str().to_owned());
        let day_key = (line.clone(), from.clone(), day.to_owned());
        // The adapter's transaction: the dedupe marker, today's marker, the reply's own item,
        // the outbox entry.
        let mut conditions = Conditions::default();
        conditions
            .push(self.seen.contains_key(&seen_key))
            .push(self.non_agent_replies.contains(&day_key))
            .push(self.has_standalone(reply));
        if conditions.failed(0) {
            return Ok(NonAgentOutcome::Duplicate);
        }
        if conditions.failed(1) {
            // Already answered today: only remember the message (the dedupe marker is new:
            // checked above, under the same lock).
            self.seen.insert(seen_key, SeenMarker { message_id: None, jobs: Vec::new() });
            return Ok(NonAgentOutcome::AlreadyRepliedToday);
        }
        if conditions.any_failed() {
            return Err(conditions.cancelled());
        }
        let replies = std::slice::from_ref(reply);
        self.seen.insert(seen_key, SeenMarker { message_id: None, jobs: replies.to_vec() });
        self.non_agent_replies.insert(day_key);
        self.put_standalone(replies);
        self.record_outbox(replies, now);
        Ok(NonAgentOutcome::Replied)
    }
}
