//! What the twin keeps: one record per kind of DynamoDB item, with the attributes the ports
//! read back. Times the adapter keeps as epoch milliseconds (`*_ms`) are kept the same way,
//! so they come back truncated to the millisecond, as from the table.

use std::collections::HashMap;

use jiff::Timestamp;
use shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION;
use shared::domain::retention;
use shared::domain::routing::Focus;
use shared::domain::{Attachment, ConversationKey, DeliveryStatus, E164, Handle, Job, JobId, LegState, LineId, Wamid};
use shared::domain::{JobKind, MessageId, WaId};
use shared::ports::{
    ConversationSummary, Direction, LegFailure, LegFailureRecord, OutboxEntry, PendingText, PriorDelivery, ThreadLeg,
    ThreadMessage,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConversationStatus {
    Open,
    Closed,
}

/// A conversation's `META` item.
#[derive(Debug, Clone)]
pub(super) struct ConversationRecord {
    pub(super) handle: Handle,
    pub(super) status: ConversationStatus,
    /// `GSI1SK`: the last customer activity (or an agent's start), sortable epoch ms. Only
    /// open conversations are in the index.
    pub(super) activity_ms: i64,
    pub(super) last_text: String,
    pub(super) opted_out: bool,
    pub(super) claimed_by_name: Option<String>,
    pub(super) claimed_by: Option<WaId>,
    /// `META`'s copy of its handle's expiry (`domain::retention`).
    pub(super) handle_expires_at: Timestamp,
}

impl ConversationRecord {
    /// Whether the handle is due for renewal now, by the adapter's rule and retention.
    pub(super) fn handle_renewal_due(&self) -> bool {
        retention::handle_renewal_due(Some(self.handle_expires_at), Timestamp::now(), DEFAULT_MESSAGE_RETENTION)
    }

    pub(super) fn summary(&self, key: &ConversationKey) -> ConversationSummary {
        ConversationSummary {
            handle_renewal_due: self.handle_renewal_due(),
            key: key.clone(),
            handle: self.handle.clone(),
            open: self.status == ConversationStatus::Open,
            last_text: self.last_text.clone(),
            opted_out: self.opted_out,
            claimed_by: self.claimed_by_name.clone(),
            claimer: self.claimed_by.clone(),
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone)]
pub(super) enum Author {
    Customer,
    /// An agent's reply, with what its status reports need.
    Agent {
        agent: WaId,
        agent_wamid: Wamid,
        handle: Handle,
    },
}

/// A `MSG#` item: a message and its legs.
#[derive(Debug, Clone)]
pub(super) struct MessageRecord {
    pub(super) author: Author,
    pub(super) body: String,
    pub(super) attachments: Vec<Attachment>,
    /// `received_at`: when the customer's message arrived or the agent's was sent.
    pub(super) at: Timestamp,
    pub(super) legs: HashMap<JobId, Leg>,
}

impl MessageRecord {
    pub(super) fn thread_message(&self, message_id: &MessageId) -> ThreadMessage {
        let (direction, agent) = match &self.author {
            Author::Customer => (Direction::Inbound, None),
            Author::Agent { agent, .. } => (Direction::Outbound, Some(agent.clone())),
        };
        let mut legs: Vec<ThreadLeg> = self.legs.iter().map(|(job_id, leg)| leg.thread_leg(job_id)).collect();
        legs.sort_by(|a, b| a.job_id.as_str().cmp(b.job_id.as_str()));
        ThreadMessage {
            message_id: message_id.clone(),
            direction,
            agent,
            body: self.body.clone(),
            attachments: self.attachments.clone(),
            at: self.at,
            legs,
        }
    }
}

/// A job's progress (`legs.<job_id>`), with the attributes the adapter's conditions test.
#[derive(Debug, Clone)]
pub(super) struct Leg {
    pub(super) kind: JobKind,
    pub(super) to: String,
    pub(super) state: LegState,
    /// Claims so far.
    pub(super) attempts: u32,
    pub(super) lease_until_ms: Option<i64>,
    /// Who claimed it last; kept after the lease ends, as in the table.
    pub(super) lease_owner: Option<String>,
    pub(super) claimed_at_ms: Option<i64>,
    pub(super) uncertain_since_ms: Option<i64>,
    pub(super) provider_id: Option<String>,
    pub(super) status: Option<DeliveryStatus>,
    pub(super) error: Option<LegFailureRecord>,
}

impl Leg {
    /// A new leg, before any attempt (`dynamodb/attrs.rs`'s `new_leg`).
    pub(super) fn new(job: &Job) -> Self {
        Self {
            kind: job.kind(),
            to: job.recipient().to_owned(),
            state: LegState::Queued,
            attempts: 0,
            lease_until_ms: None,
            lease_owner: None,
            claimed_at_ms: None,
            uncertain_since_ms: None,
            provider_id: None,
            status: None,
            error: None,
        }
    }

    pub(super) fn thread_leg(&self, job_id: &JobId) -> ThreadLeg {
        ThreadLeg {
            job_id: job_id.clone(),
            kind: self.kind,
            to: self.to.clone(),
            state: self.state,
            status: self.status,
            provider_id: self.provider_id.clone(),
            error: self.error.clone(),
        }
    }

    /// Done: sent as `provider_id` (`dynamodb/legs.rs`'s `sent_write`).
    pub(super) fn mark_sent(&mut self, provider_id: &str) {
        self.state = LegState::Sent;
        self.provider_id = Some(provider_id.to_owned());
        self.lease_until_ms = None;
        self.error = None;
        self.uncertain_since_ms = None;
    }

    /// Leaves `state` with `failure` recorded, and the lease ended.
    pub(super) fn give_back(&mut self, state: LegState, failure: &LegFailure) {
        self.state = state;
        self.error =
            Some(LegFailureRecord { class: failure.class, code: failure.code, reason: failure.reason.clone() });
        self.lease_until_ms = None;
    }
}

/// An agent's `AGENT#` item.
#[derive(Debug, Clone, Default)]
pub(super) struct AgentRecord {
    pub(super) focus: Option<FocusRecord>,
    pub(super) pending: Option<PendingText>,
    pub(super) last_inbound_at_ms: Option<i64>,
    pub(super) window_closed_at_ms: Option<i64>,
}

/// The focus as the agent's item keeps it: the line is the agent's.
#[derive(Debug, Clone)]
pub(super) struct FocusRecord {
    pub(super) customer: E164,
    pub(super) handle: Handle,
    pub(super) since_ms: i64,
}

impl FocusRecord {
    pub(super) fn focus(&self, line: &LineId) -> Option<Focus> {
        Some(Focus {
            conversation: ConversationKey { line: line.clone(), customer: self.customer.clone() },
            handle: self.handle.clone(),
            since: from_ms(self.since_ms)?,
        })
    }
}

/// A `SEEN#` dedupe marker: what the first recording produced, for replays.
#[derive(Debug, Clone)]
pub(super) struct SeenMarker {
    pub(super) message_id: Option<MessageId>,
    pub(super) jobs: Vec<Job>,
}

impl SeenMarker {
    pub(super) fn prior(&self) -> PriorDelivery {
        PriorDelivery { message_id: self.message_id.clone(), jobs: self.jobs.clone() }
    }
}

/// An `OUTBOX#` entry.
#[derive(Debug, Clone)]
pub(super) struct OutboxRecord {
    /// A UUIDv7 without hyphens, as the adapter's.
    pub(super) id: String,
    /// When recorded, sortable epoch ms (`GSI2SK`'s first half).
    pub(super) recorded_ms: i64,
    pub(super) jobs: Vec<Job>,
}

impl OutboxRecord {
    /// `GSI2SK`'s order: recorded time, then id.
    pub(super) fn sort_key(&self) -> (i64, &str) {
        (self.recorded_ms, &self.id)
    }

    pub(super) fn entry(&self) -> OutboxEntry {
        OutboxEntry { id: self.id.clone(), jobs: self.jobs.clone() }
    }
}

/// A time as the index sort keys hold it (`dynamodb/attrs.rs`'s `sortable_time`): epoch ms,
/// never below zero.
pub(super) fn sortable_ms(at: Timestamp) -> i64 {
    at.as_millisecond().max(0)
}

/// A time read back from epoch milliseconds.
pub(super) fn from_ms(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}
