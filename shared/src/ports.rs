//! The bridge's ports: what the use cases need from the outside world, one method per need.
//! Adapters implement them over DynamoDB, SQS and the providers' HTTP APIs.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::compliance::CustomerKeyword;
use crate::domain::copies::{ClaimAssumed, CopyFacts};
use crate::domain::delivery::PriorAttempt;
use crate::domain::pacing::{SendPace, SlotOffer, SlotReservation};
use crate::domain::routing::Focus;
use crate::domain::{
    Attachment, ConversationKey, DeliveryStatus, E164, FailureClass, Handle, Job, JobId, JobKind, LegState, LineId,
    MessageId, PhoneNumberId, ProviderFailure, SmsOrigin, UserId, WaId, Wamid, WhatsAppMessage, WhatsAppRecipient,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A concurrent transaction touched the same items; trying again is safe.
    #[error("write conflict with a concurrent request")]
    Conflict,
    /// Throttling, a 5xx, a timeout: trying again later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the call for good (no such table, no permission, a malformed
    /// request): trying again won't help.
    #[error("store refused the call: {0}")]
    Rejected(String),
    /// An item that doesn't have the shape the bridge writes.
    #[error("unexpected item in the store: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Conflict | Self::Unavailable(_))
    }
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
    /// A compliance keyword (docs/using.md) changes the conversation's opt-out with the message.
    pub keyword: Option<CustomerKeyword>,
    pub jobs: Vec<Job>,
    /// The claim the copies among `jobs` were decided on: `append_inbound` writes nothing if
    /// the conversation's claim is another (`AppendOutcome::ClaimChanged`).
    pub claim_assumed: ClaimAssumed,
}

/// What the first recording of a provider message produced, kept for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorDelivery {
    pub message_id: Option<MessageId>,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    Appended,
    /// This provider message was recorded before; nothing was written.
    Duplicate(PriorDelivery),
    /// The customer has no conversation on this line yet; nothing was written.
    NoConversation,
    /// The conversation's claim isn't `claim_assumed` (it is `claimed_by`); nothing was written.
    ClaimChanged {
        claimed_by: Option<WaId>,
    },
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
    /// Taken: never tried, or given back by an attempt that certainly sent nothing.
    /// `attempts` counts the claims before this one.
    Claimed { attempts: u32 },
    /// Taken over from an attempt that may have reached the provider: its outcome was
    /// ambiguous, or its worker stopped while sending and the lease ran out. Find out before
    /// sending again (docs/guarantees.md).
    Uncertain {
        attempts: u32,
        /// When the latest attempt that may have gone out began.
        since: Timestamp,
        /// The provider's id for it, if a status report has told us since (a status webhook
        /// carrying the job's id): then it was sent.
        provider_id: Option<String>,
        /// An attempt before the one at `since` may have gone out too (it was given back
        /// uncertain, then claimed again by a delivery that stopped): the doubt isn't only
        /// the one at `since`.
        earlier_in_doubt: bool,
    },
    /// Sent or finished before: acknowledge without sending again.
    AlreadyDone { state: LegState },
    /// Another delivery holds the job until `until` (its lease).
    Busy { until: Timestamp },
    /// The job's record doesn't exist (e.g. the conversation was erased).
    Missing,
}

impl Claim {
    /// The claim that took over a leg with `attempts` counted (this claim's included) and
    /// `provider_id` recorded, from what it found (`domain::delivery::LegDoubt`).
    pub fn took_over(attempts: u32, provider_id: Option<String>, prior: PriorAttempt) -> Self {
        match prior {
            PriorAttempt::Clear { retried_claim } => {
                Self::Claimed { attempts: if retried_claim { attempts.saturating_sub(1) } else { attempts } }
            }
            PriorAttempt::InDoubt { since, earlier_in_doubt, retried_claim } => Self::Uncertain {
                attempts: if retried_claim { attempts.saturating_sub(1) } else { attempts },
                since,
                provider_id,
                earlier_in_doubt,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardContext {
    pub handle: Handle,
    pub agent_last_inbound_at: Option<Timestamp>,
    /// When WhatsApp last said the agent's window was closed (131047).
    pub agent_window_closed_at: Option<Timestamp>,
    /// The customer texted STOP (or the provider said so) and hasn't texted START since.
    pub opted_out: bool,
    /// The handle's item should be renewed (`domain::retention`).
    pub handle_renewal_due: bool,
}

/// How a forwarded copy went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedVia {
    Text,
    Template,
    /// Sent by an attempt whose answer was lost, and learnt of afterwards (a status report
    /// carrying the job's id): which form it took isn't known.
    Reconciled,
    /// In a digest with other conversations' copies: the digest's own routing record
    /// (`Deliveries::record_digest_sent`) routes replies to it, never one of its parts'.
    Digest,
}

impl ForwardedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Template => "template",
            Self::Reconciled => "reconciled",
            Self::Digest => "digest",
        }
    }
}

