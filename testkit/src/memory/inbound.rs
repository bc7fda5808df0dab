//! Customers' messages: appended to their conversation, or starting it (`dynamodb/inbound.rs`).

use std::collections::HashMap;

use jiff::Timestamp;
use shared::domain::compliance::CustomerKeyword;
use shared::domain::copies::CopyFacts;
use shared::domain::whatsapp_message::truncate_chars;
use shared::domain::{ConversationKey, Handle, LegLocation};
use shared::ports::{AppendOutcome, InboundLog, NewInboundMessage, StartOutcome, StoreError};

use super::records::{Author, ConversationStatus, Leg, MessageRecord, SeenMarker, sortable_ms};
use super::{MemoryStore, State, StoreOp};

/// How much of the last text a conversation keeps for the agents' picker (as the adapter).
const LAST_TEXT_CHARS: usize = 80;

impl InboundLog for MemoryStore {
    async fn append_inbound(&self, message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        self.run(StoreOp::AppendInbound, |state| Ok(state.append_inbound(message, Timestamp::now())))
    }

    async fn copy_facts(&self, conversation: &ConversationKey) -> Result<CopyFacts, StoreError> {
        self.run(StoreOp::CopyFacts, |state| {
            Ok(CopyFacts {
                claimed_by: state.conversations.get(conversation).and_then(|c| c.claimed_by.clone()),
                away: state.away.get(&conversation.line).cloned().unwrap_or_default(),
            })
        })
    }

    async fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        self.run(StoreOp::StartConversation, |state| Ok(state.start_conversation(message, handle, Timestamp::now())))
    }
}

impl State {
    /// `now` is when it is recorded: the outbox entry's time (the adapter's wall clock).
    fn append_inbound(&mut self, message: &NewInboundMessage, now: Timestamp) -> AppendOutcome {
        let seen_key = seen_key(message);
        // The adapter's transaction, its conditions in its order: the dedupe marker is new,
        // then the conversation exists.
        if let Some(seen) = self.seen.get(&seen_key) {
            return AppendOutcome::Duplicate(seen.prior());
        }
        let Some(conversation) = self.conversations.get_mut(&message.conversation) else {
            return AppendOutcome::NoConversation;
        };
        if !message.claim_assumed.holds_for(conversation.claimed_by.as_ref()) {
            return AppendOutcome::ClaimChanged { claimed_by: conversation.claimed_by.clone() };
        }
        // A closed conversation reopens when the customer writes again.
        conversation.status = ConversationStatus::Open;
        conversation.activity_ms = sortable_ms(message.received_at);
        conversation.last_text = last_text(message);
        if let Some(opted_out) = opt_out_change(message) {
            conversation.opted_out = opted_out;
        }
        self.seen.insert(seen_key, seen_marker(message));
        self.put_message(&message.conversation, &message.message_id, message_record(message));
        self.record_outbox(&message.jobs, now);
        AppendOutcome::Appended
    }

    fn start_conversation(&mut self, message: &NewInboundMessage, handle: &Handle, now: Timestamp) -> StartOutcome {
        let key = &message.conversation;
        let seen_key = seen_key(message);
        // The adapter's transaction, its conditions in its order: dedupe marker, conversation,
        // handle, each put only if new.
        if let Some(seen) = self.seen.get(&seen_key) {
            return StartOutcome::Duplicate(seen.prior());
        }
        let activity_ms = sortable_ms(message.received_at);
        let opted_out = opt_out_change(message).unwrap_or(false);
        let reserved = self.reserve_conversation(key, handle, activity_ms, last_text(message), opted_out);
        if reserved != StartOutcome::Started {
            return reserved;
        }
        self.seen.insert(seen_key, seen_marker(message));
        self.put_message(key, &message.message_id, message_record(message));
        self.record_outbox(&message.jobs, now);
        StartOutcome::Started
    }
}

fn seen_key(message: &NewInboundMessage) -> (String, String) {
    (message.provider.to_owned(), message.provider_message_id.clone())
}

fn seen_marker(message: &NewInboundMessage) -> SeenMarker {
    SeenMarker { message_id: Some(message.message_id.clone()), jobs: message.jobs.clone() }
}

fn message_record(message: &NewInboundMessage) -> MessageRecord {
    // same rule as dynamodb/inbound.rs: a standalone job (an automated reply) keeps its leg in
    // its own item, created when first claimed; the dedupe marker and the outbox still hold it.
    let legs: HashMap<_, _> = message
        .jobs
        .iter()
        .filter(|job| matches!(job.leg_location(), LegLocation::Message { .. }))
        .map(|job| (job.job_id.clone(), Leg::new(job)))
        .collect();
    MessageRecord {
        author: Author::Customer,
        body: message.body.clone(),
        attachments: message.attachments.clone(),
        at: message.received_at,
        legs,
    }
}

/// same rule as dynamodb/inbound.rs: STOP sets the conversation's opt-out, START clears it
/// (SPEC §7); nothing else touches it.
fn opt_out_change(message: &NewInboundMessage) -> Option<bool> {
    match message.keyword {
        Some(CustomerKeyword::OptOut) => Some(true),
        Some(CustomerKeyword::OptIn) => Some(false),
        Some(CustomerKeyword::Help) | None => None,
    }
}

/// same rule as dynamodb/inbound.rs: the text, or a count of attachments when there is none.
fn last_text(message: &NewInboundMessage) -> String {
    let text = if message.body.trim().is_empty() && !message.attachments.is_empty() {
        format!("[{} attachment(s)]", message.attachments.len())
    } else {
        message.body.clone()
    };
    truncate_chars(&text, LAST_TEXT_CHARS)
}
