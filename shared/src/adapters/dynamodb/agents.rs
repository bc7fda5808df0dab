//! Agents: their 24 h window, focus and pending text, and their messages recorded once
//! (docs/using.md).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use jiff::Timestamp;

use super::attrs::*;
use super::inbound::prior_from_seen;
use super::{DynamoStore, TransactFailure, build_error, cancelled, failed_condition, reason_item, unavailable};
use crate::domain::routing::Focus;
use crate::domain::{ConversationKey, E164, Handle, Job, LineId, UserId, WaId, Wamid, WhatsAppRecipient};
use crate::ports::{
    AgentEffect, AgentMessageRecord, AgentState, Agents, ForwardContext, NewOutboundMessage, NonAgentOutcome,
    PendingText, RecordOutcome, StoreError,
};

/// A duty roster (who is `/away`) outlives any holiday; each `/away` or `/back` renews it.
const DUTY_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

/// A non-agent's daily marker only needs to outlive its day.
const NON_AGENT_TTL: Duration = Duration::from_secs(2 * 24 * 3600);

/// A learnt user id is learnt again from the agent's next message after a cold start, so it
/// can expire once nobody has used it for long.
const AGENT_USER_ID_TTL: Duration = Duration::from_secs(180 * 24 * 3600);

pub(super) fn duty_pk(line: &LineId) -> String {
    format!("DUTY#{}", line.as_str())
}

/// The agents a duty roster item lists as away.
pub(super) fn away_of(item: &Item) -> Result<BTreeSet<WaId>, StoreError> {
    match item.get("away") {
        Some(AttributeValue::Ss(agents)) => {
            agents.iter().map(|a| WaId::parse(a).map_err(|e| StoreError::Corrupt(e.to_string()))).collect()
        }
        _ => Ok(BTreeSet::new()),
    }
}

fn agent_user_id_pk(line: &LineId, user_id: &UserId) -> String {
    format!("AGENTID#{}#{}", line.as_str(), user_id.as_str())
}

