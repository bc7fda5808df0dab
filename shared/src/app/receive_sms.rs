//! A customer's SMS arrives (docs/using.md): record it once, create the conversation on
//! first contact, and enqueue one delivery job per agent who gets a copy (`domain::copies`:
//! the claimer, or the agents on duty, or everyone), plus the bridge's automated reply if
//! one is due. Never calls WhatsApp.
//!
//! STOP and the other compliance keywords (`domain::compliance`) are recorded with the
//! message: the conversation's opt-out changes in the same transaction, the agents' copies
//! say so, and the worker refuses any later SMS to an opted-out customer.
//!
//! Recorded means delivered: the jobs are recorded with the message, in its outbox entry,
//! so a queue that refuses them now only delays them until the outbox sweep. A store or
//! queue that fails for a moment is tried again within the webhook's retry budget.

use crate::app::retry_budget::RetryBudget;
use crate::domain::compliance::{CustomerKeyword, auto_reply_for};
use crate::domain::copies::{CopiedTo, Copies, copies_for};
use crate::domain::{
    ConversationKey, ForwardToAgent, Handle, InboundSms, Job, JobId, JobPayload, Line, MessageId, WaId,
};
use crate::ports::{AppendOutcome, DeliveryQueue, InboundLog, NewInboundMessage, StartOutcome, StoreError};

/// Bound on store round trips for one SMS: conflicts and handle collisions are rare, and
/// a request that keeps losing races should fail visibly (Twilio retries or reports it).
const MAX_STORE_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Accepted {
        message_id: MessageId,
        /// The handle of the conversation this message started, if it started one.
        new_conversation: Option<Handle>,
        jobs: usize,
        /// `false`: the queue refused them for the whole budget; the outbox sweep enqueues
        /// them (they are recorded).
        enqueued: bool,
    },
    /// A replay of a message already recorded: nothing was written; its jobs were offered
    /// to the queue again because the first attempt may have failed before enqueueing them
    /// (the worker sends each job at most once, so this never duplicates a copy).
    Duplicate { message_id: Option<MessageId>, jobs: usize, enqueued: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("gave up after {MAX_STORE_ATTEMPTS} attempts to record the message")]
    TooManyAttempts,
}

