//! A WhatsApp message or status reaches the line's number (docs/using.md).
//!
//! From an agent: their window is recorded, the message is routed (`domain::routing`) and
//! either relayed to the customer as an SMS job, or answered with a notice. From anyone
//! else: at most one polite reply a day, nothing relayed. Everything is recorded once per
//! `wamid`, atomically with its effects; the webhook only stores and enqueues.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::app::agent_identity::{self, LearntUserIds};
use crate::app::receive_sms::enqueue_or_leave_to_outbox;
use crate::app::retry_budget::RetryBudget;
use crate::domain::copies::{self, ClaimedCopies};
use crate::domain::media::WhatsAppMedia;
use crate::domain::notices;
use crate::domain::routing::{AgentCommand, AgentText, HandleLookup, Route, RouteRule, RoutingFacts, decide};
use crate::domain::sms_text::{SmsCost, cost, smart_encode, split_for_provider};
use crate::domain::whatsapp_message::{
    ButtonAction, LIST_MAX_ROWS, ListedConversation, PickableConversation, conversation_list, picked_handle,
};
use crate::domain::whatsapp_text::strip_formatting;
use crate::domain::{
    ConversationKey, Handle, IdentityChange, InboundWhatsApp, Job, JobId, JobPayload, Line, MessageId,
    ReceivedWhatsApp, SendSms, WaId, Wamid, WhatsAppContent, WhatsAppMessage,
};
use crate::ports::{
    AgentEffect, AgentMessageRecord, ConversationStore, ConversationSummary, DeliveryQueue, NewOutboundMessage,
    NonAgentOutcome, PendingText, QueueError, RecordOutcome, StartOutcome, StoreError,
};

/// Handle draws for an agent-started conversation before giving up (as for customers).
const MAX_START_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageHandled {
    Relayed {
        conversation: ConversationKey,
        handle: Handle,
        rule: RouteRule,
    },
    /// The agent was asked which conversation; their text waits for the answer.
    AskedWhich,
    /// The agent's focus moved.
    Focused,
    /// A button or command acted on a conversation.
    Acted {
        action: AgentAction,
    },
    /// Recorded, not relayed; the agent was told if useful.
    NotRelayed {
        why: NotRelayed,
    },
    Duplicate,
    NonAgent {
        replied: bool,
    },
}

/// Why an agent's message was recorded but not relayed. Its name is also the purpose in the
/// id of the notice that tells the agent, so a replayed message finds the same notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRelayed {
    /// a reaction: never relayed
    Reaction,
    /// media that can't travel (a sticker, or media relay is off): named to the agent
    Media,
    /// WhatsApp's own notice (a number changed)
    System,
    /// a message kind SMS can't carry
    Unsupported,
    /// the conversation no longer exists (erased or expired)
    ConversationGone,
    /// the customer texted STOP
    OptedOut,
    /// nothing to ask "which conversation?" about
    NoOpenConversation,
    /// media with no conversation named: it can't wait in a list
    MediaWhich,
    /// a button the bridge didn't send
    UnknownButton,
    /// the conversation is already closed
    Closed,
    /// the line has no quick reply
    NoQuickReply,
    /// `/help`, or an unknown command
    Help,
    /// a command typed wrong
    Usage,
    /// `/list`
    List,
    /// `/close` with nothing to close
    CloseWhich,
    /// `/unclaim` with nothing to give back, or a conversation nobody claimed
    NotClaimed,
    /// `/to` on a line that doesn't allow it
    ToNotAllowed,
    /// `/to` a number that isn't a customer's
    ToOwnNumber,
    /// a list row the bridge didn't send
    UnknownListReply,
    /// nothing to send
    Empty,
}

impl NotRelayed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reaction => "reaction",
            Self::Media => "media",
            Self::System => "system",
            Self::Unsupported => "unsupported",
            Self::ConversationGone => "conversation_gone",
            Self::OptedOut => "opted_out",
            Self::NoOpenConversation => "no_open_conversation",
            Self::MediaWhich => "media_which",
            Self::UnknownButton => "unknown_button",
            Self::Closed => "closed",
            Self::NoQuickReply => "no_quick_reply",
            Self::Help => "help",
            Self::Usage => "usage",
            Self::List => "list",
            Self::CloseWhich => "close_which",
            Self::NotClaimed => "not_claimed",
            Self::ToNotAllowed => "to_not_allowed",
            Self::ToOwnNumber => "to_own_number",
            Self::UnknownListReply => "unknown_list_reply",
            Self::Empty => "empty",
        }
    }
}

