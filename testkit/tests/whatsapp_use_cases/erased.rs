//! A conversation erased between the use case's reads and its record: the record answers
//! "conversation gone" (`RecordOutcome::ConversationGone`), and the agent is told instead.
//!
//! The twin can't erase a conversation, so `Erased` plays the race: it delegates every
//! call to the twin, except that its routing reads still find one conversation (`ghost`)
//! the twin never held, as reads made just before the erasure would.

use bridge_testkit::memory::{MemoryStore, StoreOp};
use std::collections::BTreeSet;

use jiff::Timestamp;
use shared::app::agent_identity::LearntUserIds;
use shared::app::receive_whatsapp::{MessageHandled, NotRelayed, receive_whatsapp_message};
use shared::app::retry_budget::RetryBudget;
use shared::domain::copies::CopyFacts;
use shared::domain::{
    ConversationKey, DeliveryStatus, Handle, Job, JobId, LineId, MessageId, UserId, WaId, Wamid, WhatsAppRecipient,
    notices,
};
use shared::ports::{
    AgentMessageRecord, AgentState, Agents, AppendOutcome, Claim, ConversationSummary, Conversations, Deliveries,
    ForwardContext, ForwardedCopy, ForwardedVia, HandleRenewal, InboundLog, LegAddress, LegFailure, LegRef,
    NewInboundMessage, NonAgentOutcome, OutboundLeg, RecordOutcome, Routing, SentSmsRecord, StartOutcome, StatusChange,
    StatusLog, StoreError, ThreadLeg, ThreadMessage,
};

use super::fixture::*;

struct Erased {
    inner: MemoryStore,
    ghost: ConversationSummary,
}

impl InboundLog for Erased {
    async fn copy_facts(&self, conversation: &ConversationKey) -> Result<CopyFacts, StoreError> {
        self.inner.copy_facts(conversation).await
    }
    async fn append_inbound(&self, message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        self.inner.append_inbound(message).await
    }
    async fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        self.inner.start_conversation(message, handle).await
    }
}

impl Conversations for Erased {
    async fn start_agent_conversation(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        self.inner.start_agent_conversation(conversation, handle, now).await
    }
    async fn conversation(&self, key: &ConversationKey) -> Result<Option<ConversationSummary>, StoreError> {
        if *key == self.ghost.key {
            return Ok(Some(self.ghost.clone()));
        }
        self.inner.conversation(key).await
    }
    async fn open_conversations(&self, line: &LineId, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
        self.inner.open_conversations(line, limit).await
    }
    async fn thread(&self, conversation: &ConversationKey) -> Result<Vec<ThreadMessage>, StoreError> {
        self.inner.thread(conversation).await
    }
    async fn mark_opted_out(&self, conversation: &ConversationKey, at: Timestamp) -> Result<(), StoreError> {
        self.inner.mark_opted_out(conversation, at).await
    }

    async fn renew_handle(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<HandleRenewal, StoreError> {
        self.inner.renew_handle(conversation, handle, now).await
    }
}

impl Agents for Erased {
    async fn agent_state(&self, line: &LineId, agent: &WaId) -> Result<AgentState, StoreError> {
        self.inner.agent_state(line, agent).await
    }
    async fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> Result<Option<ForwardContext>, StoreError> {
        self.inner.forward_context(conversation, agent).await
    }
    async fn mark_window_closed(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        self.inner.mark_window_closed(line, agent, at).await
    }
    async fn record_agent_message(&self, record: &AgentMessageRecord) -> Result<RecordOutcome, StoreError> {
        self.inner.record_agent_message(record).await
    }
    async fn away_agents(&self, line: &LineId) -> Result<BTreeSet<WaId>, StoreError> {
        self.inner.away_agents(line).await
    }
    async fn agent_by_user_id(&self, line: &LineId, user_id: &UserId) -> Result<Option<WaId>, StoreError> {
        self.inner.agent_by_user_id(line, user_id).await
    }
    async fn learn_agent_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
        agent: &WaId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.learn_agent_user_id(line, user_id, agent, at).await
    }
    async fn forget_agent_user_id(&self, line: &LineId, user_id: &UserId) -> Result<(), StoreError> {
        self.inner.forget_agent_user_id(line, user_id).await
    }
    async fn record_non_agent(
        &self,
        line: &LineId,
        from: &WhatsAppRecipient,
        wamid: &Wamid,
        day: &str,
        reply: &Job,
    ) -> Result<NonAgentOutcome, StoreError> {
        self.inner.record_non_agent(line, from, wamid, day, reply).await
    }
}

