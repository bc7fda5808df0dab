//! Lines, texts, agents' replies and status reports for the SMS use cases, built with the
//! domain types; and the use cases called the way the SMS webhook and the worker call them.

use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use bridge_testkit::testing::{AGENTS, LINE_SMS_NUMBER, PHONE_NUMBER_ID};
use jiff::{SignedDuration, Timestamp};
use shared::app::apply_sms_status::{SmsStatusReport, StatusError, StatusHandled, apply_sms_status};
use shared::app::copy_facts_cache::CopyFactsCache;
use shared::app::deliver_job::Deadline;
use shared::app::receive_sms::{ReceiveError, Received, receive_sms};
use shared::app::retry_budget::{RetryBudget, WEBHOOK_RETRY_BUDGET};
use shared::app::sweep_outbox::{DEFAULT_OUTBOX_GRACE, SweepError, Swept, sweep_outbox};
use shared::domain::compliance::AutoReplyReason;
use shared::domain::{
    Attachment, AutoReply, ConversationKey, DeliveryStatus, E164, ForwardToAgent, InboundSms, Job, JobPayload, Line,
    LineId, Lines, ProviderMessageId, SendSms, WaId, Wamid, WhatsAppMessage,
};
use shared::ports::{AgentEffect, AgentMessageRecord, Agents, Deliveries, DeliveryQueue};

pub use bridge_testkit::testing::CUSTOMER;

/// A second customer of the line.
pub const OTHER_CUSTOMER: &str = "+14155550177";

/// Mondays to Fridays 09:00–17:00 in New York.
pub const WEEKDAY_HOURS: &str = r#""business_hours": { "time_zone": "America/New_York",
    "weekly": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:00" }] }"#;

/// Monday 2026-11-23, 12:00 in New York: open.
pub fn monday_noon() -> Timestamp {
    "2026-11-23T17:00:00Z".parse().unwrap()
}

/// Monday 2026-11-23, 20:00 in New York: closed until Tuesday 09:00.
pub fn monday_evening() -> Timestamp {
    "2026-11-24T01:00:00Z".parse().unwrap()
}

/// The test line's `BRIDGE_LINES` with `agents` and the extra members `extra` (JSON members
/// without the leading comma, or "").
pub fn lines_with_agents(agents: &[&str], extra: &str) -> Lines {
    let agents: Vec<String> = agents.iter().map(|agent| format!("\"{agent}\"")).collect();
    let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
    let json = format!(
        r#"[{{ "id": "main", "sms_number": "{LINE_SMS_NUMBER}", "sms_provider": "twilio",
            "whatsapp_phone_number_id": "{PHONE_NUMBER_ID}", "agents": [{}],
            "template": {{ "name": "new_customer_message", "language": "en" }}{extra} }}]"#,
        agents.join(", ")
    );
    Lines::from_json("test", &json).unwrap()
}

/// The test line (two agents) with `extra`.
pub fn lines(extra: &str) -> Lines {
    lines_with_agents(&AGENTS, extra)
}

pub fn line(extra: &str) -> Line {
    lines(extra).iter().next().unwrap().clone()
}

pub fn line_without_agents(extra: &str) -> Line {
    lines_with_agents(&[], extra).iter().next().unwrap().clone()
}

pub fn key(customer: &str) -> ConversationKey {
    ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(customer).unwrap() }
}

pub fn agent(i: usize) -> WaId {
    WaId::parse(AGENTS[i]).unwrap()
}

/// A fresh Twilio `MessageSid`.
pub fn sid() -> String {
    bridge_testkit::testing::message_sid()
}

/// A verified inbound SMS to the test line.
pub fn sms(sid: &str, customer: &str, body: &str, at: Timestamp) -> InboundSms {
    InboundSms {
        provider_message_id: ProviderMessageId::parse(sid).unwrap(),
        from: E164::parse(customer).unwrap(),
        to: E164::parse(LINE_SMS_NUMBER).unwrap(),
        body: body.to_owned(),
        attachments: Vec::<Attachment>::new(),
        received_at: at,
    }
}

/// The webhook's budget.
pub fn budget() -> RetryBudget {
    RetryBudget::new(WEBHOOK_RETRY_BUDGET)
}

/// `receive_sms` as the SMS webhook calls it, with a fresh random generator.
pub async fn receive<S: shared::ports::InboundLog, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    line: &Line,
    sms: InboundSms,
    budget: &RetryBudget,
) -> Result<Received, ReceiveError> {
    // A `fastrand::Rng`, its type inferred from `receive_sms`: the testkit has no
    // dependency on fastrand to name it by.
    let mut rng = Default::default();
    receive_sms(store, queue, line, sms, &mut rng, budget, &CopyFactsCache::new()).await
}

/// A customer's text, now, with a fresh sid: it must be accepted.
pub async fn text(store: &MemoryStore, queue: &MemoryQueue, line: &Line, customer: &str, body: &str) -> Received {
    text_at(store, queue, line, customer, body, Timestamp::now()).await
}

pub async fn text_at(
    store: &MemoryStore,
    queue: &MemoryQueue,
    line: &Line,
    customer: &str,
    body: &str,
    at: Timestamp,
) -> Received {
    let received = receive(store, queue, line, sms(&sid(), customer, body, at), &budget()).await.unwrap();
    assert!(matches!(received, Received::Accepted { .. }), "{received:?}");
    received
}

/// A text recorded while the queue refuses for the whole (zero) budget: left to the outbox.
pub async fn deferred_text(store: &MemoryStore, queue: &MemoryQueue, line: &Line, customer: &str, body: &str) {
    queue.fail_next(1);
    let received =
        receive(store, queue, line, sms(&sid(), customer, body, Timestamp::now()), &RetryBudget::none()).await.unwrap();
    assert!(matches!(received, Received::Accepted { enqueued: false, .. }), "{received:?}");
}

