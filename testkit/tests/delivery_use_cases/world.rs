//! The world the delivery tests run in: the test line (`bridge_testkit::testing::lines`), the
//! in-memory store and queue, the provider fakes, and jobs seeded the way the webhooks
//! record them (through the store's roles).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use bridge_testkit::providers::{FakeSms, FakeWhatsApp};
use bridge_testkit::testing::{AGENTS, CUSTOMER, PUBLIC_BASE_URL};
use jiff::{SignedDuration, Timestamp};
use shared::app::deliver_job::{Deliverer, SendRates};
use shared::domain::{
    ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LegState, Line, MessageId, SendSms, WaId,
    Wamid, WhatsAppMessage,
};
use shared::ports::{
    AgentEffect, AgentMessageRecord, Conversations, InboundLog, LegAddress, LegRef, NewInboundMessage,
    NewOutboundMessage, RecordOutcome, StartOutcome, ThreadLeg,
};

pub type TestDeliverer = Deliverer<MemoryStore, FakeWhatsApp, FakeSms, MemoryQueue>;

/// Rates fast enough that pacing never waits, for the tests that aren't about pacing.
pub const FAST: SendRates =
    SendRates { whatsapp_per_second: 10_000.0, sms_per_second: 10_000.0, whatsapp_pair_seconds: 0.0 };

/// The deliverer's default reconciliation wait (`DEFAULT_RECONCILE_WAIT`).
pub const RECONCILE_WAIT: SignedDuration = SignedDuration::from_secs(180);

/// Past the default reconciliation wait (180 s) from an attempt made at the world's `now`.
pub const AFTER_THE_WAIT: SignedDuration = SignedDuration::from_secs(200);

pub struct World {
    pub store: MemoryStore,
    pub queue: MemoryQueue,
    pub wa: FakeWhatsApp,
    pub sms: FakeSms,
    pub line: Line,
    pub conversation: ConversationKey,
    pub agents: [WaId; 2],
    pub handle: Handle,
    /// The test's "now": the wall clock at the start, to the millisecond (the deliverer
    /// stamps an attempt's start with the wall clock, and the store keeps milliseconds).
    pub now: Timestamp,
    texts: AtomicUsize,
}

impl World {
    pub fn new() -> Self {
        let lines = bridge_testkit::testing::lines();
        let line = lines.iter().next().cloned().expect("the test line");
        let conversation = ConversationKey { line: line.id.clone(), customer: E164::parse(CUSTOMER).expect("e164") };
        Self {
            store: MemoryStore::new(),
            queue: MemoryQueue::new(),
            wa: FakeWhatsApp::new(),
            sms: FakeSms::new(),
            line,
            conversation,
            agents: AGENTS.map(|a| WaId::parse(a).expect("wa id")),
            handle: Handle::parse("K7").expect("handle"),
            now: Timestamp::from_millisecond(Timestamp::now().as_millisecond()).expect("now"),
            texts: AtomicUsize::new(0),
        }
    }

    /// `now` moved on by `by`.
    pub fn at(&self, by: SignedDuration) -> Timestamp {
        self.now + by
    }

    /// A worker process on the shared store, queue and providers (each has its own lease
    /// owner, its own memory of unrecorded sends, its own pacer).
    pub fn process(&self) -> TestDeliverer {
        self.process_with(FAST)
    }

    pub fn process_with(&self, rates: SendRates) -> TestDeliverer {
        Deliverer::new(
            bridge_testkit::testing::lines(),
            self.store.clone(),
            self.wa.clone(),
            self.sms.clone(),
            self.queue.clone(),
            format!("{PUBLIC_BASE_URL}/sms/status"),
            rates,
        )
    }

    /// The customer texts `body`: recorded as the SMS webhook records it (the conversation
    /// started on the first text), one forward per agent. Returns the jobs, agent 0's first.
    pub async fn customer_texts(&self, body: &str) -> Vec<Job> {
        self.texts_from(&self.conversation, &self.handle, body).await
    }

    /// Another customer (`customer`, E.164) texts `body`; their conversation is `handle`'s.
    pub async fn other_customer_texts(&self, customer: &str, handle: &str, body: &str) -> Vec<Job> {
        let conversation =
            ConversationKey { line: self.line.id.clone(), customer: E164::parse(customer).expect("e164") };
        self.texts_from(&conversation, &Handle::parse(handle).expect("handle"), body).await
    }

    async fn texts_from(&self, conversation: &ConversationKey, handle: &Handle, body: &str) -> Vec<Job> {
        let n = self.texts.fetch_add(1, Ordering::SeqCst);
        let message_id = MessageId::new_v7();
        let jobs: Vec<Job> = self
            .agents
            .iter()
            .enumerate()
            .map(|(leg, agent)| Job {
                job_id: JobId::for_leg(&message_id, leg),
                attempt: 0,
                payload: JobPayload::ForwardToAgent(ForwardToAgent::of_message(
                    &self.line,
                    conversation.clone(),
                    message_id.clone(),
                    agent.clone(),
                    body,
                    &[],
                    self.now,
                )),
            })
            .collect();
        let message = NewInboundMessage {
            conversation: conversation.clone(),
            message_id,
            provider: "twilio",
            provider_message_id: format!("SM{n:032}"),
            body: body.to_owned(),
            attachments: vec![],
            received_at: self.now,
            keyword: None,
            jobs: jobs.clone(),
            claim_assumed: Default::default(),
        };
        if self.store.conversation(conversation).await.expect("read").is_none() {
            let started = self.store.start_conversation(&message, handle).await.expect("start");
            assert_eq!(started, StartOutcome::Started);
        } else {
            let appended = self.store.append_inbound(&message).await.expect("append");
            assert_eq!(appended, shared::ports::AppendOutcome::Appended);
        }
        jobs
    }