/// What a button or command did to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    Claim,
    Close,
    Unclaim,
    /// The agent went off duty (`/away`).
    Away,
    /// The agent is on duty again (`/back`).
    Back,
    /// The agent opted the customer out (Opt out button, `/optout`).
    OptOut,
}

impl AgentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Close => "close",
            Self::Unclaim => "unclaim",
            Self::Away => "away",
            Self::Back => "back",
            Self::OptOut => "opt_out",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("recorded, but not enqueued: {0}")]
    Queue(#[from] QueueError),
}

/// A message to the line's number: an agent's (recognised by phone or by a user id learnt
/// for them, `agent_identity`) is routed; anyone else's gets the daily reply.
#[allow(clippy::too_many_arguments)]
pub async fn receive_whatsapp_message<S: ConversationStore, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    line: &Line,
    profile_name: Option<String>,
    message: impl Into<ReceivedWhatsApp>,
    now: Timestamp,
    budget: &RetryBudget,
    learnt: &LearntUserIds,
) -> Result<MessageHandled, HandleError> {
    let message = message.into();
    let recognise = || agent_identity::recognise(store, line, &message.sender, now, learnt);
    let Some(agent) = budget.retry(recognise, StoreError::is_transient).await? else {
        return non_agent(store, queue, line, &message, now, budget).await;
    };
    let old_user_id = message.sender.user_id().cloned();
    let message = message.from_agent(agent);
    if let WhatsAppContent::IdentityChanged(change) = &message.content {
        // What the bridge knows changes before the message is recorded: both are safe to
        // repeat, so a replay (or a failed record) does it again harmlessly.
        let update = || async {
            match change {
                IdentityChange::UserId { new_user_id } => {
                    let old = old_user_id.as_ref();
                    agent_identity::user_id_changed(store, line, &message.from, old, new_user_id, now, learnt).await
                }
                IdentityChange::Number { .. } => {
                    agent_identity::number_changed(store, line, old_user_id.as_ref(), learnt).await
                }
            }
        };
        budget.retry(update, StoreError::is_transient).await?;
    }
    // Planning only reads: a read the store refuses is tried again within the budget.
    let plan =
        budget.retry(|| plan(store, line, &message, profile_name.as_deref(), now), StoreError::is_transient).await?;
    let mut record = AgentMessageRecord {
        line: line.id.clone(),
        agent: message.from.clone(),
        wamid: message.wamid.clone(),
        received_at: now,
        profile_name,
        effect: plan.effect,
        notices: plan.notices,
    };
    match budget.retry(|| store.record_agent_message(&record), StoreError::is_transient).await? {
        RecordOutcome::Recorded => {
            enqueue_or_leave_to_outbox(queue, &jobs_of(&record), budget).await;
            Ok(plan.outcome)
        }
        RecordOutcome::Duplicate(prior) => {
            // The first attempt may have stopped before enqueueing: offer its jobs again
            // (each is sent at most once).
            enqueue_or_leave_to_outbox(queue, &prior.jobs, budget).await;
            Ok(MessageHandled::Duplicate)
        }
        RecordOutcome::ConversationGone => {
            let handle = match &record.effect {
                AgentEffect::Reply { message, .. } => Some(message.handle.clone()),
                _ => None,
            };
            record.effect = AgentEffect::Nothing;
            record.notices = vec![notice(line, &message, "gone", notices::conversation_gone(handle.as_ref()))];
            match budget.retry(|| store.record_agent_message(&record), StoreError::is_transient).await? {
                RecordOutcome::Recorded => _ = enqueue_or_leave_to_outbox(queue, &record.notices, budget).await,
                RecordOutcome::Duplicate(prior) => _ = enqueue_or_leave_to_outbox(queue, &prior.jobs, budget).await,
                RecordOutcome::ConversationGone => {}
            }
            Ok(MessageHandled::NotRelayed { why: NotRelayed::ConversationGone })
        }
    }
}

