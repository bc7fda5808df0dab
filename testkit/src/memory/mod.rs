//! `MemoryStore`, the in-memory twin of the DynamoDB store (`shared::adapters::dynamodb`),
//! and `MemoryQueue`, the twin of the SQS delivery queue.
//!
//! The twin keeps one record per kind of DynamoDB item (`records.rs`), holding only what the
//! ports read back, and answers every method of every role as the adapter does: the same
//! outcomes, the same leases, the same forward-only statuses, the same outbox entries. Where
//! the adapter writes with a condition or a transaction, the twin checks every condition
//! first and then writes everything, under one mutex (`transaction.rs`); nothing awaits.
//!
//! One file per role, as in the adapter: `inbound.rs`, `conversations.rs`, `agents.rs`,
//! `routing.rs`, `deliveries.rs` (its `legs.rs`), `statuses.rs`, `outbox.rs`; and
//! `queue.rs` for the queue.
//!
//! Faults for tests (`faults.rs`): [`MemoryStore::fail_next`] refuses calls of one operation
//! before they change anything, [`MemoryStore::lose_next_answer`] applies them and then
//! reports an error, as a write whose answer was lost on the way back.
//!
//! Not modelled: TTL expiry (nothing expires within a test; DynamoDB's reads don't filter
//! expired items either), attributes nothing reads back (`updated_at`, `profile_name`,
//! `via`, `status_code`, ...), and DynamoDB's size and transaction-length limits.

mod agents;
mod conversations;
mod deliveries;
mod faults;
mod inbound;
mod lines_parameter;
mod outbox;
mod queue;
mod records;
mod routing;
mod statuses;
mod transaction;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use shared::domain::{
    ConversationKey, Handle, Job, JobId, LegLocation, LineId, MessageId, UserId, WaId, Wamid, WhatsAppRecipient,
};
use shared::ports::{ForwardedCopy, OutboxEntry, SentSmsRecord, StoreError, ThreadLeg};

pub use faults::StoreOp;
pub use lines_parameter::MemoryLinesParameter;
pub use queue::{DeadLetter, MemoryQueue, Postponed};

use faults::{Fault, Faults};
use records::{AgentRecord, ConversationRecord, Leg, MessageRecord, OutboxRecord, SeenMarker};

/// The conversation store in memory: every role of `shared::ports`'s store, plus the outbox.
/// Clones share one state, as handles on one table do.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// Everything the table would hold, by item kind (`dynamodb/mod.rs`'s table), and the faults
/// to inject.
#[derive(Default)]
struct State {
    /// `CONV#…` / `META`.
    conversations: HashMap<ConversationKey, ConversationRecord>,
    /// `CONV#…` / `MSG#<id>`, in sort-key order.
    messages: HashMap<ConversationKey, BTreeMap<MessageId, MessageRecord>>,
    /// `HANDLE#<line>#<handle>`.
    handles: HashMap<(LineId, Handle), ConversationKey>,
    /// `WAMID#<wamid>`: forwarded copies, for swipe-replies.
    copies: HashMap<Wamid, ForwardedCopy>,
    /// `SMS#<provider id>`.
    sent_sms: HashMap<String, SentSmsRecord>,
    /// `SEEN#<provider>#<id>`: dedupe markers.
    seen: HashMap<(String, String), SeenMarker>,
    /// `AGENT#<line>#<wa_id>`.
    agents: HashMap<(LineId, WaId), AgentRecord>,
    /// `JOB#<job_id>`: standalone jobs' legs (notices, automated replies).
    standalone_legs: HashMap<JobId, Leg>,
    /// `OUTBOX#<id>`.
    outbox: Vec<OutboxRecord>,
    /// `DIGEST#<line>#<agent>`: copies parked for the agent's next digest, with when (ms).
    parked: HashMap<(LineId, WaId), Vec<(i64, Job)>>,
    /// `DIGEST#<line>#<agent>` / `CARRIER`: the slot of the agent's next digest, and its carrier.
    digest_carriers: HashMap<(LineId, WaId), (i64, JobId)>,
    /// `PACE#<sender>`: when each sender may send next, in microseconds.
    send_slots: HashMap<String, i64>,
    /// `DUTY#<line>`: the agents away.
    away: HashMap<LineId, BTreeSet<WaId>>,
    /// `AGENTID#<line>#<user_id>`: agents' learnt user ids.
    agent_user_ids: HashMap<(LineId, UserId), WaId>,
    /// `NONAGENT#<line>#<id>#<day>`.
    non_agent_replies: HashSet<(LineId, WhatsAppRecipient, String)>,
    faults: Faults,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `times` calls of `op` fail with `StoreError::Unavailable("injected")` and
    /// change nothing.
    pub fn fail_next(&self, op: StoreOp, times: usize) {
        self.lock().faults.fail_next(op, times);
    }

    /// The next `times` calls of `op` are applied, then fail with
    /// `StoreError::Unavailable("injected")`: a write that happened but whose answer was lost.
    pub fn lose_next_answer(&self, op: StoreOp, times: usize) {
        self.lock().faults.lose_next_answer(op, times);
    }

