//! The contract's data: every case on a line of its own, and ids unique across the table, so
//! cases share one DynamoDB table and run in parallel.

use jiff::{SignedDuration, Timestamp};
use shared::domain::compliance::{AutoReplyReason, CustomerKeyword};
use shared::domain::{
    ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LineId, MessageId, SendSms, WaId, Wamid,
    WhatsAppMessage,
};
use shared::domain::{ErrorClass, FailureClass};
use shared::ports::{
    AgentEffect, AgentMessageRecord, ConversationStore, ForwardedCopy, LegAddress, LegFailure, NewInboundMessage,
    NewOutboundMessage, StartOutcome, ThreadLeg,
};

pub const CUSTOMERS: [&str; 3] = ["+14155550134", "+14155550135", "+14155550136"];
pub const AGENTS: [&str; 2] = ["14155550111", "14155550112"];

/// One case's line. Customers and agents are the same numbers on every line: what makes
/// a case's records its own is the line in their keys, and the fresh ids below.
pub struct Case {
    pub line: LineId,
}

impl Case {
    pub fn new(name: &str) -> Self {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let name: String = name.chars().take(23).collect();
        Self { line: LineId::parse(&format!("{name}-{suffix}")).unwrap() }
    }

    pub fn conversation(&self, customer: usize) -> ConversationKey {
        ConversationKey { line: self.line.clone(), customer: E164::parse(CUSTOMERS[customer]).unwrap() }
    }

    /// A notice to `agent`, unique to this case.
    pub fn notice(&self, agent: &WaId, text: &str) -> Job {
        Job::notice(unique("notice"), self.line.clone(), agent.clone(), WhatsAppMessage::text(text))
    }

    /// An agent's message with `effect`, received `at`.
    pub fn agent_message(
        &self,
        agent: &WaId,
        at: Timestamp,
        effect: AgentEffect,
        notices: Vec<Job>,
    ) -> AgentMessageRecord {
        AgentMessageRecord {
            line: self.line.clone(),
            agent: agent.clone(),
            wamid: wamid(),
            received_at: at,
            profile_name: Some("Ana".into()),
            effect,
            notices,
        }
    }
}

pub fn agent(n: usize) -> WaId {
    WaId::parse(AGENTS[n]).unwrap()
}

pub fn handle(text: &str) -> Handle {
    Handle::parse(text).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

pub fn wamid() -> Wamid {
    Wamid::parse(&unique("wamid.")).unwrap()
}

/// A fresh Twilio message sid.
pub fn sid() -> String {
    unique("SM")
}

/// Now, to the whole second: the store keeps times to the millisecond, and messages dated
/// long ago would be past their retention.
pub fn t0() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap()
}

pub fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// A customer's text, received `at`, with one copy for each of `agents`.
pub fn inbound(conversation: &ConversationKey, body: &str, agents: &[WaId], at: Timestamp) -> NewInboundMessage {
    let message_id = MessageId::new_v7();
    let jobs =
        agents.iter().enumerate().map(|(leg, agent)| forward_job(conversation, &message_id, leg, agent, at)).collect();
    NewInboundMessage {
        conversation: conversation.clone(),
        message_id,
        provider: "twilio",
        provider_message_id: sid(),
        body: body.into(),
        attachments: vec![],
        received_at: at,
        keyword: None,
        jobs,
        claim_assumed: Default::default(),
    }
}

/// The same customer text with a compliance keyword.
pub fn with_keyword(mut message: NewInboundMessage, keyword: CustomerKeyword) -> NewInboundMessage {
    message.keyword = Some(keyword);
    message
}

pub fn forward_job(
    conversation: &ConversationKey,
    message_id: &MessageId,
    leg: usize,
    agent: &WaId,
    received_at: Timestamp,
) -> Job {
    Job {
        job_id: JobId::for_leg(message_id, leg),
        attempt: 0,
        payload: JobPayload::ForwardToAgent(ForwardToAgent {
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            agent: agent.clone(),
            text: "hello".into(),
            attachments: vec![],
            media: vec![],
            received_at,
            keyword: None,
        }),
    }
}