struct Plan {
    effect: AgentEffect,
    notices: Vec<Job>,
    outcome: MessageHandled,
}

impl Plan {
    fn told(line: &Line, message: &InboundWhatsApp, why: NotRelayed, text: WhatsAppMessage) -> Self {
        Self {
            effect: AgentEffect::Nothing,
            notices: vec![notice(line, message, why.as_str(), text)],
            outcome: MessageHandled::NotRelayed { why },
        }
    }

    fn silent(why: NotRelayed) -> Self {
        Self { effect: AgentEffect::Nothing, notices: Vec::new(), outcome: MessageHandled::NotRelayed { why } }
    }
}

async fn plan<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    profile_name: Option<&str>,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let agent_name = notices::agent_name(profile_name, &message.from);
    match &message.content {
        // docs/using.md: reactions are never relayed.
        WhatsAppContent::Reaction { .. } => Ok(Plan::silent(NotRelayed::Reaction)),
        WhatsAppContent::Media { kind, caption, media } => match media {
            // docs/media.md: stickers don't travel as MMS; with relay off, media is named only.
            Some(media) if line.media_relay && kind != "sticker" => {
                route_media(store, line, message, caption.as_deref().unwrap_or_default(), media.clone(), now).await
            }
            _ => Ok(Plan::told(line, message, NotRelayed::Media, notices::media_not_sent(kind, line.media_relay))),
        },
        // An agent's number or user id changed: the other agents are told (a new number
        // needs the line's configuration changed to get copies).
        WhatsAppContent::IdentityChanged(change) => {
            let text = match change {
                IdentityChange::Number { new_phone } => notices::agent_changed_number(&agent_name, new_phone),
                IdentityChange::UserId { .. } => notices::agent_changed_user_id(&agent_name),
            };
            Ok(Plan {
                effect: AgentEffect::Nothing,
                // Everyone, away or not: a new number is the line's configuration to change.
                notices: tell_the_others(line, message, &BTreeSet::new(), "identity", &text),
                outcome: MessageHandled::NotRelayed { why: NotRelayed::System },
            })
        }
        // WhatsApp's other notices aren't the agent's to answer.
        WhatsAppContent::Unsupported { kind } if kind == "system" => Ok(Plan::silent(NotRelayed::System)),
        // The agent sent something that can't go by SMS: say so rather than drop it silently.
        WhatsAppContent::Unsupported { kind } => {
            Ok(Plan::told(line, message, NotRelayed::Unsupported, notices::message_kind_not_sent(kind)))
        }
        WhatsAppContent::ButtonReply { id, .. } => pressed(store, line, message, &agent_name, id, now).await,
        WhatsAppContent::ListReply { id, .. } => picked(store, line, message, id, now).await,
        WhatsAppContent::Text(body) => route_text(store, line, message, &agent_name, body, now).await,
    }
}

