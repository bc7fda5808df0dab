//! Faults injected into the store for tests: a call refused before it changes anything, or
//! applied with its answer lost.

use std::collections::HashMap;

use shared::ports::StoreError;

/// One variant per method of the store's roles (`shared::ports`), to aim faults at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    // InboundLog
    AppendInbound,
    StartConversation,
    CopyFacts,
    // Conversations
    StartAgentConversation,
    Conversation,
    OpenConversations,
    Thread,
    MarkOptedOut,
    RenewHandle,
    // Agents
    AgentState,
    ForwardContext,
    MarkWindowClosed,
    RecordAgentMessage,
    RecordNonAgent,
    AwayAgents,
    AgentByUserId,
    LearnAgentUserId,
    ForgetAgentUserId,
    // Routing
    FindForwardedCopy,
    FindHandle,
    FindSentSms,
    OutboundLeg,
    // Deliveries
    ReserveSendSlot,
    GiveBackSendSlot,
    ClaimJob,
    RecordForwarded,
    RecordDigestSent,
    ParkCopy,
    ElectDigestCarrier,
    ParkedCopies,
    UnparkCopies,
    RecordSmsSent,
    RecordJobSent,
    RecordJobFailed,
    ReleaseJob,
    HandBackUntried,
    MarkJobUncertain,
    JobLeg,
    // StatusLog
    AdvanceLegStatus,
    NoteSentAs,
    RecordCopyRoute,
    AddLeg,
    UnsentJobs,
    // Outbox
    DueOutbox,
    ClearOutbox,
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    /// Refused before changing anything.
    Fail,
    /// Applied, then answered with an error.
    LoseAnswer,
}

#[derive(Debug, Default)]
pub(super) struct Faults {
    calls: HashMap<StoreOp, usize>,
    fail: HashMap<StoreOp, usize>,
    lose: HashMap<StoreOp, usize>,
}

impl Faults {
    pub(super) fn fail_next(&mut self, op: StoreOp, times: usize) {
        *self.fail.entry(op).or_default() += times;
    }

    pub(super) fn lose_next_answer(&mut self, op: StoreOp, times: usize) {
        *self.lose.entry(op).or_default() += times;
    }

    pub(super) fn calls(&self, op: StoreOp) -> usize {
        self.calls.get(&op).copied().unwrap_or(0)
    }

    /// Counts a call of `op` and says what happens to it: refusals are used up before lost
    /// answers.
    pub(super) fn on_call(&mut self, op: StoreOp) -> Fault {
        *self.calls.entry(op).or_default() += 1;
        if take_one(&mut self.fail, op) {
            Fault::Fail
        } else if take_one(&mut self.lose, op) {
            Fault::LoseAnswer
        } else {
            Fault::None
        }
    }
}

fn take_one(counts: &mut HashMap<StoreOp, usize>, op: StoreOp) -> bool {
    match counts.get_mut(&op) {
        Some(left) if *left > 0 => {
            *left -= 1;
            true
        }
        _ => false,
    }
}