impl Routing for Erased {
    async fn find_forwarded_copy(&self, wamid: &Wamid) -> Result<Option<ForwardedCopy>, StoreError> {
        self.inner.find_forwarded_copy(wamid).await
    }
    async fn find_handle(&self, line: &LineId, handle: &Handle) -> Result<Option<ConversationKey>, StoreError> {
        if *line == self.ghost.key.line && *handle == self.ghost.handle {
            return Ok(Some(self.ghost.key.clone()));
        }
        self.inner.find_handle(line, handle).await
    }
    async fn find_sent_sms(&self, sid: &str) -> Result<Option<SentSmsRecord>, StoreError> {
        self.inner.find_sent_sms(sid).await
    }
    async fn outbound_leg(
        &self,
        conversation: &ConversationKey,
        message_id: &MessageId,
        job_id: &JobId,
    ) -> Result<Option<OutboundLeg>, StoreError> {
        self.inner.outbound_leg(conversation, message_id, job_id).await
    }
}

impl Deliveries for Erased {
    async fn reserve_send_slot(
        &self,
        sender: &str,
        pace: shared::domain::pacing::SendPace,
        now: Timestamp,
    ) -> Result<shared::domain::pacing::SlotReservation, StoreError> {
        self.inner.reserve_send_slot(sender, pace, now).await
    }
    async fn offer_send_slot(
        &self,
        sender: &str,
        pace: shared::domain::pacing::SendPace,
        now: Timestamp,
        within: std::time::Duration,
    ) -> Result<shared::domain::pacing::SlotOffer, StoreError> {
        self.inner.offer_send_slot(sender, pace, now, within).await
    }
    async fn give_back_send_slot(
        &self,
        sender: &str,
        slot: shared::domain::pacing::SlotReservation,
        pace: shared::domain::pacing::SendPace,
    ) -> Result<(), StoreError> {
        self.inner.give_back_send_slot(sender, slot, pace).await
    }
    async fn claim_job(&self, job: &Job, now: Timestamp, until: Timestamp, owner: &str) -> Result<Claim, StoreError> {
        self.inner.claim_job(job, now, until, owner).await
    }
    async fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.record_forwarded(job, wamid, via, now).await
    }
    async fn record_digest_sent(&self, jobs: &[&Job], wamid: &Wamid, now: Timestamp) -> Result<(), StoreError> {
        self.inner.record_digest_sent(jobs, wamid, now).await
    }
    async fn park_copy(
        &self,
        line: &shared::domain::LineId,
        agent: &shared::domain::WaId,
        job: &Job,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.park_copy(line, agent, job, now).await
    }
    async fn elect_digest_carrier(
        &self,
        line: &shared::domain::LineId,
        agent: &shared::domain::WaId,
        slot_at_us: i64,
        job: &JobId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.elect_digest_carrier(line, agent, slot_at_us, job, now).await
    }
    async fn parked_copies(
        &self,
        line: &shared::domain::LineId,
        agent: &shared::domain::WaId,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.parked_copies(line, agent).await
    }
    async fn unpark_copies(
        &self,
        line: &shared::domain::LineId,
        agent: &shared::domain::WaId,
        jobs: &[JobId],
    ) -> Result<(), StoreError> {
        self.inner.unpark_copies(line, agent, jobs).await
    }
    async fn record_sms_sent(
        &self,
        job: &Job,
        sid: &str,
        status: Option<DeliveryStatus>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.record_sms_sent(job, sid, status, now).await
    }
    async fn record_job_sent(&self, job: &Job, provider_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.record_job_sent(job, provider_id, now).await
    }
    async fn record_job_failed(
        &self,
        job: &Job,
        failure: &LegFailure,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.record_job_failed(job, failure, notices, now).await
    }
    async fn release_job(&self, job: &Job, failure: &LegFailure, now: Timestamp) -> Result<(), StoreError> {
        self.inner.release_job(job, failure, now).await
    }
    async fn hand_back_untried(&self, job: &Job, now: Timestamp) -> Result<(), StoreError> {
        self.inner.hand_back_untried(job, now).await
    }
    async fn mark_job_uncertain(
        &self,
        job: &Job,
        failure: &LegFailure,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.mark_job_uncertain(job, failure, since, now).await
    }
    async fn job_leg(&self, job: &Job) -> Result<Option<ThreadLeg>, StoreError> {
        self.inner.job_leg(job).await
    }
}