async fn route_text<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    body: &str,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let text = AgentText::parse(body);
    let facts = routing_facts(store, line, message, &text).await?;
    match decide(&text, facts, line.focus_hours, now) {
        Route::Relay { conversation, text, rule } => {
            let Some(summary) = store.conversation(&conversation).await? else {
                return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(None)));
            };
            if summary.opted_out {
                let text = notices::customer_opted_out(&summary.handle, &message.wamid);
                return Ok(Plan::told(line, message, NotRelayed::OptedOut, text));
            }
            Ok(reply(line, message, Draft::new(conversation, summary.handle, &text, message, rule), now))
        }
        Route::Focus { conversation } => {
            let Some(summary) = store.conversation(&conversation).await? else {
                return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(None)));
            };
            let text = notices::now_answering(&summary.handle, &conversation.customer);
            Ok(Plan {
                effect: AgentEffect::Focus { conversation, handle: summary.handle },
                notices: vec![notice(line, message, "focus", text)],
                outcome: MessageHandled::Focused,
            })
        }
        Route::Command(command) => run_command(store, line, message, agent_name, command.interpret(), now).await,
        Route::AskWhich { text, unknown_handle } => {
            let open = store.open_conversations(&line.id, LIST_MAX_ROWS).await?;
            if open.is_empty() {
                return Ok(Plan::told(
                    line,
                    message,
                    NotRelayed::NoOpenConversation,
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

/// What `domain::routing::decide` needs to route an agent's text or caption, looked up in
/// precedence order (swipe-reply, handle, command, focus) and only as far as needed.
async fn routing_facts<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    text: &AgentText,
) -> Result<RoutingFacts, StoreError> {
    let mut facts = RoutingFacts::default();
    // A swipe-reply to a digest (docs/using.md, "A busy line: digests") names none of its
    // conversations: the text's handle decides, or the agent is asked (never their focus,
    // which may be none of the digest's).
    let mut swiped_a_digest = false;
    if let Some(quoted) = &message.context {
        let copy = store.find_forwarded_copy(quoted).await?.filter(|copy| copy.conversation.line == line.id);
        match copy {
            Some(copy) if copy.is_digest() => swiped_a_digest = true,
            copy => facts.replied_to = copy.map(|copy| copy.conversation),
        }
    }
    if facts.replied_to.is_none()
        && let Some(handle) = &text.handle
    {
        facts.handle = Some(match store.find_handle(&line.id, handle).await? {
            Some(conversation) => HandleLookup::Found(conversation),
            None => HandleLookup::Unknown(handle.clone()),
        });
    }
    if facts.replied_to.is_none() && facts.handle.is_none() && text.command.is_none() && !swiped_a_digest {
        facts.focus = store.agent_state(&line.id, &message.from).await?.focus;
    }
    Ok(facts)
}

/// An agent's picture, audio, video or document (docs/media.md): to the conversation its
/// swipe-reply, its caption's handle or the agent's focus names; the caption is the text.
async fn route_media<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    caption: &str,
    media: WhatsAppMedia,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let text = AgentText::parse(caption);
    let facts = routing_facts(store, line, message, &text).await?;
    let (conversation, text, rule) = match decide(&text, facts, line.focus_hours, now) {
        Route::Relay { conversation, text, rule } => (conversation, text, rule),
        // A bare handle as the caption: the media goes there, with no text.
        Route::Focus { conversation } => (conversation, String::new(), RouteRule::Handle),
        // Media can't wait in a "which conversation?" list: say how to address it.
        Route::AskWhich { .. } | Route::Command(_) => {
            return Ok(Plan::told(line, message, NotRelayed::MediaWhich, notices::media_needs_a_conversation()));
        }
    };
    let Some(summary) = store.conversation(&conversation).await? else {
        return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(None)));
    };
    if summary.opted_out {
        let told = notices::customer_opted_out(&summary.handle, &message.wamid);
        return Ok(Plan::told(line, message, NotRelayed::OptedOut, told));
    }
    let mut draft = Draft::new(conversation, summary.handle, &text, message, rule);
    draft.media = vec![media];
    Ok(reply(line, message, draft, now))
}

/// A reply button of a forwarded copy (docs/using.md): `act:<action>:<handle>`.
async fn pressed<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    button_id: &str,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let Some((action, handle)) = ButtonAction::parse_button_id(button_id) else {
        return Ok(Plan::told(line, message, NotRelayed::UnknownButton, notices::unknown_button()));
    };
    let Some(conversation) = store.find_handle(&line.id, &handle).await? else {
        return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(Some(&handle))));
    };
    let Some(summary) = store.conversation(&conversation).await? else {
        return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(Some(&handle))));
    };
    if action == ButtonAction::OptOut {
        let away = off_duty_agents(store, line, now).await?;
        return Ok(opt_out(line, message, agent_name, summary, &away));
    }
    if !summary.open {
        return Ok(Plan::told(line, message, NotRelayed::Closed, notices::already_closed(&handle)));
    }
    match action {
        ButtonAction::OptOut => unreachable!("handled above"),
        ButtonAction::Claim => {
            let away = off_duty_agents(store, line, now).await?;
            Ok(claim(line, message, agent_name, summary, &away))
        }
        ButtonAction::Close => close(store, line, message, agent_name, summary, now).await,
        ButtonAction::QuickReply => {
            let Some(quick) = &line.quick_reply else {
                return Ok(Plan::told(line, message, NotRelayed::NoQuickReply, notices::no_quick_reply()));
            };
            if summary.opted_out {
                let text = notices::customer_opted_out(&summary.handle, &message.wamid);
                return Ok(Plan::told(line, message, NotRelayed::OptedOut, text));
            }
            let draft = Draft::new(conversation, summary.handle, &quick.text, message, RouteRule::QuickReply);
            Ok(reply(line, message, draft, now))
        }
    }
}