/// A job's failure as recorded on its leg (the thread shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegFailure {
    pub class: FailureClass,
    pub code: Option<i64>,
    pub reason: String,
}

/// Where a message's leg is: its conversation, its message, its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegAddress {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub job_id: JobId,
}

/// Where a job's leg is kept, as a status report lets us find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegRef {
    /// A leg of a message in a conversation's thread.
    Message(LegAddress),
    /// A standalone job's own item (a notice, an automated reply).
    Standalone(JobId),
}

/// A copy of a customer's message forwarded to an agent (`WAMID#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedCopy {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub job_id: JobId,
    pub agent: WaId,
    /// A digest (docs/using.md, "A busy line: digests"): every copy the one WhatsApp message
    /// carried, the fields above being its first. Empty for a copy of one conversation.
    pub digest: Vec<DigestPart>,
}

/// One conversation's copy inside a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPart {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub job_id: JobId,
}

impl ForwardedCopy {
    /// The copy of one forward (`job`, which must be a `ForwardToAgent`).
    pub fn of_job(job: &Job) -> Option<Self> {
        let crate::domain::JobPayload::ForwardToAgent(forward) = &job.payload else { return None };
        Some(Self {
            conversation: forward.conversation.clone(),
            message_id: forward.message_id.clone(),
            job_id: job.job_id.clone(),
            agent: forward.agent.clone(),
            digest: Vec::new(),
        })
    }

    /// The routing record of one message carrying `jobs` (forwards; the first leads):
    /// `None` for no jobs, an error for a job that isn't a forward.
    pub fn digest_of(jobs: &[&Job]) -> Result<Option<Self>, StoreError> {
        let copies = jobs
            .iter()
            .map(|job| Self::of_job(job).ok_or_else(|| StoreError::Corrupt(format!("{} is not a forward", job.job_id))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::digest_of_copies(&copies))
    }

    /// The routing record of one message carrying `copies` (the first leads), listing them
    /// all as its parts: `None` for no copies.
    pub fn digest_of_copies(copies: &[Self]) -> Option<Self> {
        let lead = copies.first()?;
        let digest = copies
            .iter()
            .map(|c| DigestPart {
                conversation: c.conversation.clone(),
                message_id: c.message_id.clone(),
                job_id: c.job_id.clone(),
            })
            .collect();
        Some(Self { digest, ..lead.clone() })
    }

    /// Whether the message was a digest (copies of several conversations): a swipe-reply to
    /// it names none of them. One whose other parts a status report couldn't name is still one.
    pub fn is_digest(&self) -> bool {
        !self.digest.is_empty()
    }

    /// The conversations the message carried copies of, in order, each once.
    pub fn conversations(&self) -> Vec<ConversationKey> {
        let mut conversations = vec![self.conversation.clone()];
        for part in &self.digest {
            if !conversations.contains(&part.conversation) {
                conversations.push(part.conversation.clone());
            }
        }
        conversations
    }

    /// Each copy the message carried, as a leg: the one copy, or every part of a digest.
    pub fn legs(&self) -> Vec<LegAddress> {
        if self.digest.is_empty() {
            return vec![LegAddress {
                conversation: self.conversation.clone(),
                message_id: self.message_id.clone(),
                job_id: self.job_id.clone(),
            }];
        }
        self.digest
            .iter()
            .map(|part| LegAddress {
                conversation: part.conversation.clone(),
                message_id: part.message_id.clone(),
                job_id: part.job_id.clone(),
            })
            .collect()
    }
}

/// An SMS the bridge sent (`SMS#`), found by the provider's id from a status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSmsRecord {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub job_id: JobId,
    pub agent: WaId,
    pub agent_wamid: Wamid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLeg {
    pub agent: WaId,
    pub agent_wamid: Wamid,
    pub status: Option<DeliveryStatus>,
    /// The worker recorded the send (the provider's id is on the leg).
    pub send_recorded: bool,
    /// The conversation's handle and the reply's text, for a notice sent as the template.
    pub handle: Option<Handle>,
    pub body: String,
}

/// A conversation as listed to agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub key: ConversationKey,
    pub handle: Handle,
    pub open: bool,
    pub last_text: String,
    /// The customer opted out of SMS (docs/using.md): nothing may be texted to them.
    pub opted_out: bool,
    /// Who claimed it, as the other agents read it.
    pub claimed_by: Option<String>,
    /// The agent who claimed it.
    pub claimer: Option<WaId>,
    /// The handle's item should be renewed (`domain::retention`): the worker does it.
    pub handle_renewal_due: bool,
}

