//! A WhatsApp message or status reaches the line's number (SPEC §5, §8).
//!
//! From an agent: their window is recorded, the message is routed (`domain::routing`) and
//! either relayed to the customer as an SMS job, or answered with a notice. From anyone
//! else: at most one polite reply a day, nothing relayed. Everything is recorded once per
//! `wamid`, atomically with its effects; the webhook only stores and enqueues.

use jiff::Timestamp;

use crate::domain::notices;
use crate::domain::routing::{AgentText, HandleLookup, Route, RouteRule, RoutingFacts, decide};
use crate::domain::sms_text::{SmsCost, cost, smart_encode, split_for_provider};
use crate::domain::whatsapp_message::{PickableConversation, picked_handle};
use crate::domain::whatsapp_text::strip_formatting;
use crate::domain::{
    ConversationKey, DeliveryStatus, Handle, InboundWhatsApp, Job, JobId, JobPayload, Line, MessageId, SendSms,
    WhatsAppContent, WhatsAppMessage, WhatsAppStatusReport,
};
use crate::ports::{
    AgentEffect, AgentMessageRecord, ConversationStore, DeliveryQueue, LegAddress, NewOutboundMessage, NonAgentOutcome,
    PendingText, QueueError, RecordOutcome, StatusChange, StoreError,
};

/// Rows in the "which conversation?" list (the Cloud API's maximum).
const PICKER_ROWS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageHandled {
    Relayed {
        conversation: ConversationKey,
        rule: RouteRule,
    },
    /// The agent was asked which conversation; their text waits for the answer.
    AskedWhich,
    /// The agent's focus moved.
    Focused,
    /// Recorded, not relayed (a reaction, media, a command...); the agent was told if useful.
    NotRelayed {
        why: &'static str,
    },
    Duplicate,
    NonAgent {
        replied: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("recorded, but not enqueued: {0}")]
    Queue(#[from] QueueError),
}

pub async fn receive_whatsapp_message<S: ConversationStore, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    line: &Line,
    profile_name: Option<String>,
    message: InboundWhatsApp,
    now: Timestamp,
) -> Result<MessageHandled, HandleError> {
    if !line.agents.contains(&message.from) {
        return non_agent(store, queue, line, &message, now).await;
    }
    let plan = plan(store, line, &message, now).await?;
    let mut record = AgentMessageRecord {
        line: line.id.clone(),
        agent: message.from.clone(),
        wamid: message.wamid.clone(),
        received_at: now,
        profile_name,
        effect: plan.effect,
        notices: plan.notices,
    };
    match store.record_agent_message(&record).await? {
        RecordOutcome::Recorded => {
            queue.enqueue(&jobs_of(&record)).await?;
            Ok(plan.outcome)
        }
        RecordOutcome::Duplicate(prior) => {
            // The first attempt may have stopped before enqueueing: offer its jobs again
            // (each is sent at most once).
            queue.enqueue(&prior.jobs).await?;
            Ok(MessageHandled::Duplicate)
        }
        RecordOutcome::ConversationGone => {
            let handle = match &record.effect {
                AgentEffect::Reply { message, .. } => Some(message.handle.clone()),
                _ => None,
            };
            record.effect = AgentEffect::Nothing;
            record.notices = vec![notice(line, &message, "gone", notices::conversation_gone(handle.as_ref()))];
            match store.record_agent_message(&record).await? {
                RecordOutcome::Recorded => queue.enqueue(&record.notices).await?,
                RecordOutcome::Duplicate(prior) => queue.enqueue(&prior.jobs).await?,
                RecordOutcome::ConversationGone => {}
            }
            Ok(MessageHandled::NotRelayed { why: "conversation_gone" })
        }
    }
}

/// A delivery report on something the line sent. Only forwarded copies are tracked; reports
/// on the bridge's own notices are acknowledged and dropped.
pub async fn receive_whatsapp_status<S: ConversationStore>(
    store: &S,
    report: &WhatsAppStatusReport,
    now: Timestamp,
) -> Result<Option<StatusChange>, StoreError> {
    let Some(status) = DeliveryStatus::parse(&report.status) else {
        return Ok(None);
    };
    let Some(copy) = store.find_forwarded_copy(&report.wamid).await? else {
        return Ok(None);
    };
    let leg = LegAddress { conversation: copy.conversation, message_id: copy.message_id, job_id: copy.job_id };
    let change = store.advance_leg_status(&leg, status, report.error_code, &[], now).await?;
    Ok(Some(change))
}

struct Plan {
    effect: AgentEffect,
    notices: Vec<Job>,
    outcome: MessageHandled,
}