/// The error an injected fault answers: transient, as DynamoDB's throttling and timeouts.
pub(super) fn injected() -> StoreError {
    StoreError::Unavailable("injected".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::{SignedDuration, Timestamp};
    use shared::domain::{ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LineId};
    use shared::domain::{MessageId, WaId};
    use shared::ports::{
        AppendOutcome, Claim, Conversations, Deliveries, InboundLog, NewInboundMessage, Outbox, StartOutcome,
        StoreError,
    };

    use super::StoreOp;
    use crate::memory::MemoryStore;

    fn conversation() -> ConversationKey {
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse("+14155550134").unwrap() }
    }

    fn message(sid: &str) -> NewInboundMessage {
        let conversation = conversation();
        let message_id = MessageId::new_v7();
        let job = Job {
            job_id: JobId::for_leg(&message_id, 0),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent {
                conversation: conversation.clone(),
                message_id: message_id.clone(),
                agent: WaId::parse("14155550111").unwrap(),
                text: "hello".into(),
                attachments: vec![],
                media: vec![],
                received_at: Timestamp::now(),
                keyword: None,
            }),
        };
        NewInboundMessage {
            conversation,
            message_id,
            provider: "twilio",
            provider_message_id: sid.into(),
            body: "hello".into(),
            attachments: vec![],
            received_at: Timestamp::now(),
            keyword: None,
            jobs: vec![job],
            claim_assumed: Default::default(),
        }
    }

    fn k7() -> Handle {
        Handle::parse("K7").unwrap()
    }

    fn is_injected(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
        matches!(result, Err(StoreError::Unavailable(ref why)) if why == "injected")
    }

    #[tokio::test]
    async fn a_refused_call_changes_nothing_and_the_next_ones_pass() {
        let store = MemoryStore::new();
        store.fail_next(StoreOp::StartConversation, 2);
        let first = message("SM1");
        assert!(is_injected(store.start_conversation(&first, &k7()).await));
        assert!(is_injected(store.start_conversation(&first, &k7()).await));
        assert_eq!(store.record_count(), 0, "a refused write writes nothing");
        assert_eq!(store.outbox_len(), 0);
        assert_eq!(store.start_conversation(&first, &k7()).await.unwrap(), StartOutcome::Started);
        assert_eq!(store.calls(StoreOp::StartConversation), 3, "refused calls count");
    }

    #[tokio::test]
    async fn a_lost_answer_still_writes_and_the_retry_finds_the_first_recording() {
        let store = MemoryStore::new();
        store.lose_next_answer(StoreOp::StartConversation, 1);
        let first = message("SM1");
        assert!(is_injected(store.start_conversation(&first, &k7()).await));
        assert!(store.conversation(&first.conversation).await.unwrap().is_some(), "it was written");
        assert_eq!(store.outbox_len(), 1);

        let StartOutcome::Duplicate(prior) = store.start_conversation(&first, &k7()).await.unwrap() else {
            panic!("the retry is a duplicate")
        };
        assert_eq!(prior.message_id, Some(first.message_id.clone()));
        assert_eq!(prior.jobs, first.jobs);
    }

    #[tokio::test]
    async fn a_lost_claim_is_resumed_by_its_owner_as_the_adapter_would() {
        let store = MemoryStore::new();
        let first = message("SM1");
        store.start_conversation(&first, &k7()).await.unwrap();
        let job = &first.jobs[0];
        let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
        let until = now + SignedDuration::from_secs(60);

        store.lose_next_answer(StoreOp::ClaimJob, 1);
        assert!(is_injected(store.claim_job(job, now, until, "w1").await));
        // The same request sent again: nothing happened in between.
        assert_eq!(store.claim_job(job, now, until, "w1").await.unwrap(), Claim::Claimed { attempts: 0 });
        assert_eq!(store.claim_job(job, now, until, "w2").await.unwrap(), Claim::Busy { until });
    }

    #[tokio::test]
    async fn faults_aim_at_one_operation_and_are_used_up_refusals_first() {
        let store = MemoryStore::new();
        store.fail_next(StoreOp::AppendInbound, 1);
        store.lose_next_answer(StoreOp::AppendInbound, 1);
        let first = message("SM1");
        // Another operation is untouched.
        assert_eq!(store.start_conversation(&first, &k7()).await.unwrap(), StartOutcome::Started);

        let second = message("SM2");
        assert!(is_injected(store.append_inbound(&second).await), "refused");
        assert_eq!(store.thread(&second.conversation).await.unwrap().len(), 1);
        assert!(is_injected(store.append_inbound(&second).await), "applied, answer lost");
        assert_eq!(store.thread(&second.conversation).await.unwrap().len(), 2);
        assert!(matches!(store.append_inbound(&second).await.unwrap(), AppendOutcome::Duplicate(_)));
        assert_eq!(store.calls(StoreOp::AppendInbound), 3);
        assert_eq!(store.calls(StoreOp::Thread), 2);
        assert_eq!(store.calls(StoreOp::ClaimJob), 0);
    }

    #[tokio::test]
    async fn reads_can_fail_too_and_clones_share_state_and_faults() {
        let store = MemoryStore::new();
        let clone = store.clone();
        store.start_conversation(&message("SM1"), &k7()).await.unwrap();
        clone.fail_next(StoreOp::DueOutbox, 1);
        let later = Timestamp::now() + SignedDuration::from_secs(60);
        assert!(is_injected(store.due_outbox(later, 10).await));
        let due = clone.due_outbox(later, 10).await.unwrap();
        assert_eq!(due.len(), 1, "the clone sees the entry the original wrote");
        assert_eq!(store.calls(StoreOp::DueOutbox), 2);

        store.lose_next_answer(StoreOp::ClearOutbox, 1);
        assert!(is_injected(clone.clear_outbox(&[due[0].id.clone()]).await));
        assert_eq!(store.outbox_len(), 0, "cleared although the answer was lost");
    }
}