    /// How many times `op` was called, failed calls included.
    pub fn calls(&self, op: StoreOp) -> usize {
        self.lock().faults.calls(op)
    }

    /// Marks the agent's window open (SPEC §5.2); an older report never moves it back. The
    /// twin of `DynamoStore::record_agent_inbound`, which tests use to open a window; no
    /// fault is injected here.
    pub async fn record_agent_inbound(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        let mut state = self.lock();
        let record = state.agents.entry((line.clone(), agent.clone())).or_default();
        // same rule as dynamodb/agents.rs: `attribute_not_exists(last_inbound_at_ms) OR
        // last_inbound_at_ms < :at_ms`.
        let at_ms = at.as_millisecond();
        if record.last_inbound_at_ms.is_none_or(|last| last < at_ms) {
            record.last_inbound_at_ms = Some(at_ms);
        }
        Ok(())
    }

    /// How many outbox entries wait for the sweep.
    pub fn outbox_len(&self) -> usize {
        self.lock().outbox.len()
    }

    /// Every outbox entry, due or not, oldest first.
    pub fn outbox_entries(&self) -> Vec<OutboxEntry> {
        let state = self.lock();
        let mut entries: Vec<&OutboxRecord> = state.outbox.iter().collect();
        entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        entries.into_iter().map(OutboxRecord::entry).collect()
    }

    /// `job`'s leg as the thread shows it, wherever it is kept (its message, or its own
    /// `JOB#` item for notices and automated replies, which no thread shows).
    pub fn leg(&self, job: &Job) -> Option<ThreadLeg> {
        self.lock().leg(job).map(|leg| leg.thread_leg(&job.job_id))
    }

    /// How many items the DynamoDB table would hold: to check that a refused write wrote
    /// nothing, as the adapter's tests count the table's items.
    pub fn record_count(&self) -> usize {
        let state = self.lock();
        state.conversations.len()
            + state.messages.values().map(BTreeMap::len).sum::<usize>()
            + state.handles.len()
            + state.copies.len()
            + state.parked.values().map(Vec::len).sum::<usize>()
            + state.sent_sms.len()
            + state.seen.len()
            + state.agents.len()
            + state.standalone_legs.len()
            + state.outbox.len()
            + state.send_slots.len()
            + state.away.len()
            + state.agent_user_ids.len()
            + state.non_agent_replies.len()
    }

    /// A test that panicked while holding the lock leaves consistent state behind (every
    /// write checks before it changes anything), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One call of `op`: counted, refused or answered as the injected faults say, else
    /// `apply`'d to the state under the lock.
    fn run<T>(&self, op: StoreOp, apply: impl FnOnce(&mut State) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut state = self.lock();
        match state.faults.on_call(op) {
            Fault::Fail => Err(faults::injected()),
            Fault::LoseAnswer => {
                // The call's own error, if any, is lost with its answer.
                let _ = apply(&mut state);
                Err(faults::injected())
            }
            Fault::None => apply(&mut state),
        }
    }
}

impl State {
    /// A message item of a conversation.
    fn message_mut(&mut self, conversation: &ConversationKey, message_id: &MessageId) -> Option<&mut MessageRecord> {
        self.messages.get_mut(conversation)?.get_mut(message_id)
    }

    fn message(&self, conversation: &ConversationKey, message_id: &MessageId) -> Option<&MessageRecord> {
        self.messages.get(conversation)?.get(message_id)
    }

    /// Stores a message item, replacing one with the same id (an unconditional put).
    fn put_message(&mut self, conversation: &ConversationKey, message_id: &MessageId, message: MessageRecord) {
        self.messages.entry(conversation.clone()).or_default().insert(message_id.clone(), message);
    }

    /// A job's leg, where `dynamodb/legs.rs`'s `leg_key` finds it.
    fn leg(&self, job: &Job) -> Option<&Leg> {
        match job.leg_location() {
            LegLocation::Message { conversation, message_id } => {
                self.message(conversation, message_id)?.legs.get(&job.job_id)
            }
            LegLocation::Standalone => self.standalone_legs.get(&job.job_id),
        }
    }

    fn leg_mut(&mut self, job: &Job) -> Option<&mut Leg> {
        match job.leg_location() {
            LegLocation::Message { conversation, message_id } => {
                self.message_mut(conversation, message_id)?.legs.get_mut(&job.job_id)
            }
            LegLocation::Standalone => self.standalone_legs.get_mut(&job.job_id),
        }
    }

    /// Whether a standalone job's `JOB#` item exists: its put is conditional on not.
    fn has_standalone(&self, job: &Job) -> bool {
        self.standalone_legs.contains_key(&job.job_id)
    }

    /// Notices' own items, each holding its one queued leg.
    fn put_standalone(&mut self, jobs: &[Job]) {
        for job in jobs {
            self.standalone_legs.insert(job.job_id.clone(), Leg::new(job));
        }
    }
}