pub fn auto_reply(conversation: &ConversationKey, once: &str) -> Job {
    Job::auto_reply(conversation.clone(), AutoReplyReason::FirstContact, "Thanks, we'll be right with you".into(), once)
}

/// An agent's reply to the conversation `handle` names, sent `at` as one SMS.
pub fn reply(
    case: &Case,
    conversation: &ConversationKey,
    handle: &Handle,
    agent: &WaId,
    body: &str,
    at: Timestamp,
) -> AgentMessageRecord {
    let mut record = case.agent_message(agent, at, AgentEffect::Nothing, vec![]);
    let message_id = MessageId::new_v7();
    let job = Job {
        job_id: JobId::for_leg(&message_id, 0),
        attempt: 0,
        payload: JobPayload::SendSms(SendSms {
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            agent: agent.clone(),
            agent_wamid: record.wamid.clone(),
            text: body.into(),
            media: vec![],
        }),
    };
    let message = NewOutboundMessage {
        conversation: conversation.clone(),
        handle: handle.clone(),
        message_id,
        agent: agent.clone(),
        agent_wamid: record.wamid.clone(),
        body: body.into(),
        sent_at: at,
        jobs: vec![job],
    };
    record.effect = AgentEffect::Reply { message: Box::new(message), clear_pending: false };
    record
}

/// The reply's SMS job.
pub fn sms_job(record: &AgentMessageRecord) -> Job {
    match &record.effect {
        AgentEffect::Reply { message, .. } => message.jobs[0].clone(),
        other => panic!("not a reply: {other:?}"),
    }
}

/// Where a job's leg is in its message's thread.
pub fn address(job: &Job) -> LegAddress {
    let (conversation, message_id) = match &job.payload {
        JobPayload::ForwardToAgent(f) => (&f.conversation, &f.message_id),
        JobPayload::SendSms(s) => (&s.conversation, &s.message_id),
        other => panic!("not a message's leg: {other:?}"),
    };
    LegAddress { conversation: conversation.clone(), message_id: message_id.clone(), job_id: job.job_id.clone() }
}

/// The copy a forward job delivers, as reply routing knows it.
pub fn copy_of(job: &Job) -> ForwardedCopy {
    ForwardedCopy::of_job(job).unwrap_or_else(|| panic!("not a forward: {job:?}"))
}

pub fn retryable() -> LegFailure {
    LegFailure { class: FailureClass::Provider(ErrorClass::Retry), code: Some(131000), reason: "HTTP 500".into() }
}

pub fn ambiguous() -> LegFailure {
    LegFailure { class: FailureClass::Provider(ErrorClass::Ambiguous), code: None, reason: "timed out".into() }
}

pub fn permanent() -> LegFailure {
    LegFailure {
        class: FailureClass::Provider(ErrorClass::Permanent),
        code: Some(131026),
        reason: "undeliverable".into(),
    }
}

/// A conversation started by a customer's text `at`, copied to both agents.
pub async fn started<S: ConversationStore>(
    store: &S,
    conversation: &ConversationKey,
    handle: &Handle,
    at: Timestamp,
) -> NewInboundMessage {
    let message = inbound(conversation, "hello", &[agent(0), agent(1)], at);
    assert_eq!(store.start_conversation(&message, handle).await.unwrap(), StartOutcome::Started);
    message
}

/// A message job's leg, as its conversation's thread shows it.
pub async fn leg<S: ConversationStore>(store: &S, job: &Job) -> ThreadLeg {
    let address = address(job);
    let thread = store.thread(&address.conversation).await.unwrap();
    let message = thread.into_iter().find(|m| m.message_id == address.message_id).expect("the job's message");
    message.legs.into_iter().find(|leg| leg.job_id == job.job_id).expect("the job's leg")
}