impl StatusLog for Erased {
    async fn advance_leg_status(
        &self,
        leg: &LegAddress,
        status: DeliveryStatus,
        error_code: Option<i64>,
        provider_id: Option<&str>,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<StatusChange, StoreError> {
        self.inner.advance_leg_status(leg, status, error_code, provider_id, notices, now).await
    }
    async fn note_sent_as(&self, leg: &LegRef, provider_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.note_sent_as(leg, provider_id, now).await
    }
    async fn record_copy_route(&self, copy: &ForwardedCopy, wamid: &Wamid, now: Timestamp) -> Result<(), StoreError> {
        self.inner.record_copy_route(copy, wamid, now).await
    }
    async fn add_leg(&self, job: &Job) -> Result<(), StoreError> {
        self.inner.add_leg(job).await
    }
    async fn unsent_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>, StoreError> {
        self.inner.unsent_jobs(jobs).await
    }
}

#[tokio::test]
async fn a_conversation_erased_between_the_routing_and_the_record_is_answered_with_a_notice_only() {
    let w = World::new();
    let ghost = ConversationSummary {
        key: w.conversation(2),
        handle: handle("P9"),
        open: true,
        last_text: "Hello?".into(),
        opted_out: false,
        claimed_by: None,
        claimer: None,
        handle_renewal_due: false,
    };
    let store = Erased { inner: w.store.clone(), ghost };
    let message = text(0, "#P9 Ready at 5");
    let replay = message.clone();

    let handled = receive_whatsapp_message(
        &store,
        &w.queue,
        &w.line,
        None,
        message,
        t0(),
        &RetryBudget::none(),
        &LearntUserIds::new(),
    )
    .await
    .unwrap();

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ConversationGone });
    assert_eq!(w.store.calls(StoreOp::RecordAgentMessage), 2, "refused as gone, then recorded with the notice");
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::conversation_gone(Some(&handle("P9")))]);
    assert!(sms_of(&jobs).is_empty(), "{jobs:?}");
    assert!(w.thread(2).await.is_empty());
    assert_eq!(w.agent_state(0).await.focus, None, "no focus on a conversation that is gone");
    assert_eq!(w.agents_outbox(), std::slice::from_ref(&jobs), "the notice is recorded, in the outbox");

    // Meta delivers the message again: the notice is offered again, nothing else.
    let replayed = receive_whatsapp_message(
        &store,
        &w.queue,
        &w.line,
        None,
        replay,
        t0() + secs(5),
        &RetryBudget::none(),
        &LearntUserIds::new(),
    )
    .await
    .unwrap();
    assert_eq!(replayed, MessageHandled::Duplicate);
    assert_eq!(w.take(), jobs);
}
