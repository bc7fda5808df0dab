//! The cases' world: the test line (two agents, Ana and Ben), the in-memory store and queue,
//! customers' texts recorded as the SMS webhook records them, and agents' messages built as
//! the WhatsApp webhook builds them (`adapters/whatsapp/webhook.rs`).

use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use jiff::{SignedDuration, Timestamp};
use shared::app::agent_identity::LearntUserIds;
use shared::app::apply_whatsapp_status::{StatusHandled, apply_whatsapp_status};
use shared::app::receive_sms::new_inbound_message;
use shared::app::receive_whatsapp::{HandleError, MessageHandled, receive_whatsapp_message};
use shared::app::retry_budget::{RetryBudget, WEBHOOK_RETRY_BUDGET};
use shared::domain::{
    ConversationKey, E164, Handle, InboundSms, InboundWhatsApp, Job, JobPayload, Line, LineId, ProviderMessageId,
    ReceivedWhatsApp, SendSms, WaId, Wamid, WhatsAppContent, WhatsAppMessage, WhatsAppStatusReport,
};
use shared::ports::{
    AgentState, Agents, AppendOutcome, Conversations, Deliveries, Direction, ForwardedVia, InboundLog,
    NewInboundMessage, StartOutcome, ThreadMessage,
};

/// The test line's customers; `handle(n)` is each one's conversation handle.
pub const CUSTOMERS: [&str; 3] = ["+14155550134", "+14155550135", "+14155550136"];
pub const HANDLES: [&str; 3] = ["K7", "M3", "P9"];
/// Profile names WhatsApp sends with each agent's messages.
pub const NAMES: [&str; 2] = ["Ana", "Ben"];
/// Someone who writes to the line's WhatsApp number but is not one of its agents.
pub const STRANGER: &str = "14155550199";

/// A fixed "now": nothing in these cases reads the clock to decide.
pub fn t0() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

pub fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

pub fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

/// The test line (`bridge_testkit::testing::lines_json`): two agents, the default options.
pub fn test_line() -> Line {
    bridge_testkit::testing::lines().iter().next().unwrap().clone()
}

/// The same line under another id: its conversations are not the test line's.
pub fn other_line() -> Line {
    Line { id: LineId::parse("other").unwrap(), ..test_line() }
}

pub fn agent(n: usize) -> WaId {
    WaId::parse(bridge_testkit::testing::AGENTS[n]).unwrap()
}

pub fn customer(n: usize) -> E164 {
    E164::parse(CUSTOMERS[n]).unwrap()
}

pub fn handle(text: &str) -> Handle {
    Handle::parse(text).unwrap()
}

/// A fresh WhatsApp message id.
pub fn wamid(label: &str) -> Wamid {
    Wamid::parse(&format!("wamid.{label}.{}", uuid::Uuid::now_v7().simple())).unwrap()
}

/// An agent's WhatsApp message, fresh wamid, not a swipe-reply.
pub fn from_agent(n: usize, content: WhatsAppContent) -> InboundWhatsApp {
    InboundWhatsApp { wamid: wamid("agent"), from: agent(n), context: None, content }
}

pub fn text(n: usize, body: &str) -> InboundWhatsApp {
    from_agent(n, WhatsAppContent::Text(body.into()))
}

/// A swipe-reply to `quoted` (Meta's `context.id`).
pub fn swipe(n: usize, body: &str, quoted: &Wamid) -> InboundWhatsApp {
    InboundWhatsApp { context: Some(quoted.clone()), ..text(n, body) }
}

pub fn button(n: usize, id: &str) -> InboundWhatsApp {
    from_agent(n, WhatsAppContent::ButtonReply { id: id.into(), title: "Button".into() })
}

pub fn list_reply(n: usize, id: &str) -> InboundWhatsApp {
    from_agent(n, WhatsAppContent::ListReply { id: id.into(), title: "Row".into() })
}