/// What renewing a conversation's handle found (`Conversations::renew_handle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleRenewal {
    Renewed,
    /// Erased or expired meanwhile: nothing was written.
    ConversationGone,
    /// The handle names another conversation now: nothing was written.
    HandleTaken,
}

/// What the bridge remembers about an agent of a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentState {
    pub focus: Option<Focus>,
    /// Text the agent sent while the bridge asked "which conversation?".
    pub pending: Option<PendingText>,
    pub last_inbound_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingText {
    pub text: String,
    pub wamid: Wamid,
}

/// An agent's reply, ready to be recorded in the conversation's thread.
#[derive(Debug, Clone)]
pub struct NewOutboundMessage {
    pub conversation: ConversationKey,
    pub handle: Handle,
    pub message_id: MessageId,
    pub agent: WaId,
    pub agent_wamid: Wamid,
    pub body: String,
    pub sent_at: Timestamp,
    /// The jobs that send it by SMS: one per provider message (a reply over 1600
    /// characters goes in numbered parts, docs/using.md).
    pub jobs: Vec<Job>,
}

/// What recording an agent's message changes besides the dedupe marker and their window.
#[derive(Debug, Clone)]
pub enum AgentEffect {
    /// Append the reply to its conversation and focus the agent on it.
    Reply {
        message: Box<NewOutboundMessage>,
        clear_pending: bool,
    },
    /// Keep the text until the agent picks a conversation.
    Pending(PendingText),
    /// Focus the agent on a conversation.
    Focus {
        conversation: ConversationKey,
        handle: Handle,
    },
    /// Assign the conversation to the agent (named for the others) and focus them on it.
    Claim {
        conversation: ConversationKey,
        handle: Handle,
        name: String,
    },
    /// Close the conversation (it reopens when the customer writes); `unfocus` when it was
    /// the agent's focus.
    Close {
        conversation: ConversationKey,
        unfocus: bool,
    },
    /// Nobody holds the conversation any more: its copies go to everyone on duty again.
    Unclaim {
        conversation: ConversationKey,
    },
    /// The customer is opted out, as their STOP would (an agent pressed Opt out).
    OptOut {
        conversation: ConversationKey,
    },
    /// The agent is on duty again (`/back`) or away (`/away`).
    Duty {
        on_duty: bool,
    },
    Nothing,
}

#[derive(Debug, Clone)]
pub struct AgentMessageRecord {
    pub line: LineId,
    pub agent: WaId,
    /// The agent's WhatsApp message id: the dedupe key.
    pub wamid: Wamid,
    pub received_at: Timestamp,
    pub profile_name: Option<String>,
    pub effect: AgentEffect,
    /// The bridge's answers to the agent, recorded with the message so they go out once.
    pub notices: Vec<Job>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    Recorded,
    Duplicate(PriorDelivery),
    /// The reply's conversation no longer exists; nothing was written.
    ConversationGone,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NonAgentOutcome {
    /// First message from them today: the polite reply is recorded (and to be enqueued).
    Replied,
    /// Already answered today: recorded as seen, nothing else.
    AlreadyRepliedToday,
    Duplicate,
}

/// The result of a status report on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// The status moved forward (notices were recorded with it).
    Advanced,
    /// Late, duplicate or backwards: nothing changed. `current` is what is recorded.
    Unchanged { current: Option<DeliveryStatus> },
    /// Nothing the store doesn't know already (`DeliveryStatus::worth_recording`): no write.
    NothingNew,
    /// No such leg.
    Missing,
}