/// The customer's copies among `jobs`.
pub fn forwards(jobs: &[Job]) -> Vec<&ForwardToAgent> {
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::ForwardToAgent(forward) => Some(forward),
            _ => None,
        })
        .collect()
}

/// The bridge's own texts to customers among `jobs`, with their jobs.
pub fn auto_replies(jobs: &[Job]) -> Vec<(&Job, &AutoReply)> {
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::AutoReply(reply) => Some((job, reply)),
            _ => None,
        })
        .collect()
}

/// The automated replies' reasons and texts.
pub fn replies_said(jobs: &[Job]) -> Vec<(AutoReplyReason, String)> {
    auto_replies(jobs).into_iter().map(|(_, reply)| (reply.reason, reply.text.clone())).collect()
}

/// The notices to agents among `jobs`: recipient and message.
pub fn notices(jobs: &[Job]) -> Vec<(String, WhatsAppMessage)> {
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::NotifyAgent(notice) => Some((notice.agent.as_str().to_owned(), notice.message.clone())),
            _ => None,
        })
        .collect()
}

pub fn job_ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|job| job.job_id.as_str()).collect()
}

/// The jobs of every outbox entry, oldest first.
pub fn outbox_jobs(store: &MemoryStore) -> Vec<Job> {
    store.outbox_entries().into_iter().flat_map(|entry| entry.jobs).collect()
}

/// Records "the customer texted, then agent 0 replied `text`" as the webhooks record it and
/// returns the reply's SMS job (not enqueued): the helper the wire tests use on DynamoDB.
pub async fn agent_reply(store: &MemoryStore, line: &Line, customer: &str, text: &str) -> Job {
    bridge_testkit::testing::record_agent_reply_in(store, line, customer, text).await
}

/// The agent closes the customer's conversation (the Close button).
pub async fn close(store: &MemoryStore, customer: &str) {
    let record = AgentMessageRecord {
        line: LineId::parse("main").unwrap(),
        agent: agent(0),
        wamid: Wamid::parse(&format!("wamid.close.{}", uuid::Uuid::new_v4().simple())).unwrap(),
        received_at: Timestamp::now(),
        profile_name: None,
        effect: AgentEffect::Close { conversation: key(customer), unfocus: false },
        notices: vec![],
    };
    store.record_agent_message(&record).await.unwrap();
}

pub fn send_sms(job: &Job) -> &SendSms {
    match &job.payload {
        JobPayload::SendSms(sms) => sms,
        other => panic!("not an SMS job: {other:?}"),
    }
}

/// What the worker records once Twilio accepted the reply as `sid` (claim, then the send).
pub async fn worker_sent(store: &MemoryStore, job: &Job, sid: &str) {
    let now = Timestamp::now();
    store.claim_job(job, now, now + SignedDuration::from_secs(60), "worker").await.unwrap();
    store.record_sms_sent(job, sid, Some(DeliveryStatus::Queued), now).await.unwrap();
}

/// The worker sent `job` (a notice or an automated reply): its leg is done.
pub async fn worker_sent_standalone(store: &MemoryStore, job: &Job) {
    let now = Timestamp::now();
    let claim = store.claim_job(job, now, now + SignedDuration::from_secs(60), "worker").await.unwrap();
    assert!(matches!(claim, shared::ports::Claim::Claimed { .. }), "{claim:?}");
    store.record_job_sent(job, "wamid.sent", now).await.unwrap();
}

/// A Twilio status callback for the reply `job`, its URL naming the job (`?job=`), as the
/// worker's `StatusCallback` does.
pub fn report(job: &Job, sid: &str, status: &str, error_code: Option<i64>) -> SmsStatusReport {
    SmsStatusReport { job: Some(job.job_id.clone()), ..report_without_job(job, sid, status, error_code) }
}

/// A callback whose URL names no job: found by its sid alone.
pub fn report_without_job(job: &Job, sid: &str, status: &str, error_code: Option<i64>) -> SmsStatusReport {
    SmsStatusReport {
        sid: sid.to_owned(),
        status: status.into(),
        error_code,
        job: None,
        from: Some(E164::parse(LINE_SMS_NUMBER).unwrap()),
        to: Some(send_sms(job).conversation.customer.clone()),
    }
}

/// `apply_sms_status` as the status webhook calls it.
pub async fn apply(
    store: &MemoryStore,
    queue: &MemoryQueue,
    lines: &Lines,
    report: &SmsStatusReport,
    budget: &RetryBudget,
) -> Result<StatusHandled, StatusError> {
    apply_sms_status(store, queue, lines, report, Timestamp::now(), budget).await
}

/// The reply's status as its leg records it.
pub fn leg_status(store: &MemoryStore, job: &Job) -> Option<DeliveryStatus> {
    store.leg(job).unwrap().status
}

/// The outbox sweep as the schedule runs it, at `now`, with the default grace and no deadline.
pub async fn sweep<Q: DeliveryQueue>(store: &MemoryStore, queue: &Q, now: Timestamp) -> Result<Swept, SweepError> {
    sweep_outbox(store, queue, now, DEFAULT_OUTBOX_GRACE, Deadline::NONE).await
}

/// A time by which every entry recorded so far is past the default grace.
pub fn after_grace() -> Timestamp {
    Timestamp::now() + SignedDuration::try_from(DEFAULT_OUTBOX_GRACE).unwrap() + SignedDuration::from_secs(1)
}