pub fn media(n: usize, kind: &str, caption: Option<&str>) -> InboundWhatsApp {
    let object = shared::domain::media::WhatsAppMedia::parse("1234567890", "image/jpeg");
    from_agent(n, WhatsAppContent::Media { kind: kind.into(), caption: caption.map(str::to_owned), media: object })
}

/// A status report as Meta sends it for a message the line sent.
pub fn status(wamid: &Wamid, status: &str, error_code: Option<i64>) -> WhatsAppStatusReport {
    WhatsAppStatusReport {
        wamid: wamid.clone(),
        status: status.into(),
        error_code,
        tracking: None,
        recipient: None,
        recipient_user_id: None,
        pricing: None,
    }
}

/// The store, the queue and the line a case runs on.
pub struct World {
    pub store: MemoryStore,
    pub queue: MemoryQueue,
    pub line: Line,
    /// The webhook instance's memory of agents' user ids it stored.
    pub learnt: LearntUserIds,
}

impl World {
    pub fn new() -> Self {
        Self::with_line(test_line())
    }

    pub fn with_line(line: Line) -> Self {
        Self { store: MemoryStore::new(), queue: MemoryQueue::new(), line, learnt: LearntUserIds::new() }
    }

    pub fn conversation(&self, n: usize) -> ConversationKey {
        ConversationKey { line: self.line.id.clone(), customer: customer(n) }
    }

    /// Customer `n` texts `body` at `at`, recorded as the SMS webhook records it: one copy
    /// per agent, the conversation started with `HANDLES[n]` on first contact. Nothing is
    /// enqueued; returns the message (its jobs are the agents' copies).
    pub async fn customer_texts(&self, n: usize, body: &str, at: Timestamp) -> NewInboundMessage {
        customer_texts_on(&self.store, &self.line, n, body, at).await
    }

    /// The worker forwarded `job` (a customer's copy) and Meta answered `copy`.
    pub async fn forwarded(&self, job: &Job, copy: &Wamid) {
        self.store.record_forwarded(job, copy, ForwardedVia::Text, t0()).await.unwrap();
    }

    /// Customer `n`'s text, forwarded to agent `to` as the returned wamid.
    pub async fn copy_to(&self, n: usize, body: &str, to: usize, at: Timestamp) -> (NewInboundMessage, Wamid) {
        let message = self.customer_texts(n, body, at).await;
        let copy = wamid("copy");
        self.forwarded(&message.jobs[to], &copy).await;
        (message, copy)
    }

    /// The webhook's call with no retry budget: a refusal answers at once.
    pub async fn try_receive(
        &self,
        message: impl Into<ReceivedWhatsApp>,
        at: Timestamp,
    ) -> Result<MessageHandled, HandleError> {
        let message = message.into();
        let phone = message.sender.phone().map(WaId::as_str);
        let profile = NAMES.iter().zip(bridge_testkit::testing::AGENTS).find(|(_, id)| Some(*id) == phone);
        let profile = profile.map(|(name, _)| (*name).to_owned());
        let budget = RetryBudget::none();
        receive_whatsapp_message(&self.store, &self.queue, &self.line, profile, message, at, &budget, &self.learnt)
            .await
    }

    pub async fn receive(&self, message: impl Into<ReceivedWhatsApp>, at: Timestamp) -> MessageHandled {
        self.try_receive(message, at).await.unwrap()
    }

    pub async fn try_status(&self, report: &WhatsAppStatusReport) -> Result<Option<StatusHandled>, HandleError> {
        apply_whatsapp_status(&self.store, &self.queue, &self.line, report, t0() + secs(30), &RetryBudget::none()).await
    }

    pub async fn status(&self, report: &WhatsAppStatusReport) -> Option<StatusHandled> {
        self.try_status(report).await.unwrap()
    }

    /// What the queue received since the last take.
    pub fn take(&self) -> Vec<Job> {
        self.queue.take_all()
    }

