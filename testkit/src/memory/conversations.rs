//! Conversations as agents see them: started by an agent, listed, read as a thread, and the
//! customer's opt-out (`dynamodb/conversations.rs`).

use std::cmp::Reverse;

use jiff::Timestamp;
use shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION;
use shared::domain::retention;
use shared::domain::{ConversationKey, Handle, LineId};
use shared::ports::{ConversationSummary, Conversations, HandleRenewal, StartOutcome, StoreError, ThreadMessage};

use super::records::{ConversationRecord, ConversationStatus, sortable_ms};
use super::{MemoryStore, State, StoreOp};

impl Conversations for MemoryStore {
    async fn start_agent_conversation(
        &self,
        key: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        self.run(StoreOp::StartAgentConversation, |state| Ok(state.start_agent_conversation(key, handle, now)))
    }

    async fn conversation(&self, key: &ConversationKey) -> Result<Option<ConversationSummary>, StoreError> {
        self.run(StoreOp::Conversation, |state| Ok(state.conversations.get(key).map(|record| record.summary(key))))
    }

    async fn open_conversations(&self, line: &LineId, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
        self.run(StoreOp::OpenConversations, |state| state.open_conversations(line, limit))
    }

    async fn thread(&self, conversation: &ConversationKey) -> Result<Vec<ThreadMessage>, StoreError> {
        self.run(StoreOp::Thread, |state| {
            Ok(state
                .messages
                .get(conversation)
                .map(|messages| messages.iter().map(|(id, message)| message.thread_message(id)).collect())
                .unwrap_or_default())
        })
    }

    async fn mark_opted_out(&self, conversation: &ConversationKey, _at: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::MarkOptedOut, |state| {
            // Erased meanwhile: nothing left to mark.
            if let Some(record) = state.conversations.get_mut(conversation) {
                record.opted_out = true;
            }
            Ok(())
        })
    }

    async fn renew_handle(
        &self,
        conversation: &ConversationKey,
        handle: &Handle,
        now: Timestamp,
    ) -> Result<HandleRenewal, StoreError> {
        self.run(StoreOp::RenewHandle, |state| {
            let handle_key = (conversation.line.clone(), handle.clone());
            match state.conversations.get(conversation) {
                Some(record) if record.handle == *handle => {}
                _ => return Ok(HandleRenewal::ConversationGone),
            }
            if state.handles.get(&handle_key).is_some_and(|owner| owner != conversation) {
                return Ok(HandleRenewal::HandleTaken);
            }
            state.handles.insert(handle_key, conversation.clone());
            if let Some(record) = state.conversations.get_mut(conversation) {
                record.handle_expires_at = retention::handle_expires_at(now, DEFAULT_MESSAGE_RETENTION);
            }
            Ok(HandleRenewal::Renewed)
        })
    }
}

impl State {
    /// The conversation and its handle, reserved together; no message yet.
    fn start_agent_conversation(&mut self, key: &ConversationKey, handle: &Handle, now: Timestamp) -> StartOutcome {
        self.reserve_conversation(key, handle, sortable_ms(now), String::new(), false)
    }

    /// The conversation and its handle, put together only if both are new (the adapter's
    /// conditions, in its order: the conversation, then the handle).
    pub(super) fn reserve_conversation(
        &mut self,
        key: &ConversationKey,
        handle: &Handle,
        activity_ms: i64,
        last_text: String,
        opted_out: bool,
    ) -> StartOutcome {
        let handle_key = (key.line.clone(), handle.clone());
        if self.conversations.contains_key(key) {
            return StartOutcome::ConversationExists;
        }
        if self.handles.contains_key(&handle_key) {
            return StartOutcome::HandleTaken;
        }
        let record = ConversationRecord {
            handle: handle.clone(),
            status: ConversationStatus::Open,
            activity_ms,
            last_text,
            opted_out,
            claimed_by_name: None,
            claimed_by: None,
            handle_expires_at: retention::handle_expires_at(
                Timestamp::from_millisecond(activity_ms).unwrap_or(Timestamp::UNIX_EPOCH),
                DEFAULT_MESSAGE_RETENTION,
            ),
        };
        self.conversations.insert(key.clone(), record);
        self.handles.insert(handle_key, key.clone());
        StartOutcome::Started
    }

    /// The `GSI1` query: the line's open conversations, the latest activity first.
    fn open_conversations(&self, line: &LineId, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
        if limit == 0 {
            // DynamoDB refuses a query's `Limit` below 1.
            return Err(StoreError::Rejected("ValidationException: Limit must be at least 1".into()));
        }
        let mut open: Vec<(&ConversationKey, &ConversationRecord)> = self
            .conversations
            .iter()
            .filter(|(key, record)| key.line == *line && record.status == ConversationStatus::Open)
            .collect();
        // Equal activity times: by key, as the emulator orders index ties (DynamoDB doesn't say).
        open.sort_by_key(|(key, record)| Reverse((record.activity_ms, key.customer.as_str())));
        Ok(open.into_iter().take(limit).map(|(key, record)| record.summary(key)).collect())
    }
}
