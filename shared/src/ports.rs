//! The bridge's ports: what the use cases need from the outside world, one method per need.
//! Adapters implement them over DynamoDB, SQS and the providers' HTTP APIs.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::{
    AgentCopy, Attachment, ConversationKey, Handle, Job, MessageId, PhoneNumberId, ProviderFailure, WaId, Wamid,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A concurrent transaction touched the same items; trying again is safe.
    #[error("write conflict with a concurrent request")]
    Conflict,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item that doesn't have the shape the bridge writes.
    #[error("unexpected item in the store: {0}")]
    Corrupt(String),
}

/// A customer's message ready to be recorded, with the jobs that deliver its copies.
#[derive(Debug, Clone)]
pub struct NewInboundMessage {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    /// Which provider carried it and its id there: together, the dedupe key.
    pub provider: &'static str,
    pub provider_message_id: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub received_at: Timestamp,
    pub jobs: Vec<Job>,
}

/// What the first recording of a provider message produced, kept for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorDelivery {
    pub message_id: MessageId,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    Appended,
    /// This provider message was recorded before; nothing was written.
    Duplicate(PriorDelivery),
    /// The customer has no conversation on this line yet; nothing was written.
    NoConversation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartOutcome {
    Started,
    Duplicate(PriorDelivery),
    /// Another request created the conversation first; nothing was written.
    ConversationExists,
    /// The handle belongs to another conversation of the line; nothing was written.
    HandleTaken,
}

/// The result of trying to take a job for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Sent or finished before: acknowledge without sending again.
    AlreadyDone {
        state: String,
    },
    /// Another delivery of the job holds it (its lease has not run out).
    Busy,
    /// The message or its leg doesn't exist (e.g. the conversation was erased).
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardContext {
    pub handle: Handle,
    pub agent_last_inbound_at: Option<Timestamp>,
}

/// How a forwarded copy went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedVia {
    Text,
    Template,
}

impl ForwardedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Template => "template",
        }
    }
}

/// A job's failure as recorded on its leg (the agent-facing thread shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegFailure {
    /// `retry`, `permanent`, `fallback` or `escalate`.
    pub class: &'static str,
    pub code: Option<i64>,
    pub reason: String,
}

/// Conversations, messages, their delivery legs and the records that route replies.
pub trait ConversationStore: Send + Sync {
    /// Adds a message to the customer's existing conversation, atomically with its dedupe
    /// marker and its legs.
    fn append_inbound(
        &self,
        message: &NewInboundMessage,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    /// Creates the conversation with `handle` and its first message, atomically.
    fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> impl Future<Output = Result<StartOutcome, StoreError>> + Send;

    /// Takes the job's leg for sending unless it is done or held by a live lease.
    fn claim_job(
        &self,
        job: &Job,
        now: Timestamp,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// What forwarding to `agent` needs: the conversation's handle and the agent's window.
    fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> impl Future<Output = Result<Option<ForwardContext>, StoreError>> + Send;

    /// Marks the leg sent and records the forwarded copy's `wamid` for reply routing.
    fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends the leg as failed.
    fn record_job_failed(
        &self,
        job: &Job,
        failure: &LegFailure,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the leg back for a later attempt, noting why this one failed.
    fn release_job(
        &self,
        job: &Job,
        failure: &LegFailure,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("delivery queue unavailable: {0}")]
pub struct QueueError(pub String);

pub trait DeliveryQueue: Send + Sync {
    /// Enqueues every job or fails; a partial success is retried inside.
    fn enqueue(&self, jobs: &[Job]) -> impl Future<Output = Result<(), QueueError>> + Send;
}

pub trait WhatsAppClient: Send + Sync {
    fn send(
        &self,
        from: &PhoneNumberId,
        to: &WaId,
        message: &AgentCopy,
    ) -> impl Future<Output = Result<Wamid, ProviderFailure>> + Send;
}