    pub async fn agent_state(&self, n: usize) -> AgentState {
        self.store.agent_state(&self.line.id, &agent(n)).await.unwrap()
    }

    pub async fn thread(&self, n: usize) -> Vec<ThreadMessage> {
        self.store.thread(&self.conversation(n)).await.unwrap()
    }

    /// The agents' replies in customer `n`'s thread.
    pub async fn replies(&self, n: usize) -> Vec<ThreadMessage> {
        self.thread(n).await.into_iter().filter(|m| m.direction == Direction::Outbound).collect()
    }

    pub async fn is_open(&self, n: usize) -> bool {
        self.store.conversation(&self.conversation(n)).await.unwrap().unwrap().open
    }
}

/// Customer `n`'s text on `line`, recorded in `store` as `World::customer_texts` does.
pub async fn customer_texts_on<S: InboundLog + Conversations>(
    store: &S,
    line: &Line,
    n: usize,
    body: &str,
    at: Timestamp,
) -> NewInboundMessage {
    record_text(store, line, &customer(n), &handle(HANDLES[n]), body, at).await
}

/// `from`'s text on `line`, starting their conversation as `new_handle` if they have none.
pub async fn record_text<S: InboundLog + Conversations>(
    store: &S,
    line: &Line,
    from: &E164,
    new_handle: &Handle,
    body: &str,
    at: Timestamp,
) -> NewInboundMessage {
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse(&format!("SM{}", uuid::Uuid::now_v7().simple())).unwrap(),
        from: from.clone(),
        to: line.sms_number.clone(),
        body: body.into(),
        attachments: vec![],
        received_at: at,
    };
    let message = new_inbound_message(line, sms, &line.agents);
    let conversation = message.conversation.clone();
    if store.conversation(&conversation).await.unwrap().is_some() {
        assert_eq!(store.append_inbound(&message).await.unwrap(), AppendOutcome::Appended);
    } else {
        assert_eq!(store.start_conversation(&message, new_handle).await.unwrap(), StartOutcome::Started);
    }
    message
}

/// The SMS jobs among `jobs`.
pub fn sms_of(jobs: &[Job]) -> Vec<SendSms> {
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::SendSms(sms) => Some(sms.clone()),
            _ => None,
        })
        .collect()
}

/// The SMS jobs among `jobs` as (customer, text).
pub fn texted(jobs: &[Job]) -> Vec<(E164, String)> {
    sms_of(jobs).into_iter().map(|sms| (sms.conversation.customer, sms.text)).collect()
}

/// The notices among `jobs` to agent `n`, in order.
pub fn notices_to(jobs: &[Job], n: usize) -> Vec<WhatsAppMessage> {
    let to = agent(n);
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::NotifyAgent(notice) if notice.agent == to => Some(notice.message.clone()),
            _ => None,
        })
        .collect()
}

/// The notices' template parameters (handle, customer, text) among `jobs` to agent `n`.
pub fn fallbacks_to(jobs: &[Job], n: usize) -> Vec<Option<Vec<String>>> {
    let to = agent(n);
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::NotifyAgent(notice) if notice.agent == to => Some(notice.fallback.clone()),
            _ => None,
        })
        .collect()
}

/// The body of a text (or list, or buttons) message.
pub fn words(message: &WhatsAppMessage) -> String {
    message.in_words()
}

impl World {
    /// The jobs of the outbox entries agents' messages recorded, oldest first (customers'
    /// texts' entries, dated by the clock rather than `t0`, left out).
    pub fn agents_outbox(&self) -> Vec<Vec<Job>> {
        self.store
            .outbox_entries()
            .into_iter()
            .map(|entry| entry.jobs)
            .filter(|jobs| !jobs.iter().any(|job| matches!(job.payload, JobPayload::ForwardToAgent(_))))
            .collect()
    }
}

pub fn webhook_budget() -> RetryBudget {
    RetryBudget::new(WEBHOOK_RETRY_BUDGET)
}