/// One message of a conversation's thread, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    pub message_id: MessageId,
    pub direction: Direction,
    /// The agent who wrote it; `None` for the customer.
    pub agent: Option<WaId>,
    pub body: String,
    /// A customer's MMS parts.
    pub attachments: Vec<Attachment>,
    pub at: Timestamp,
    pub legs: Vec<ThreadLeg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the customer (SMS in).
    Inbound,
    /// From an agent (SMS out).
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLeg {
    pub job_id: JobId,
    pub kind: JobKind,
    /// The recipient: an agent's wa_id or the customer's number.
    pub to: String,
    /// The job's progress.
    pub state: LegState,
    /// The provider's delivery status, once reported.
    pub status: Option<DeliveryStatus>,
    /// The provider's id for the copy: a wamid or an SMS sid.
    pub provider_id: Option<String>,
    pub error: Option<LegFailureRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegFailureRecord {
    pub class: FailureClass,
    pub code: Option<i64>,
    pub reason: String,
}

/// What customers send, recorded once: a message with its legs and its jobs, atomically
/// with its dedupe marker and its outbox entry.
pub trait InboundLog: Send + Sync {
    /// Adds a message to the customer's existing conversation, atomically with its dedupe
    /// marker and its legs, if the conversation's claim is the one its copies assumed.
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

    /// What decides who gets the copies of the customer's next text (`domain::copies`): the
    /// conversation's claimer (none if there is no conversation yet) and who is away.
    fn copy_facts(&self, conversation: &ConversationKey) -> impl Future<Output = Result<CopyFacts, StoreError>> + Send;
}

/// Conversations as agents see them: started, listed, read, and the customer's opt-out.
pub trait Conversations: Send + Sync {
    /// Creates a conversation an agent starts (`/to`), with `handle`, and no message yet.
    fn start_agent_conversation(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> impl Future<Output = Result<StartOutcome, StoreError>> + Send;

    /// The conversation's summary: handle, state, claim, last activity.
    fn conversation(
        &self,
        key: &ConversationKey,
    ) -> impl Future<Output = Result<Option<ConversationSummary>, StoreError>> + Send;

    /// The line's open conversations, the most recently active first.
    fn open_conversations(
        &self,
        line: &LineId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ConversationSummary>, StoreError>> + Send;

    /// Every message of the conversation, oldest first, with its legs.
    fn thread(
        &self,
        conversation: &ConversationKey,
    ) -> impl Future<Output = Result<Vec<ThreadMessage>, StoreError>> + Send;

    /// Notes that the customer can't be texted (the provider refused with 21610).
    fn mark_opted_out(
        &self,
        conversation: &ConversationKey,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Extends the life of the conversation's handle (`domain::retention`), when a read said
    /// `handle_renewal_due`. Writes nothing for a conversation gone or a handle taken.
    fn renew_handle(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> impl Future<Output = Result<HandleRenewal, StoreError>> + Send;
}

/// The line's agents: their window, focus and pending texts, what they send, and the once-a-day
/// answer to people who aren't agents.
pub trait Agents: Send + Sync {
    /// What the bridge knows of an agent: their window, focus and pending texts.
    fn agent_state(&self, line: &LineId, agent: &WaId) -> impl Future<Output = Result<AgentState, StoreError>> + Send;

    /// What forwarding to `agent` needs: the conversation's handle and the agent's window.
    fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> impl Future<Output = Result<Option<ForwardContext>, StoreError>> + Send;

    /// Notes that WhatsApp refused free-form text to the agent (131047): their window is
    /// closed until they write again.
    fn mark_window_closed(
        &self,
        line: &LineId,
        agent: &WaId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records an agent's message once: its dedupe marker, the agent's window, its effect
    /// and the notices it causes, atomically.
    fn record_agent_message(
        &self,
        record: &AgentMessageRecord,
    ) -> impl Future<Output = Result<RecordOutcome, StoreError>> + Send;

    /// The line's agents who are away (`/away`, until `/back`).
    fn away_agents(&self, line: &LineId) -> impl Future<Output = Result<BTreeSet<WaId>, StoreError>> + Send;

    /// The agent of the line a WhatsApp user id was learnt for, if any.
    fn agent_by_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<WaId>, StoreError>> + Send;

    /// Remembers that `user_id` is `agent`'s, so a message without their phone number is
    /// still theirs. Safe to repeat; the latest learning wins.
    fn learn_agent_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
        agent: &WaId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets a user id (its owner changed it, or changed number). Safe to repeat.
    fn forget_agent_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a message from someone who is not an agent of the line; `reply` is recorded
    /// only for their first message of `day`. `from` is whichever id they have.
    fn record_non_agent(
        &self,
        line: &LineId,
        from: &WhatsAppRecipient,
        wamid: &Wamid,
        day: &str,
        reply: &Job,
    ) -> impl Future<Output = Result<NonAgentOutcome, StoreError>> + Send;
}

/// Where a reply or a status report belongs: lookups by the ids the providers echo back.
pub trait Routing: Send + Sync {
    /// The conversation and agent a forwarded copy went to, by the copy's `wamid`.
    fn find_forwarded_copy(
        &self,
        wamid: &Wamid,
    ) -> impl Future<Output = Result<Option<ForwardedCopy>, StoreError>> + Send;

    /// The conversation a handle (`#VJ`) names on the line.
    fn find_handle(
        &self,
        line: &LineId,
        handle: &Handle,
    ) -> impl Future<Output = Result<Option<ConversationKey>, StoreError>> + Send;

    /// The conversation and leg an SMS went out for, by the provider's id.
    fn find_sent_sms(&self, sid: &str) -> impl Future<Output = Result<Option<SentSmsRecord>, StoreError>> + Send;

    /// An agent's reply's SMS leg: who wrote it, their WhatsApp message, its status so far.
    fn outbound_leg(
        &self,
        conversation: &ConversationKey,
        message_id: &MessageId,
        job_id: &JobId,
    ) -> impl Future<Output = Result<Option<OutboundLeg>, StoreError>> + Send;
}

/// A job's delivery by the worker: the claim, the send's outcome, the give-back.
pub trait Deliveries: Send + Sync {
    /// Reserves `sender`'s next send slot by `domain::pacing::reserve` (`now` when the sender
    /// is idle, up to a burst at once, then spaced). Shared by every worker instance, so
    /// running more of them can't send faster than the provider allows.
    fn reserve_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
    ) -> impl Future<Output = Result<SlotReservation, StoreError>> + Send;

    /// Reserves `sender`'s next slot only if it starts within `within` of `now`
    /// (`domain::pacing::offer`); otherwise reserves nothing and says when it is free.
    fn offer_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
        within: Duration,
    ) -> impl Future<Output = Result<SlotOffer, StoreError>> + Send;

    /// Gives back a reservation, unused (the deadline left no time for the send), if nobody
    /// reserved one after it. Safe to call once per reservation.
    fn give_back_send_slot(
        &self,
        sender: &str,
        slot: SlotReservation,
        pace: SendPace,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the job's leg for sending until `lease_until`, unless it is done or held by
    /// another's live lease. `owner` names the claiming process: its own lease doesn't stop
    /// it, so a job it couldn't give back (the store was down) is resumed by its own retry.
    /// An automated reply's leg is created by its first claim, only while its conversation
    /// exists: else `Claim::Missing`, and nothing written.
    fn claim_job(
        &self,
        job: &Job,
        now: Timestamp,
        lease_until: Timestamp,
        owner: &str,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks the leg sent and records the forwarded copy's `wamid` for reply routing.
    fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the legs of the copies one digest carried sent (`jobs`, forwards to one agent,
    /// the first leading), after the reply-routing record that lists them all (so a
    /// swipe-reply to the digest never reaches one of its customers by mistake).
    fn record_digest_sent(
        &self,
        jobs: &[&Job],
        wamid: &Wamid,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Parks a copy for `agent`'s next digest (`DIGEST#<line>#<agent>`): the agent is at
    /// WhatsApp's pair limit, so whichever copy gets the agent's next slot carries it.
    fn park_copy(
        &self,
        line: &LineId,
        agent: &WaId,
        job: &Job,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Elects the copy that carries `agent`'s digest at the slot starting `slot_at_us`: `true`
    /// for the first to ask for that slot (and for it again), `false` for any other.
    fn elect_digest_carrier(
        &self,
        line: &LineId,
        agent: &WaId,
        slot_at_us: i64,
        job: &JobId,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The copies parked for `agent`, oldest first.
    fn parked_copies(&self, line: &LineId, agent: &WaId) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Takes copies off `agent`'s parking (sent, or done another way).
    fn unpark_copies(
        &self,
        line: &LineId,
        agent: &WaId,
        jobs: &[JobId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks an SMS leg sent and records the provider's id for its status callbacks.
    fn record_sms_sent(
        &self,
        job: &Job,
        sid: &str,
        status: Option<DeliveryStatus>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks a notice (or any standalone job) sent.
    fn record_job_sent(
        &self,
        job: &Job,
        provider_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends the leg as failed, recording `notices` to send about it in the same write.
    fn record_job_failed(
        &self,
        job: &Job,
        failure: &LegFailure,
        notices: &[Job],
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the leg back for a later attempt, noting why this one failed: it certainly sent
    /// nothing.
    fn release_job(
        &self,
        job: &Job,
        failure: &LegFailure,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a claimed leg back untried (the deadline came before its send could start): free
    /// again, its last error kept, and the claim not counted as an attempt (the claim
    /// added one).
    fn hand_back_untried(&self, job: &Job, now: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the leg back as `uncertain`: an attempt that began at `since` may have been
    /// accepted by the provider, so the next delivery finds out before sending again.
    fn mark_job_uncertain(
        &self,
        job: &Job,
        failure: &LegFailure,
        since: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The job's leg as recorded (state, delivery status, last failure), wherever it is kept:
    /// its message, or its own item for notices and automated replies. `None` when there is
    /// none (the message was erased or expired). `bridge-ops dlq list` shows why a parked job
    /// failed from it.
    fn job_leg(&self, job: &Job) -> impl Future<Output = Result<Option<ThreadLeg>, StoreError>> + Send;
}

/// What status reports change on a leg: its status (forward only), the id a lost answer
/// carried, and the legs a 131047 re-send adds.
pub trait StatusLog: Send + Sync {
    /// Moves a leg's delivery status forward only (`domain::status`), recording `notices` with the
    /// change; a status that doesn't advance changes nothing. `provider_id` is kept on a leg
    /// that has none yet: a report on a send whose answer was lost tells the worker it went.
    fn advance_leg_status(
        &self,
        leg: &LegAddress,
        status: DeliveryStatus,
        error_code: Option<i64>,
        provider_id: Option<&str>,
        notices: &[Job],
        now: Timestamp,
    ) -> impl Future<Output = Result<StatusChange, StoreError>> + Send;

    /// A status report names a job whose send went out as `provider_id`: keep it on the leg
    /// if the leg isn't finished, so its next delivery records it instead of sending again.
    /// `true` if the leg took it.
    fn note_sent_as(
        &self,
        leg: &LegRef,
        provider_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Routes agents' swipe-replies to `wamid` to the copy's conversation (`WAMID#`): what
    /// recording a forwarded copy writes, for a copy a status report told us about first.
    fn record_copy_route(
        &self,
        copy: &ForwardedCopy,
        wamid: &Wamid,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds `job`'s leg (queued) to the message it delivers, unless the message has it
    /// already; for a copy forwarded again as the template.
    fn add_leg(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Of these standalone jobs (notices), the ones still waiting to be sent.
    fn unsent_jobs(&self, jobs: &[Job]) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;
}

/// The whole store, every role: what a function wires once and hands to its use cases,
/// each of which asks only for the roles it uses.
pub trait ConversationStore: InboundLog + Conversations + Agents + Routing + Deliveries + StatusLog {}

impl<S: InboundLog + Conversations + Agents + Routing + Deliveries + StatusLog> ConversationStore for S {}

/// Jobs recorded with what caused them, waiting for the sweep to offer them to the queue
/// again (docs/guarantees.md, "Recorded means delivered").
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: String,
    pub jobs: Vec<Job>,
}

/// The outbox: every write that records jobs puts an entry holding them; the sweep re-offers
/// each entry once its grace has passed, then clears it.
pub trait Outbox: Send + Sync {
    /// Entries recorded before `recorded_before`, oldest first, at most `limit`.
    fn due_outbox(
        &self,
        recorded_before: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;

    /// Forgets entries whose jobs are on the queue.
    fn clear_outbox(&self, ids: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("delivery queue unavailable: {0}")]
pub struct QueueError(pub String);

pub trait DeliveryQueue: Send + Sync {
    /// Enqueues every job or fails; a partial success is retried inside. Jobs of one
    /// [`Job::order_group`] are delivered in the order enqueued.
    fn enqueue(&self, jobs: &[Job]) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Makes a received job reappear only after `delay` (the retry's backoff).
    fn postpone(&self, receipt_handle: &str, delay: Duration) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Puts a received message on the dead-letter queue for an operator, as it was.
    fn dead_letter(
        &self,
        body: &str,
        group: Option<&str>,
        id: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

pub trait WhatsAppClient: Send + Sync {
    /// Sends `message`; `tracking` ([`crate::domain::SendTracking`]) comes back on its status
    /// webhooks, so a send whose answer was lost can be found.
    fn send(
        &self,
        from: &PhoneNumberId,
        to: &WhatsAppRecipient,
        message: &WhatsAppMessage,
        tracking: Option<&str>,
    ) -> impl Future<Output = Result<Wamid, ProviderFailure>> + Send;
}

/// What an SMS provider answered to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedSms {
    /// The provider's id (Twilio: the `SM…` sid; AWS: the `MessageId`), which its status
    /// reports carry.
    pub id: String,
    pub status: Option<DeliveryStatus>,
}

/// What a send carries so that its delivery reports find their job even before the worker
/// records the provider's id: Twilio's `StatusCallback` URL names it (`?job=`), AWS's
/// `Context` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsTracking<'a> {
    pub job: &'a JobId,
    /// `PUBLIC_BASE_URL/sms/status?job=<job>`.
    pub status_callback: &'a str,
}

/// What the provider says it holds for an uncertain send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentLookup {
    /// The matching messages, newest first (none: it was not sent).
    Listed(Vec<AcceptedSms>),
    /// The provider keeps no list to ask (AWS End User Messaging SMS): only a delivery
    /// report naming the job can tell.
    Unsupported,
}

/// Sends SMS. Nothing outside the adapter knows which provider it is.
pub trait SmsProvider: Send + Sync {
    fn send(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        media_urls: &[String],
        tracking: Option<SmsTracking<'_>>,
    ) -> impl Future<Output = Result<AcceptedSms, ProviderFailure>> + Send;

    /// The messages the provider holds from `from` to `to` with exactly `body`, created at or
    /// after `since`, newest first: how the worker learns whether an attempt whose answer
    /// was lost went out, before it sends again.
    fn find_sent(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<SentLookup, ProviderFailure>> + Send;
}

/// The text of the lines' SSM parameter (`BRIDGE_LINES_PARAM`) and the version SSM gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinesDocument {
    pub json: String,
    /// SSM's version of the parameter: it goes up by one with every write.
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LinesParameterError {
    #[error("the parameter doesn't exist")]
    NotFound,
    /// Throttled, refused (permissions, KMS), unreachable: the last lines read stay in force.
    #[error("SSM didn't answer with the parameter: {0}")]
    Unavailable(String),
}

/// The boxed future [`LinesParameter::read`] answers with: the port is held as a trait object
/// so that the three functions' handlers don't each grow a type parameter for it.
pub type LinesRead<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<LinesDocument, LinesParameterError>> + Send + 'a>>;

/// Where a running function reads the lines again (`app::live_lines`): the SSM parameter
/// the cold start read them from.
pub trait LinesParameter: Send + Sync {
    fn read(&self) -> LinesRead<'_>;
}