/// The line's agents off duty at `now`: away (`/away`), or outside their own hours.
async fn off_duty_agents<S: ConversationStore>(
    store: &S,
    line: &Line,
    now: Timestamp,
) -> Result<BTreeSet<WaId>, StoreError> {
    let away = store.away_agents(&line.id).await?;
    Ok(line.agents.iter().filter(|agent| copies::off_duty(line, &away, agent, now)).cloned().collect())
}

/// An agent opts the customer out (the Opt out button, `/optout`), exactly as the customer's
/// STOP would: nothing is texted to them until they text START; the line's opt-out
/// confirmation, if set, is their last text. The other agents on duty are told.
fn opt_out(
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    summary: ConversationSummary,
    away: &BTreeSet<WaId>,
) -> Plan {
    let (handle, customer) = (&summary.handle, &summary.key.customer);
    if summary.opted_out {
        return Plan::told(line, message, NotRelayed::OptedOut, notices::already_opted_out(handle));
    }
    let mut told = vec![notice(line, message, "optout", notices::you_opted_out(handle, customer))];
    let others = notices::opted_out_by(handle, customer, agent_name);
    told.extend(tell_others(line, message, away, "opted_out", handle, customer, others));
    if let Some(text) = &line.auto_replies.opt_out {
        let reason = crate::domain::compliance::AutoReplyReason::OptOutConfirmation;
        told.push(Job::auto_reply(summary.key.clone(), reason, text.clone(), message.wamid.as_str()));
    }
    Plan {
        effect: AgentEffect::OptOut { conversation: summary.key.clone() },
        notices: told,
        outcome: MessageHandled::Acted { action: AgentAction::OptOut },
    }
}

/// The conversation is the agent's (taken from whoever held it); the other agents on duty
/// are told who has it.
fn claim(
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    summary: ConversationSummary,
    away: &BTreeSet<WaId>,
) -> Plan {
    let (handle, customer) = (&summary.handle, &summary.key.customer);
    let only_you = line.claimed_copies == ClaimedCopies::Claimer;
    let mut told = vec![notice(line, message, "claim", notices::you_claimed(handle, customer, only_you))];
    told.extend(tell_others(
        line,
        message,
        away,
        "claimed",
        handle,
        customer,
        notices::claimed_by(handle, customer, agent_name),
    ));
    Plan {
        effect: AgentEffect::Claim {
            conversation: summary.key.clone(),
            handle: summary.handle.clone(),
            name: agent_name.to_owned(),
        },
        notices: told,
        outcome: MessageHandled::Acted { action: AgentAction::Claim },
    }
}

/// Closed until the customer writes again; the other agents are told.
async fn close<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    summary: ConversationSummary,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let focus = store.agent_state(&line.id, &message.from).await?.focus;
    let unfocus = focus.is_some_and(|f| f.conversation == summary.key);
    let away = off_duty_agents(store, line, now).await?;
    let (handle, customer) = (&summary.handle, &summary.key.customer);
    let mut told = vec![notice(line, message, "close", notices::you_closed(handle))];
    told.extend(tell_others(
        line,
        message,
        &away,
        "closed",
        handle,
        customer,
        notices::closed_by(handle, customer, agent_name),
    ));
    Ok(Plan {
        effect: AgentEffect::Close { conversation: summary.key.clone(), unfocus },
        notices: told,
        outcome: MessageHandled::Acted { action: AgentAction::Close },
    })
}

/// The same notice to every agent of the line but the message's author and those in
/// `away`, with no template to fall back on: for news that is about no conversation.
fn tell_the_others(
    line: &Line,
    message: &InboundWhatsApp,
    away: &BTreeSet<WaId>,
    purpose: &str,
    text: &WhatsAppMessage,
) -> Vec<Job> {
    line.agents
        .iter()
        .filter(|agent| **agent != message.from && !away.contains(*agent))
        .map(|agent| {
            let key = format!("{}:{purpose}:{}", message.wamid.as_str(), agent.as_str());
            Job::notice(key, line.id.clone(), agent.clone(), text.clone())
        })
        .collect()
}

