//! A customer's SMS arrives (docs/using.md): record it once, create the conversation on
//! first contact, and enqueue one delivery job per agent who gets a copy (`domain::copies`:
//! the claimer, or the agents on duty, or everyone), plus the bridge's automated reply if
//! one is due. Never calls WhatsApp. Who gets a copy is decided from what this instance
//! saw lately (`copy_facts_cache`); the store appends the text only if the conversation's
//! claim is still the one assumed, else it is decided again.
//!
//! STOP and the other compliance keywords (`domain::compliance`) are recorded with the
//! message: the conversation's opt-out changes in the same transaction, the agents' copies
//! say so, and the worker refuses any later SMS to an opted-out customer.
//!
//! Recorded means delivered: the jobs are recorded with the message, in its outbox entry,
//! so a queue that refuses them now only delays them until the outbox sweep. A store or
//! queue that fails for a moment is tried again within the webhook's retry budget.

use crate::app::copy_facts_cache::CopyFactsCache;
use crate::app::retry_budget::RetryBudget;
use crate::domain::compliance::{CustomerKeyword, auto_reply_for};
use crate::domain::copies::{ClaimAssumed, CopiedTo, Copies, CopyFacts, copies_for};
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
    seen: &CopyFactsCache,
) -> Result<Received, ReceiveError> {
    let conversation = ConversationKey { line: line.id.clone(), customer: sms.from.clone() };
    let now = sms.received_at;
    let mut facts = copy_facts(store, seen, &conversation, now, budget).await;
    let mut message = new_inbound_message(line, sms, &[]);
    let mut handle_collisions = 0;
    let mut try_append = true;
    for _ in 0..MAX_STORE_ATTEMPTS {
        // Most texts belong to an existing conversation: try that first, so the common
        // path is one transaction and no read.
        message.claim_assumed = facts.as_ref().map_or(ClaimAssumed::Any, |f| ClaimAssumed::of(f.claimed_by.as_ref()));
        message.jobs = jobs_for(line, &message, facts.as_ref(), !try_append);
        let result = if try_append {
            budget.retry(|| store.append_inbound(&message), StoreError::is_transient).await.map(|outcome| match outcome
            {
                AppendOutcome::Appended => Step::Done { handle: None },
                AppendOutcome::Duplicate(prior) => Step::Duplicate(prior),
                AppendOutcome::NoConversation => Step::StartConversation,
                AppendOutcome::ClaimChanged { claimed_by } => {
                    seen.claim_is(&conversation, claimed_by.clone());
                    if let Some(facts) = facts.as_mut() {
                        facts.claimed_by = claimed_by;
                    }
                    Step::Append
                }
            })
        } else {
            let handle = Handle::random(Handle::length_after_collisions(handle_collisions), rng);
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

/// What decides the copies (`domain::copies`): what this instance saw lately, else a read.
/// `None` when the store can't say within the budget: that costs no message, every agent
/// gets one, as before claims and duty existed.
async fn copy_facts<S: InboundLog>(
    store: &S,
    seen: &CopyFactsCache,
    conversation: &ConversationKey,
    now: jiff::Timestamp,
    budget: &RetryBudget,
) -> Option<CopyFacts> {
    if let Some(facts) = seen.facts(conversation, now) {
        return Some(facts);
    }
    match budget.retry(|| store.copy_facts(conversation), StoreError::is_transient).await {
        Ok(facts) => {
            seen.remember(conversation, &facts, now);
            Some(facts)
        }
        Err(e) => {
            tracing::warn!(error = %e, "claim and duty unknown: every agent gets a copy");
            None
        }
    }
}

/// The text's jobs: a copy for each agent `facts` pick (all of them if unknown), and the
/// automated reply if one is due, which depends on whether the text starts the conversation.
fn jobs_for(line: &Line, message: &NewInboundMessage, facts: Option<&CopyFacts>, new_conversation: bool) -> Vec<Job> {
    let copies = match facts {
        Some(facts) => copies_for(line, facts, message.received_at),
        None => Copies { agents: line.agents.clone(), to: CopiedTo::Everyone },
    };
    let mut jobs = copy_jobs(line, message, &copies.agents);
    let nobody_on_duty = copies.to == CopiedTo::NobodyOnDuty;
    let (keyword, at) = (message.keyword, message.received_at);
    let due = auto_reply_for(line, keyword, new_conversation, nobody_on_duty, &message.provider_message_id, at);
    if let Some(due) = due {
        jobs.push(Job::auto_reply(message.conversation.clone(), due.reason, due.text, &due.once_key));
    }
    jobs
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
/// (automated replies are added by `receive_sms`).
pub fn new_inbound_message(line: &Line, sms: InboundSms, copied: &[WaId]) -> NewInboundMessage {
    let keyword = CustomerKeyword::of(&sms.body);
    let mut message = NewInboundMessage {
        conversation: ConversationKey { line: line.id.clone(), customer: sms.from },
        message_id: MessageId::new_v7(),
        provider: "twilio",
        provider_message_id: sms.provider_message_id.as_str().to_owned(),
        body: sms.body,
        attachments: sms.attachments,
        received_at: sms.received_at,
        keyword,
        jobs: Vec::new(),
        claim_assumed: ClaimAssumed::Any,
    };
    message.jobs = copy_jobs(line, &message, copied);
    message
}

/// A copy job for each of `copied`. A copy's job id is numbered by the agent's place in the
/// line, whoever else gets one.
fn copy_jobs(line: &Line, message: &NewInboundMessage, copied: &[WaId]) -> Vec<Job> {
    line.agents
        .iter()
        .enumerate()
        .filter(|(_, agent)| copied.contains(agent))
        .map(|(leg, agent)| Job {
            job_id: JobId::for_leg(&message.message_id, leg),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent::of_message(
                line,
                message.conversation.clone(),
                message.message_id.clone(),
                agent.clone(),
                &message.body,
                &message.attachments,
                message.received_at,
            )),
        })
        .collect()
}