impl Plan {
    fn told(line: &Line, message: &InboundWhatsApp, why: &'static str, text: WhatsAppMessage) -> Self {
        Self {
            effect: AgentEffect::Nothing,
            notices: vec![notice(line, message, why, text)],
            outcome: MessageHandled::NotRelayed { why },
        }
    }

    fn silent(why: &'static str) -> Self {
        Self { effect: AgentEffect::Nothing, notices: Vec::new(), outcome: MessageHandled::NotRelayed { why } }
    }
}

async fn plan<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    match &message.content {
        // SPEC §5.7: reactions are never relayed.
        WhatsAppContent::Reaction { .. } => Ok(Plan::silent("reaction")),
        WhatsAppContent::Media { kind, .. } => {
            Ok(Plan::told(line, message, "media", notices::only_text_is_relayed(kind)))
        }
        WhatsAppContent::Unsupported { .. } => Ok(Plan::silent("unsupported")),
        // Reply buttons (`act:…`) arrive with SPEC §5.5.
        WhatsAppContent::ButtonReply { .. } => Ok(Plan::told(line, message, "button", notices::how_to_answer())),
        WhatsAppContent::ListReply { id, .. } => picked(store, line, message, id, now).await,
        WhatsAppContent::Text(body) => route_text(store, line, message, body, now).await,
    }
}

async fn route_text<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    body: &str,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let text = AgentText::parse(body);
    let mut facts = RoutingFacts::default();
    // Looked up in precedence order, and only as far as needed.
    if let Some(quoted) = &message.context {
        facts.replied_to = store
            .find_forwarded_copy(quoted)
            .await?
            .filter(|copy| copy.conversation.line == line.id)
            .map(|copy| copy.conversation);
    }
    if facts.replied_to.is_none()
        && let Some(handle) = &text.handle
    {
        facts.handle = Some(match store.find_handle(&line.id, handle).await? {
            Some(conversation) => HandleLookup::Found(conversation),
            None => HandleLookup::Unknown(handle.clone()),
        });
    }
    if facts.replied_to.is_none() && facts.handle.is_none() && text.command.is_none() {
        facts.focus = store.agent_state(&line.id, &message.from).await?.focus;
    }
    match decide(&text, facts, line.focus_hours, now) {
        Route::Relay { conversation, text, rule } => {
            let Some(summary) = store.conversation(&conversation).await? else {
                return Ok(Plan::told(line, message, "conversation_gone", notices::conversation_gone(None)));
            };
            if summary.opted_out {
                let text = notices::customer_opted_out(&summary.handle, &message.wamid);
                return Ok(Plan::told(line, message, "opted_out", text));
            }
            Ok(reply(line, message, conversation, summary.handle, &text, message.wamid.clone(), false, rule, now))
        }
        Route::Focus { conversation } => {
            let Some(summary) = store.conversation(&conversation).await? else {
                return Ok(Plan::told(line, message, "conversation_gone", notices::conversation_gone(None)));
            };
            let text = notices::now_answering(&summary.handle, &conversation.customer);
            Ok(Plan {
                effect: AgentEffect::Focus { conversation, handle: summary.handle },
                notices: vec![notice(line, message, "focus", text)],
                outcome: MessageHandled::Focused,
            })
        }
        // Commands arrive with SPEC §5.4.3; until then, say how to answer.
        Route::Command(_) => Ok(Plan::told(line, message, "command", notices::how_to_answer())),
        Route::AskWhich { text, unknown_handle } => {
            let open = store.open_conversations(&line.id, PICKER_ROWS).await?;
            if open.is_empty() {
                return Ok(Plan::told(
                    line,
                    message,
                    "no_open_conversation",
                    notices::no_open_conversation(unknown_handle.as_ref()),
                ));
            }
            let pickable: Vec<PickableConversation> = open
                .into_iter()
                .map(|c| PickableConversation { handle: c.handle, customer: c.key.customer, last_text: c.last_text })
                .collect();
            let picker = notices::which_conversation(unknown_handle.as_ref(), &text, &pickable);
            Ok(Plan {
                effect: AgentEffect::Pending(PendingText { text, wamid: message.wamid.clone() }),
                notices: vec![notice(line, message, "which", picker)],
                outcome: MessageHandled::AskedWhich,
            })
        }
    }
}