/// The same notice to every agent on duty but the one who acted, as the line's template if
/// their window has closed. Agents away get none: each notice is a message WhatsApp bills.
fn tell_others(
    line: &Line,
    message: &InboundWhatsApp,
    away: &BTreeSet<WaId>,
    purpose: &str,
    handle: &Handle,
    customer: &crate::domain::E164,
    text: WhatsAppMessage,
) -> Vec<Job> {
    let words = match &text {
        WhatsAppMessage::Text { body, .. } => body.clone(),
        _ => String::new(),
    };
    let parameters = vec![handle.to_string(), customer.pretty(), words];
    tell_the_others(line, message, away, purpose, &text)
        .into_iter()
        .map(|notice| notice.with_template_fallback(parameters.clone()))
        .collect()
}

/// docs/using.md: `/help`, `/list`, `/close`, `/unclaim`, `/away`, `/back`, `/to`; anything
/// else gets the help.
async fn run_command<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    agent_name: &str,
    command: AgentCommand,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    match command {
        AgentCommand::Help => Ok(Plan::told(line, message, NotRelayed::Help, notices::help(line, None))),
        AgentCommand::Unknown { name } => {
            Ok(Plan::told(line, message, NotRelayed::Help, notices::help(line, Some(&name))))
        }
        AgentCommand::Invalid { usage } => {
            Ok(Plan::told(line, message, NotRelayed::Usage, notices::how_to_type(usage)))
        }
        AgentCommand::List { page } => {
            // One more than the page holds tells whether there is a next page.
            let open = store.open_conversations(&line.id, page * LIST_MAX_ROWS + 1).await?;
            let more = open.len() > page * LIST_MAX_ROWS;
            let rows: Vec<ListedConversation> = open
                .into_iter()
                .skip((page - 1) * LIST_MAX_ROWS)
                .take(LIST_MAX_ROWS)
                .map(|c| ListedConversation {
                    handle: c.handle,
                    customer: c.key.customer,
                    last_text: c.last_text,
                    claimed_by: c.claimed_by,
                })
                .collect();
            if rows.is_empty() {
                return Ok(Plan::told(line, message, NotRelayed::List, notices::no_open_conversations(page)));
            }
            Ok(Plan::told(line, message, NotRelayed::List, conversation_list(page, &rows, more)))
        }
        AgentCommand::Close { handle } => {
            let summary = match named_or_focused(store, line, message, handle, Which::Close).await? {
                Ok(summary) => summary,
                Err(told) => return Ok(told),
            };
            if !summary.open {
                return Ok(Plan::told(line, message, NotRelayed::Closed, notices::already_closed(&summary.handle)));
            }
            close(store, line, message, agent_name, summary, now).await
        }
        AgentCommand::Unclaim { handle } => {
            let summary = match named_or_focused(store, line, message, handle, Which::Unclaim).await? {
                Ok(summary) => summary,
                Err(told) => return Ok(told),
            };
            if summary.claimer.is_none() {
                return Ok(Plan::told(line, message, NotRelayed::NotClaimed, notices::not_claimed(&summary.handle)));
            }
            let away = off_duty_agents(store, line, now).await?;
            let (handle, customer) = (&summary.handle, &summary.key.customer);
            let mut told = vec![notice(line, message, "unclaim", notices::you_unclaimed(handle, customer))];
            let others = notices::unclaimed_by(handle, customer, agent_name);
            told.extend(tell_others(line, message, &away, "unclaimed", handle, customer, others));
            Ok(Plan {
                effect: AgentEffect::Unclaim { conversation: summary.key.clone() },
                notices: told,
                outcome: MessageHandled::Acted { action: AgentAction::Unclaim },
            })
        }
        AgentCommand::OptOut { handle } => {
            let summary = match named_or_focused(store, line, message, Some(handle), Which::Close).await? {
                Ok(summary) => summary,
                Err(told) => return Ok(told),
            };
            let away = off_duty_agents(store, line, now).await?;
            Ok(opt_out(line, message, agent_name, summary, &away))
        }
        AgentCommand::Away => Ok(Plan {
            effect: AgentEffect::Duty { on_duty: false },
            notices: vec![notice(line, message, "away", notices::you_are_away())],
            outcome: MessageHandled::Acted { action: AgentAction::Away },
        }),
        AgentCommand::Back => Ok(Plan {
            effect: AgentEffect::Duty { on_duty: true },
            notices: vec![notice(line, message, "back", notices::you_are_back())],
            outcome: MessageHandled::Acted { action: AgentAction::Back },
        }),
        AgentCommand::To { customer, text } => start_with(store, line, message, customer, &text, now).await,
    }
}