pub async fn receive_sms<S: InboundLog, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    line: &Line,
    sms: InboundSms,
    rng: &mut fastrand::Rng,
    budget: &RetryBudget,
) -> Result<Received, ReceiveError> {
    let conversation = ConversationKey { line: line.id.clone(), customer: sms.from.clone() };
    let copies = who_gets_copies(store, line, &conversation, sms.received_at, budget).await;
    let mut message = new_inbound_message(line, sms, &copies.agents);
    let forwards = message.jobs.clone();
    let nobody_on_duty = copies.to == CopiedTo::NobodyOnDuty;
    // The automated reply depends on whether this message starts the conversation.
    let jobs_for = |new_conversation: bool| {
        let mut jobs = forwards.clone();
        let (keyword, at) = (message.keyword, message.received_at);
        let due = auto_reply_for(line, keyword, new_conversation, nobody_on_duty, &message.provider_message_id, at);
        if let Some(due) = due {
            jobs.push(Job::auto_reply(message.conversation.clone(), due.reason, due.text, &due.once_key));
        }
        jobs
    };
    let (append_jobs, start_jobs) = (jobs_for(false), jobs_for(true));
    let mut handle_collisions = 0;
    let mut try_append = true;
    for _ in 0..MAX_STORE_ATTEMPTS {
        // Most texts belong to an existing conversation: try that first, so the common
        // path is one transaction and no read.
        let result = if try_append {
            message.jobs = append_jobs.clone();
            budget.retry(|| store.append_inbound(&message), StoreError::is_transient).await.map(|outcome| match outcome
            {
                AppendOutcome::Appended => Step::Done { handle: None },
                AppendOutcome::Duplicate(prior) => Step::Duplicate(prior),
                AppendOutcome::NoConversation => Step::StartConversation,
            })
        } else {
            let handle = Handle::random(Handle::length_after_collisions(handle_collisions), rng);
            message.jobs = start_jobs.clone();
            let start = || store.start_conversation(&message, &handle);
            budget.retry(start, StoreError::is_transient).await.map(|outcome| match outcome {
                StartOutcome::Started => Step::Done { handle: Some(handle.clone()) },
                StartOutcome::Duplicate(prior) => Step::Duplicate(prior),
                StartOutcome::ConversationExists => Step::Append,
                StartOutcome::HandleTaken => {
                    handle_collisions += 1;
                    Step::StartConversation
                }
            })
        };
        match result {
            Ok(Step::Done { handle }) => {
                let enqueued = enqueue_or_leave_to_outbox(queue, &message.jobs, budget).await;
                return Ok(Received::Accepted {
                    message_id: message.message_id,
                    new_conversation: handle,
                    jobs: message.jobs.len(),
                    enqueued,
                });
            }
            Ok(Step::Duplicate(prior)) => {
                let enqueued = enqueue_or_leave_to_outbox(queue, &prior.jobs, budget).await;
                return Ok(Received::Duplicate { message_id: prior.message_id, jobs: prior.jobs.len(), enqueued });
            }
            Ok(Step::StartConversation) => try_append = false,
            Ok(Step::Append) => try_append = true,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReceiveError::TooManyAttempts)
}

/// Who gets a copy (`domain::copies`). A store that can't say within the budget costs no
/// message: then every agent gets one, as before claims and duty existed.
async fn who_gets_copies<S: InboundLog>(
    store: &S,
    line: &Line,
    conversation: &ConversationKey,
    now: jiff::Timestamp,
    budget: &RetryBudget,
) -> Copies {
    match budget.retry(|| store.copy_facts(conversation), StoreError::is_transient).await {
        Ok(facts) => copies_for(line, &facts, now),
        Err(e) => {
            tracing::warn!(error = %e, "claim and duty unknown: every agent gets a copy");
            Copies { agents: line.agents.clone(), to: CopiedTo::Everyone }
        }
    }
}

/// Offers recorded jobs to the queue within the budget; `false` if it kept refusing. They
/// are in the outbox either way, so the sweep enqueues what this couldn't.
pub async fn enqueue_or_leave_to_outbox<Q: DeliveryQueue>(queue: &Q, jobs: &[Job], budget: &RetryBudget) -> bool {
    if jobs.is_empty() {
        return true;
    }
    match budget.retry(|| queue.enqueue(jobs), |_| true).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, jobs = jobs.len(), "jobs recorded, not enqueued: the outbox sweep enqueues them");
            crate::telemetry::count("OutboxDeferred", &[("source", "webhook")]);
            false
        }
    }
}

enum Step {
    Done { handle: Option<Handle> },
    Duplicate(crate::ports::PriorDelivery),
    StartConversation,
    Append,
}

/// What a customer's text records: the message, with one copy job for each of `copied`
/// (automated replies are added by `receive_sms`). A copy's job id is numbered by the agent's
/// place in the line, whoever else gets one.
pub fn new_inbound_message(line: &Line, sms: InboundSms, copied: &[WaId]) -> NewInboundMessage {
    let conversation = ConversationKey { line: line.id.clone(), customer: sms.from };
    let message_id = MessageId::new_v7();
    let keyword = CustomerKeyword::of(&sms.body);
    let jobs = line
        .agents
        .iter()
        .enumerate()
        .filter(|(_, agent)| copied.contains(agent))
        .map(|(leg, agent)| Job {
            job_id: JobId::for_leg(&message_id, leg),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent::of_message(
                line,
                conversation.clone(),
                message_id.clone(),
                agent.clone(),
                &sms.body,
                &sms.attachments,
                sms.received_at,
            )),
        })
        .collect();
    NewInboundMessage {
        conversation,
        message_id,
        provider: "twilio",
        provider_message_id: sms.provider_message_id.as_str().to_owned(),
        body: sms.body,
        attachments: sms.attachments,
        received_at: sms.received_at,
        keyword,
        jobs,
    }
}