/// The agent picked a conversation from the list: send what was waiting, or just focus.
async fn picked<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    row_id: &str,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let Some(handle) = picked_handle(row_id) else {
        return Ok(Plan::silent("unknown_list_reply"));
    };
    let Some(conversation) = store.find_handle(&line.id, &handle).await? else {
        return Ok(Plan::told(line, message, "conversation_gone", notices::conversation_gone(Some(&handle))));
    };
    match store.agent_state(&line.id, &message.from).await?.pending {
        Some(pending) => {
            Ok(reply(line, message, conversation, handle, &pending.text, pending.wamid, true, RouteRule::Handle, now))
        }
        None => {
            let text = notices::now_answering(&handle, &conversation.customer);
            Ok(Plan {
                effect: AgentEffect::Focus { conversation, handle },
                notices: vec![notice(line, message, "focus", text)],
                outcome: MessageHandled::Focused,
            })
        }
    }
}

/// The agent's text, formatting removed, as an SMS job recorded in the thread.
#[allow(clippy::too_many_arguments)] // everything a reply is made of
fn reply(
    line: &Line,
    message: &InboundWhatsApp,
    conversation: ConversationKey,
    handle: Handle,
    text: &str,
    agent_wamid: crate::domain::Wamid,
    clear_pending: bool,
    rule: RouteRule,
    now: Timestamp,
) -> Plan {
    let mut body = strip_formatting(text).trim().to_owned();
    if body.is_empty() {
        return Plan::told(line, message, "empty", notices::nothing_to_send());
    }
    if line.smart_encoding {
        body = smart_encode(&body).into_owned();
    }
    let message_id = MessageId::new_v7();
    let parts = split_for_provider(&body);
    let jobs: Vec<Job> = parts
        .iter()
        .enumerate()
        .map(|(leg, part)| Job {
            job_id: JobId::for_leg(&message_id, leg),
            attempt: 0,
            payload: JobPayload::SendSms(SendSms {
                conversation: conversation.clone(),
                message_id: message_id.clone(),
                agent: message.from.clone(),
                agent_wamid: agent_wamid.clone(),
                text: part.clone(),
            }),
        })
        .collect();
    // SPEC §6: a reply that costs more than the line's threshold is sent, and the agent
    // learns what it cost and why (usually one character forcing UCS-2).
    let costs: Vec<SmsCost> = parts.iter().map(|p| cost(p)).collect();
    let segments: usize = costs.iter().map(|c| c.segments).sum();
    let mut told = Vec::new();
    if segments > line.segment_warning as usize {
        let text = notices::costly_reply(segments, parts.len(), &body, &agent_wamid);
        told.push(notice(line, message, "segments", text));
    }
    let outbound = NewOutboundMessage {
        conversation: conversation.clone(),
        handle,
        message_id,
        agent: message.from.clone(),
        agent_wamid,
        body,
        sent_at: now,
        jobs,
    };
    Plan {
        effect: AgentEffect::Reply { message: Box::new(outbound), clear_pending },
        notices: told,
        outcome: MessageHandled::Relayed { conversation, rule },
    }
}

/// A notice answering the agent's message `message`; its id is stable per message and purpose.
fn notice(line: &Line, message: &InboundWhatsApp, purpose: &str, text: WhatsAppMessage) -> Job {
    Job::notice(format!("{}:{purpose}", message.wamid.as_str()), line.id.clone(), message.from.clone(), text)
}

fn jobs_of(record: &AgentMessageRecord) -> Vec<Job> {
    let mut jobs = Vec::new();
    if let AgentEffect::Reply { message, .. } = &record.effect {
        jobs.extend(message.jobs.iter().cloned());
    }
    jobs.extend(record.notices.iter().cloned());
    jobs
}

async fn non_agent<S: ConversationStore, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    line: &Line,
    message: &InboundWhatsApp,
    now: Timestamp,
) -> Result<MessageHandled, HandleError> {
    let day = now.strftime("%Y-%m-%d").to_string();
    // Keyed by the day, not the message: a second message today finds the same job.
    let reply = Job::notice(
        format!("nonagent:{}:{}:{day}", line.id, message.from.as_str()),
        line.id.clone(),
        message.from.clone(),
        notices::not_an_agent(line),
    );
    match store.record_non_agent(&line.id, &message.from, &message.wamid, &day, &reply).await? {
        NonAgentOutcome::Replied => {
            queue.enqueue(std::slice::from_ref(&reply)).await?;
            Ok(MessageHandled::NonAgent { replied: true })
        }
        NonAgentOutcome::AlreadyRepliedToday => Ok(MessageHandled::NonAgent { replied: false }),
        NonAgentOutcome::Duplicate => {
            queue.enqueue(&store.unsent_jobs(std::slice::from_ref(&reply)).await?).await?;
            Ok(MessageHandled::Duplicate)
        }
    }
}