impl Agents for DynamoStore {
    async fn agent_state(&self, line: &LineId, agent: &WaId) -> Result<AgentState, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(agent_pk(line, agent), "AGENT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item;
        let Some(item) = item else {
            return Ok(AgentState::default());
        };
        let focus =
            match (opt_s(&item, "focus_customer"), opt_s(&item, "focus_handle"), timestamp_ms(&item, "focus_at_ms")?) {
                (Some(customer), Some(handle), Some(since)) => Some(Focus {
                    conversation: ConversationKey {
                        line: line.clone(),
                        customer: E164::parse(customer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    },
                    handle: Handle::parse(handle).map_err(StoreError::Corrupt)?,
                    since,
                }),
                _ => None,
            };
        let pending = match (opt_s(&item, "pending_text"), opt_s(&item, "pending_wamid")) {
            (Some(text), Some(wamid)) => {
                Some(PendingText { text: text.to_owned(), wamid: Wamid::parse(wamid).map_err(StoreError::Corrupt)? })
            }
            _ => None,
        };
        Ok(AgentState { focus, pending, last_inbound_at: timestamp_ms(&item, "last_inbound_at_ms")? })
    }

    async fn forward_context(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
    ) -> Result<Option<ForwardContext>, StoreError> {
        let found = self
            .batch_get(
                vec![key(conv_pk(conversation), "META"), key(agent_pk(&conversation.line, agent), "AGENT")],
                true,
            )
            .await?;
        let Some(meta) = found.iter().find(|i| opt_s(i, "SK") == Some("META")) else {
            return Ok(None);
        };
        let handle = Handle::parse(get_s(meta, "handle")?).map_err(StoreError::Corrupt)?;
        let agent_item = found.iter().find(|i| opt_s(i, "SK") == Some("AGENT"));
        let (agent_last_inbound_at, agent_window_closed_at) = match agent_item {
            Some(item) => (timestamp_ms(item, "last_inbound_at_ms")?, timestamp_ms(item, "window_closed_at_ms")?),
            None => (None, None),
        };
        Ok(Some(ForwardContext {
            handle,
            agent_last_inbound_at,
            agent_window_closed_at,
            opted_out: super::conversations::opted_out(meta),
            handle_renewal_due: self.handle_renewal_due(meta),
        }))
    }

    async fn mark_window_closed(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(agent_pk(line, agent), "AGENT")))
            .update_expression("SET window_closed_at_ms = :at_ms, expires_at = :expires")
            .expression_attribute_values(":at_ms", n(at.as_millisecond()))
            .expression_attribute_values(":expires", self.agent_expiry(at))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn record_agent_message(&self, record: &AgentMessageRecord) -> Result<RecordOutcome, StoreError> {
        let now = record.received_at;
        let mut jobs: Vec<Job> = Vec::new();
        let mut message_id = None;
        if let AgentEffect::Reply { message, .. } = &record.effect {
            jobs.extend(message.jobs.iter().cloned());
            message_id = Some(message.message_id.as_str().to_owned());
        }
        jobs.extend(record.notices.iter().cloned());

        let mut seen = HashMap::from([
            pk(seen_pk("whatsapp", record.wamid.as_str())),
            sk("SEEN"),
            ("line".into(), s(record.line.as_str())),
            ("jobs".into(), jobs_value(&jobs)),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, self.dedupe_ttl())),
        ]);
        if let Some(id) = message_id {
            seen.insert("message_id".into(), s(id));
        }
        let mut items = vec![self.put(seen, Some("attribute_not_exists(PK)"))?, self.agent_update(record)?];
        // The conversation's write, if any, comes third: its failed condition means "gone".
        let writes_conversation = matches!(
            record.effect,
            AgentEffect::Reply { .. }
                | AgentEffect::Claim { .. }
                | AgentEffect::Close { .. }
                | AgentEffect::Unclaim { .. }
        );
        match &record.effect {
            AgentEffect::Reply { message, .. } => {
                items.push(self.conversation_touch(message)?);
                items.push(self.put(self.outbound_message_item(message), None)?);
            }
            AgentEffect::Claim { conversation, name, .. } => {
                items.push(self.conversation_claim(conversation, &record.agent, name, now)?);
            }
            AgentEffect::Close { conversation, .. } => items.push(self.conversation_close(conversation, now)?),
            AgentEffect::Unclaim { conversation } => items.push(self.conversation_unclaim(conversation, now)?),
            AgentEffect::OptOut { conversation } => items.push(self.conversation_opt_out(conversation, now)?),
            AgentEffect::Duty { on_duty } => {
                items.push(self.duty_update(&record.line, &record.agent, *on_duty, record.received_at)?)
            }
            _ => {}
        }
        for notice in &record.notices {
            items.push(self.standalone_job_put(notice, now)?);
        }
        items.extend(self.outbox_put(&jobs, now)?);
        match self.transact(items).await {
            Ok(()) => Ok(RecordOutcome::Recorded),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                let found = reason_item(reasons, 0);
                match found {
                    Some(seen) => Ok(RecordOutcome::Duplicate(prior_from_seen(&seen)?)),
                    None => Err(StoreError::Corrupt("dedupe marker without its content".into())),
                }
            }
            Err(TransactFailure::Cancelled(reasons)) if writes_conversation && failed_condition(&reasons, 2) => {
                Ok(RecordOutcome::ConversationGone)
            }
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => Err(e),
        }
    }

    async fn away_agents(&self, line: &LineId) -> Result<BTreeSet<WaId>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(duty_pk(line), "DUTY")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item;
        item.as_ref().map_or(Ok(BTreeSet::new()), away_of)
    }

    async fn agent_by_user_id(&self, line: &LineId, user_id: &UserId) -> Result<Option<WaId>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(agent_user_id_pk(line, user_id), "AGENTID")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item;
        item.as_ref()
            .and_then(|item| opt_s(item, "agent"))
            .map(|agent| WaId::parse(agent).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn learn_agent_user_id(
        &self,
        line: &LineId,
        user_id: &UserId,
        agent: &WaId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let item = HashMap::from([
            pk(agent_user_id_pk(line, user_id)),
            sk("AGENTID"),
            ("agent".into(), s(agent.as_str())),
            ("learnt_at".into(), s(at.to_string())),
            ("expires_at".into(), expires(at, AGENT_USER_ID_TTL)),
        ]);
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn forget_agent_user_id(&self, line: &LineId, user_id: &UserId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(agent_user_id_pk(line, user_id), "AGENTID")))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn record_non_agent(
        &self,
        line: &LineId,
        from: &WhatsAppRecipient,
        wamid: &Wamid,
        day: &str,
        reply: &Job,
    ) -> Result<NonAgentOutcome, StoreError> {
        let now = Timestamp::now();
        let seen = |jobs: &[Job]| {
            HashMap::from([
                pk(seen_pk("whatsapp", wamid.as_str())),
                sk("SEEN"),
                ("line".into(), s(line.as_str())),
                ("non_agent".into(), AttributeValue::Bool(true)),
                ("jobs".into(), jobs_value(jobs)),
                ("created_at".into(), s(now.to_string())),
                ("expires_at".into(), expires(now, self.dedupe_ttl())),
            ])
        };
        let marker = HashMap::from([
            pk(format!("NONAGENT#{}#{}#{day}", line.as_str(), from.as_str())),
            sk("NONAGENT"),
            ("created_at".into(), s(now.to_string())),
            ("expires_at".into(), expires(now, NON_AGENT_TTL)),
        ]);
        let mut items = vec![
            self.put(seen(std::slice::from_ref(reply)), Some("attribute_not_exists(PK)"))?,
            self.put(marker, Some("attribute_not_exists(PK)"))?,
            self.standalone_job_put(reply, now)?,
        ];
        items.extend(self.outbox_put(std::slice::from_ref(reply), now)?);
        match self.transact(items).await {
            Ok(()) => return Ok(NonAgentOutcome::Replied),
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 0) => {
                return Ok(NonAgentOutcome::Duplicate);
            }
            Err(TransactFailure::Cancelled(reasons)) if failed_condition(&reasons, 1) => {}
            Err(TransactFailure::Cancelled(reasons)) => return Err(cancelled(&reasons)),
            Err(TransactFailure::Other(e)) => return Err(e),
        }
        // Already answered today: only remember the message.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(seen(&[])))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(NonAgentOutcome::AlreadyRepliedToday),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if e.err().is_conditional_check_failed_exception() =>
            {
                Ok(NonAgentOutcome::Duplicate)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl DynamoStore {
    /// Marks the agent's window open (docs/using.md); an older report never moves it back.
    pub async fn record_agent_inbound(&self, line: &LineId, agent: &WaId, at: Timestamp) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(agent_pk(line, agent), "AGENT")))
            .update_expression("SET last_inbound_at = :at, last_inbound_at_ms = :at_ms, expires_at = :expires")
            .condition_expression("attribute_not_exists(last_inbound_at_ms) OR last_inbound_at_ms < :at_ms")
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":at_ms", n(at.as_millisecond()))
            .expression_attribute_values(":expires", self.agent_expiry(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if e.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The agent's window, name, and whatever the message changes for them.
    fn agent_update(&self, record: &AgentMessageRecord) -> Result<TransactWriteItem, StoreError> {
        let at = record.received_at;
        let mut set = vec!["last_inbound_at = :at", "last_inbound_at_ms = :at_ms", "expires_at = :expires"];
        let mut remove: Vec<&str> = Vec::new();
        let mut values =
            vec![(":at", s(at.to_string())), (":at_ms", n(at.as_millisecond())), (":expires", self.agent_expiry(at))];
        if let Some(name) = &record.profile_name {
            set.push("profile_name = :name");
            values.push((":name", s(name)));
        }
        let focus = match &record.effect {
            AgentEffect::Reply { message, .. } => Some((&message.conversation.customer, &message.handle)),
            AgentEffect::Focus { conversation, handle } | AgentEffect::Claim { conversation, handle, .. } => {
                Some((&conversation.customer, handle))
            }
            AgentEffect::Pending(_)
            | AgentEffect::Close { .. }
            | AgentEffect::Unclaim { .. }
            | AgentEffect::OptOut { .. }
            | AgentEffect::Duty { .. }
            | AgentEffect::Nothing => None,
        };
        if let Some((customer, handle)) = focus {
            set.extend(["focus_customer = :focus_customer", "focus_handle = :focus_handle", "focus_at_ms = :at_ms"]);
            values.push((":focus_customer", s(customer.as_str())));
            values.push((":focus_handle", s(handle.as_str())));
        }
        match &record.effect {
            AgentEffect::Reply { clear_pending: true, .. } => remove.extend(["pending_text", "pending_wamid"]),
            AgentEffect::Close { unfocus: true, .. } => {
                remove.extend(["focus_customer", "focus_handle", "focus_at_ms"])
            }
            AgentEffect::Pending(pending) => {
                set.extend(["pending_text = :pending_text", "pending_wamid = :pending_wamid"]);
                values.push((":pending_text", s(&pending.text)));
                values.push((":pending_wamid", s(pending.wamid.as_str())));
            }
            _ => {}
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(agent_pk(&record.line, &record.agent), "AGENT")))
            .update_expression(expression);
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(build_error)?).build())
    }

    /// The conversation learns an agent answered; it must still exist.
    fn conversation_touch(&self, message: &NewOutboundMessage) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(&message.conversation), "META")))
            .update_expression(
                "SET last_agent_at = :at, last_agent = :agent, updated_at = :at, expires_at = :expires \
                 ADD message_count :one",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", s(message.sent_at.to_string()))
            .expression_attribute_values(":expires", self.conversation_expiry(message.sent_at))
            .expression_attribute_values(":agent", s(message.agent.as_str()))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An update of the conversation's `META` item, which must still exist: its failed
    /// condition is the transaction's "conversation gone".
    fn conversation_update(
        &self,
        conversation: &ConversationKey,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(conversation), "META")))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK)");
        if expression.contains("#status") {
            update = update.expression_attribute_names("#status", "status");
        }
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(build_error)?).build())
    }

    /// docs/using.md: the conversation is assigned to the agent who pressed Claim.
    fn conversation_claim(
        &self,
        conversation: &ConversationKey,
        agent: &WaId,
        name: &str,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = "SET claimed_by = :agent, claimed_by_name = :name, claimed_at = :at, updated_at = :at";
        let values = vec![(":agent", s(agent.as_str())), (":name", s(name)), (":at", s(now.to_string()))];
        self.conversation_update(conversation, expression, values)
    }

    /// docs/using.md: nobody holds the conversation; its copies go to everyone on duty.
    fn conversation_unclaim(
        &self,
        conversation: &ConversationKey,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = "SET updated_at = :at REMOVE claimed_by, claimed_by_name, claimed_at";
        self.conversation_update(conversation, expression, vec![(":at", s(now.to_string()))])
    }

    /// docs/using.md: opted out as the customer's STOP would (the same attributes).
    fn conversation_opt_out(
        &self,
        conversation: &ConversationKey,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = "SET opted_out = :yes, opt_out_changed_at = :at, updated_at = :at";
        let values = vec![(":yes", AttributeValue::Bool(true)), (":at", s(now.to_string()))];
        self.conversation_update(conversation, expression, values)
    }

    /// Closed: out of the open list (its GSI keys go) until the customer writes again.
    fn conversation_close(
        &self,
        conversation: &ConversationKey,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = "SET #status = :closed, closed_at = :at, updated_at = :at REMOVE GSI1PK, GSI1SK";
        self.conversation_update(conversation, expression, vec![(":closed", s("closed")), (":at", s(now.to_string()))])
    }

    /// The line's duty roster: the set of agents away (a set with no members is no attribute).
    fn duty_update(
        &self,
        line: &LineId,
        agent: &WaId,
        on_duty: bool,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let expression = if on_duty {
            "SET expires_at = :expires DELETE away :agent"
        } else {
            "SET expires_at = :expires ADD away :agent"
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(duty_pk(line), "DUTY")))
            .update_expression(expression)
            .expression_attribute_values(":agent", AttributeValue::Ss(vec![agent.as_str().to_owned()]))
            .expression_attribute_values(":expires", expires(now, DUTY_TTL))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn outbound_message_item(&self, message: &NewOutboundMessage) -> Item {
        HashMap::from([
            pk(conv_pk(&message.conversation)),
            sk(msg_sk(&message.message_id)),
            ("message_id".into(), s(message.message_id.as_str())),
            ("direction".into(), s("outbound")),
            ("agent".into(), s(message.agent.as_str())),
            ("agent_wamid".into(), s(message.agent_wamid.as_str())),
            ("handle".into(), s(message.handle.as_str())),
            ("body".into(), s(&message.body)),
            ("received_at".into(), s(message.sent_at.to_string())),
            (
                "legs".into(),
                AttributeValue::M(
                    message.jobs.iter().map(|job| (job.job_id.as_str().to_owned(), new_leg(job))).collect(),
                ),
            ),
            ("expires_at".into(), expires(message.sent_at, self.message_retention)),
        ])
    }

    /// An agent's item (their window, focus on a customer, a draft) lives as long as messages.
    fn agent_expiry(&self, at: Timestamp) -> AttributeValue {
        expires(at, self.message_retention)
    }
}