    /// The customer's text forwarded to agent 0.
    pub async fn forward(&self, body: &str) -> Job {
        self.customer_texts(body).await.remove(0)
    }

    /// Agent 0 replies `text` to the customer (a customer text first starts the
    /// conversation): recorded as the WhatsApp webhook records it. Returns the SMS job.
    pub async fn agent_replies(&self, text: &str) -> Job {
        if self.store.conversation(&self.conversation).await.expect("read").is_none() {
            self.customer_texts("hello").await;
        }
        let n = self.texts.fetch_add(1, Ordering::SeqCst);
        let agent = self.agents[0].clone();
        let agent_wamid = Wamid::parse(&format!("wamid.AGENT{n:020}")).expect("wamid");
        let message_id = MessageId::new_v7();
        let job = Job {
            job_id: JobId::for_leg(&message_id, 0),
            attempt: 0,
            payload: JobPayload::SendSms(SendSms {
                conversation: self.conversation.clone(),
                message_id: message_id.clone(),
                agent: agent.clone(),
                agent_wamid: agent_wamid.clone(),
                text: text.to_owned(),
                media: vec![],
            }),
        };
        let record = AgentMessageRecord {
            line: self.line.id.clone(),
            agent: agent.clone(),
            wamid: agent_wamid.clone(),
            received_at: self.now,
            profile_name: None,
            effect: AgentEffect::Reply {
                message: Box::new(NewOutboundMessage {
                    conversation: self.conversation.clone(),
                    handle: self.handle.clone(),
                    message_id,
                    agent,
                    agent_wamid,
                    body: text.to_owned(),
                    sent_at: self.now,
                    jobs: vec![job.clone()],
                }),
                clear_pending: false,
            },
            notices: vec![],
        };
        let recorded = shared::ports::Agents::record_agent_message(&self.store, &record).await.expect("record");
        assert_eq!(recorded, RecordOutcome::Recorded);
        job
    }

    /// A notice to agent `to` saying `text`, recorded as the WhatsApp webhook records one
    /// (with the message of agent 1 that caused it, here a focus). Returns the notice's job.
    pub async fn notice_to_agent(&self, to: usize, text: &str) -> Job {
        let n = self.texts.fetch_add(1, Ordering::SeqCst);
        let notice = Job::notice(
            format!("notice-{n}"),
            self.line.id.clone(),
            self.agents[to].clone(),
            shared::domain::WhatsAppMessage::text(text),
        );
        let record = AgentMessageRecord {
            line: self.line.id.clone(),
            agent: self.agents[1].clone(),
            wamid: Wamid::parse(&format!("wamid.BEN{n:020}")).expect("wamid"),
            received_at: self.now,
            profile_name: None,
            effect: AgentEffect::Focus { conversation: self.conversation.clone(), handle: self.handle.clone() },
            notices: vec![notice.clone()],
        };
        let recorded = shared::ports::Agents::record_agent_message(&self.store, &record).await.expect("record");
        assert_eq!(recorded, RecordOutcome::Recorded);
        notice
    }

    /// Opens agent 0's 24 h window (they wrote an hour ago).
    pub async fn open_window(&self) {
        self.store
            .record_agent_inbound(&self.line.id, &self.agents[0], self.now - SignedDuration::from_hours(1))
            .await
            .expect("window");
    }

    /// The job's leg, which must exist.
    pub fn leg(&self, job: &Job) -> ThreadLeg {
        self.store.leg(job).expect("the job's leg")
    }

    pub fn state(&self, job: &Job) -> LegState {
        self.leg(job).state
    }

    /// Where a status report finds the job's leg (what `apply_*_status` passes to
    /// `note_sent_as`).
    pub fn leg_ref(&self, job: &Job) -> LegRef {
        let (conversation, message_id) = match &job.payload {
            JobPayload::ForwardToAgent(f) => (f.conversation.clone(), f.message_id.clone()),
            JobPayload::SendSms(s) => (s.conversation.clone(), s.message_id.clone()),
            JobPayload::NotifyAgent(_) | JobPayload::AutoReply(_) => return LegRef::Standalone(job.job_id.clone()),
        };
        LegRef::Message(LegAddress { conversation, message_id, job_id: job.job_id.clone() })
    }
}

/// The text a WhatsApp message shows (body, or the template's parameters).
pub fn shown_text(message: &WhatsAppMessage) -> String {
    match message {
        WhatsAppMessage::Text { body, .. }
        | WhatsAppMessage::Buttons { body, .. }
        | WhatsAppMessage::List { body, .. } => body.clone(),
        WhatsAppMessage::Template { parameters, .. } => parameters.join(" | "),
        WhatsAppMessage::Reaction { emoji, .. } => emoji.clone(),
        WhatsAppMessage::ReadMark { .. } => "(marked read)".to_owned(),
        WhatsAppMessage::Media { caption, .. } => caption.clone().unwrap_or_default(),
    }
}

/// A duration from seconds, for `Retry-After`s.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