/// Which command asked for a conversation by handle or focus, for its "which?" answer.
#[derive(Clone, Copy)]
enum Which {
    Close,
    Unclaim,
}

/// The conversation a command names (`#K7`), or the agent's focus; `Err` is what to tell
/// the agent when there is none.
async fn named_or_focused<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    handle: Option<Handle>,
    which: Which,
) -> Result<Result<ConversationSummary, Plan>, StoreError> {
    let conversation = match &handle {
        Some(handle) => store.find_handle(&line.id, handle).await?,
        None => store.agent_state(&line.id, &message.from).await?.focus.map(|f| f.conversation),
    };
    let gone = |handle: Option<&Handle>| {
        Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(handle))
    };
    let Some(conversation) = conversation else {
        return Ok(Err(match (handle, which) {
            (Some(handle), _) => gone(Some(&handle)),
            (None, Which::Close) => Plan::told(line, message, NotRelayed::CloseWhich, notices::close_which()),
            (None, Which::Unclaim) => Plan::told(line, message, NotRelayed::NotClaimed, notices::unclaim_which()),
        }));
    };
    Ok(store.conversation(&conversation).await?.ok_or_else(|| gone(handle.as_ref())))
}

/// `/to +E164 text`: only where the line allows agents to text first (an open relay
/// otherwise), never to an opted-out customer.
async fn start_with<S: ConversationStore>(
    store: &S,
    line: &Line,
    message: &InboundWhatsApp,
    customer: crate::domain::E164,
    text: &str,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    if !line.allow_agent_initiated {
        return Ok(Plan::told(line, message, NotRelayed::ToNotAllowed, notices::agent_initiated_not_allowed()));
    }
    if customer == line.sms_number {
        return Ok(Plan::told(line, message, NotRelayed::ToOwnNumber, notices::not_a_customer_number(&customer)));
    }
    let conversation = ConversationKey { line: line.id.clone(), customer };
    let mut rng = fastrand::Rng::new();
    let mut collisions = 0;
    for _ in 0..MAX_START_ATTEMPTS {
        if let Some(summary) = store.conversation(&conversation).await? {
            if summary.opted_out {
                let told = notices::customer_opted_out(&summary.handle, &message.wamid);
                return Ok(Plan::told(line, message, NotRelayed::OptedOut, told));
            }
            return Ok(reply(
                line,
                message,
                Draft::new(conversation, summary.handle, text, message, RouteRule::To),
                now,
            ));
        }
        let handle = Handle::random(Handle::length_after_collisions(collisions), &mut rng);
        match store.start_agent_conversation(&conversation, &handle, now).await? {
            StartOutcome::Started => {
                return Ok(reply(line, message, Draft::new(conversation, handle, text, message, RouteRule::To), now));
            }
            StartOutcome::HandleTaken => collisions += 1,
            // Another request created it first: read it again.
            StartOutcome::ConversationExists | StartOutcome::Duplicate(_) => {}
        }
    }
    Err(StoreError::Conflict)
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
        return Ok(Plan::silent(NotRelayed::UnknownListReply));
    };
    let Some(conversation) = store.find_handle(&line.id, &handle).await? else {
        return Ok(Plan::told(line, message, NotRelayed::ConversationGone, notices::conversation_gone(Some(&handle))));
    };
    match store.agent_state(&line.id, &message.from).await?.pending {
        Some(pending) => {
            let Some(summary) = store.conversation(&conversation).await? else {
                let text = notices::conversation_gone(Some(&handle));
                return Ok(Plan::told(line, message, NotRelayed::ConversationGone, text));
            };
            // As for every other way of replying: nothing reaches an opted-out customer.
            if summary.opted_out {
                let text = notices::customer_opted_out(&summary.handle, &pending.wamid);
                return Ok(Plan::told(line, message, NotRelayed::OptedOut, text));
            }
            let mut draft = Draft::new(conversation, handle, &pending.text, message, RouteRule::Handle);
            draft.agent_wamid = pending.wamid;
            draft.clear_pending = true;
            Ok(reply(line, message, draft, now))
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

/// What an agent's message sends to a customer, before it becomes SMS jobs.
struct Draft<'a> {
    conversation: ConversationKey,
    handle: Handle,
    text: &'a str,
    /// The agent's media, sent as links with the first part.
    media: Vec<WhatsAppMedia>,
    /// The agent's message the delivery result is shown on.
    agent_wamid: Wamid,
    clear_pending: bool,
    rule: RouteRule,
}

impl<'a> Draft<'a> {
    fn new(
        conversation: ConversationKey,
        handle: Handle,
        text: &'a str,
        message: &InboundWhatsApp,
        rule: RouteRule,
    ) -> Self {
        Self {
            conversation,
            handle,
            text,
            media: Vec::new(),
            agent_wamid: message.wamid.clone(),
            clear_pending: false,
            rule,
        }
    }
}

/// The agent's text, formatting removed and smart-encoded, as SMS jobs (numbered parts
/// over 1600 characters) recorded in the thread (docs/media.md, docs/using.md).
fn reply(line: &Line, message: &InboundWhatsApp, draft: Draft<'_>, now: Timestamp) -> Plan {
    let Draft { conversation, handle, text, media, agent_wamid, clear_pending, rule } = draft;
    let mut body = strip_formatting(text).trim().to_owned();
    if body.is_empty() && media.is_empty() {
        return Plan::told(line, message, NotRelayed::Empty, notices::nothing_to_send());
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
                media: if leg == 0 { media.clone() } else { Vec::new() },
            }),
        })
        .collect();
    // docs/using.md: a reply that costs more than the line's threshold is sent, and the agent
    // learns what it cost and why (usually one character forcing UCS-2).
    let costs: Vec<SmsCost> = parts.iter().map(|p| cost(p)).collect();
    let segments: usize = costs.iter().map(|c| c.segments).sum();
    let mut told = Vec::new();
    if !body.is_empty() && segments > line.segment_warning as usize {
        let text = notices::costly_reply(segments, parts.len(), &body, &agent_wamid);
        told.push(notice(line, message, "segments", text));
    }
    let relayed_handle = handle.clone();
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
        outcome: MessageHandled::Relayed { conversation, handle: relayed_handle, rule },
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
    message: &ReceivedWhatsApp,
    now: Timestamp,
    budget: &RetryBudget,
) -> Result<MessageHandled, HandleError> {
    // WhatsApp's own notice about someone's number is no message from them: no answer.
    if message.content.kind() == "system" {
        return Ok(MessageHandled::NonAgent { replied: false });
    }
    let day = now.strftime("%Y-%m-%d").to_string();
    // Answered at whichever id they have: a user with a username may have no phone number.
    let from = message.sender.recipient();
    // Keyed by the day, not the message: a second message today finds the same job.
    let reply = Job::notice(
        format!("nonagent:{}:{}:{day}", line.id, from.as_str()),
        line.id.clone(),
        from.clone(),
        notices::not_an_agent(line),
    );
    let record = || store.record_non_agent(&line.id, &from, &message.wamid, &day, &reply);
    match budget.retry(record, StoreError::is_transient).await? {
        NonAgentOutcome::Replied => {
            enqueue_or_leave_to_outbox(queue, std::slice::from_ref(&reply), budget).await;
            Ok(MessageHandled::NonAgent { replied: true })
        }
        NonAgentOutcome::AlreadyRepliedToday => Ok(MessageHandled::NonAgent { replied: false }),
        NonAgentOutcome::Duplicate => {
            let unsent = store.unsent_jobs(std::slice::from_ref(&reply)).await?;
            enqueue_or_leave_to_outbox(queue, &unsent, budget).await;
            Ok(MessageHandled::Duplicate)
        }
    }
}
