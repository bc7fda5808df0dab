//! Delivery jobs (docs/guarantees.md) and what a provider's answer means for them.
//!
//! A job is one copy of one message for one recipient. It travels through SQS as JSON
//! `{ "job_id", "attempt", "kind", "payload" }` and its progress is recorded as a leg of the
//! message in the store, keyed by `job_id`, which is what makes the worker idempotent.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::compliance::{AutoReplyReason, CustomerKeyword};
use super::conversation::{ConversationKey, MessageId};
use super::line::LineId;
use super::media::WhatsAppMedia;
use super::message::Attachment;
use super::message::Wamid;
use super::phone::{E164, WaId};
use super::whatsapp_message::WhatsAppMessage;
use super::whatsapp_user::WhatsAppRecipient;

/// How long after an agent's last message the business may send them free-form text.
pub const AGENT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a job's leg is (docs/guarantees.md): queued → sending (claimed) → sent | retry | failed, with
/// `uncertain` when an attempt may have reached the provider without the bridge learning
/// its answer (a timeout after sending, a lost connection, a worker stopped mid-send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegState {
    /// Recorded, never tried.
    Queued,
    /// Claimed by a delivery holding a lease.
    Sending,
    /// Given back after an attempt that certainly sent nothing; free to take.
    Retry,
    /// An attempt may have been accepted by the provider: found out before sending again.
    Uncertain,
    /// Done: the provider accepted it.
    Sent,
    /// Done: it can never be sent (recorded with its reason).
    Failed,
}

impl LegState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Retry => "retry",
            Self::Uncertain => "uncertain",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Retry, Self::Uncertain, Self::Sent, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// A finished leg is never sent again, however often its job is delivered.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Sent | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// The job for leg `leg` of a message: stable, so a replayed webhook re-offers the
    /// same jobs rather than new ones.
    pub fn for_leg(message: &MessageId, leg: usize) -> Self {
        Self(format!("{}.{leg}", message.as_str()))
    }

    /// The job that forwards a copy again as the template after WhatsApp reported, once
    /// it had accepted the free-form copy, that the agent's window was closed (131047).
    pub fn template_resend(&self) -> Self {
        Self(format!("{}.t", self.0))
    }

    /// The message a leg job belongs to (`<message id>.<leg>`).
    pub fn message_id(&self) -> Option<MessageId> {
        MessageId::parse(self.0.split_once('.')?.0).ok()
    }

    /// An id derived from a key (stable: a replay makes the same id). Always hashed: keys
    /// hold phone numbers and WhatsApp ids, and job ids go into logs, SQS and the table.
    fn derived(prefix: &str, key: &str) -> Self {
        use sha2::Digest;
        Self(format!("{prefix}-{}", hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])))
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=100).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
        if ok { Ok(Self(input.to_owned())) } else { Err(format!("`{input}` is not a job id")) }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_newtype!(JobId, String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    /// Deliveries of this job so far (0 when first enqueued).
    pub attempt: u32,
    #[serde(flatten)]
    pub payload: JobPayload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobPayload {
    /// A customer's SMS, to one agent in WhatsApp (docs/using.md).
    ForwardToAgent(ForwardToAgent),
    /// An agent's reply, to the customer by SMS (docs/media.md, docs/using.md).
    SendSms(SendSms),
    /// A message from the bridge itself to an agent: a delivery reaction, a failure reason,
    /// a "which conversation?" list (docs/using.md).
    NotifyAgent(NotifyAgent),
    /// A text from the bridge itself to a customer: an automated reply or a keyword's
    /// answer (docs/using.md).
    AutoReply(AutoReply),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoReply {
    pub conversation: ConversationKey,
    pub reason: AutoReplyReason,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendSms {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    /// Who wrote it, and their WhatsApp message: the delivery result is shown on it.
    pub agent: WaId,
    pub agent_wamid: Wamid,
    pub text: String,
    /// The agent's media, relayed as links the SMS provider fetches (docs/media.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<WhatsAppMedia>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyAgent {
    pub line: LineId,
    /// An agent, by phone; or someone who is not one (the daily reply), by whichever id
    /// they have.
    pub agent: WhatsAppRecipient,
    pub message: WhatsAppMessage,
    /// The line template's parameters (handle, customer, text) to use instead when the
    /// agent's 24 h window has closed (131047), so the notice never fails silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<String>>,
}

/// Where a job's progress is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegLocation<'a> {
    /// A leg of a message in a conversation's thread.
    Message { conversation: &'a ConversationKey, message_id: &'a MessageId },
    /// An item of its own (the bridge's notices to agents belong to no message).
    Standalone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardToAgent {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub agent: WaId,
    pub text: String,
    /// Attachments WhatsApp can't carry (or when media relay is off), as content-type labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    /// The customer's MMS parts WhatsApp can show, sent after the copy (docs/media.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Attachment>,
    pub received_at: Timestamp,
    /// The text was a compliance keyword (docs/using.md): the copy says what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<CustomerKeyword>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a delivery job: {0}")]
pub struct JobDecodeError(String);

impl Job {
    pub fn decode(body: &str) -> Result<Self, JobDecodeError> {
        serde_json::from_str(body).map_err(|e| JobDecodeError(e.to_string()))
    }

    pub fn encode(&self) -> String {
        // A Job is plain data (strings, numbers, a timestamp): serializing it can't fail.
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("job serializes: {e}"))
    }

    pub fn kind(&self) -> JobKind {
        match self.payload {
            JobPayload::ForwardToAgent(_) => JobKind::ForwardToAgent,
            JobPayload::SendSms(_) => JobKind::SendSms,
            JobPayload::NotifyAgent(_) => JobKind::NotifyAgent,
            JobPayload::AutoReply(_) => JobKind::AutoReply,
        }
    }

    pub fn leg_location(&self) -> LegLocation<'_> {
        match &self.payload {
            JobPayload::ForwardToAgent(f) => {
                LegLocation::Message { conversation: &f.conversation, message_id: &f.message_id }
            }
            JobPayload::SendSms(s) => LegLocation::Message { conversation: &s.conversation, message_id: &s.message_id },
            JobPayload::NotifyAgent(_) | JobPayload::AutoReply(_) => LegLocation::Standalone,
        }
    }

    /// Who receives what this job sends (for the leg record and masked logs).
    /// The line the job belongs to.
    pub fn line(&self) -> &LineId {
        match &self.payload {
            JobPayload::ForwardToAgent(f) => &f.conversation.line,
            JobPayload::SendSms(s) => &s.conversation.line,
            JobPayload::NotifyAgent(n) => &n.line,
            JobPayload::AutoReply(a) => &a.conversation.line,
        }
    }

    pub fn recipient(&self) -> &str {
        match &self.payload {
            JobPayload::ForwardToAgent(f) => f.agent.as_str(),
            JobPayload::SendSms(s) => s.conversation.customer.as_str(),
            JobPayload::NotifyAgent(n) => n.agent.as_str(),
            JobPayload::AutoReply(a) => a.conversation.customer.as_str(),
        }
    }

    /// The recipient as logs and operators may see it: a masked number or WhatsApp id.
    pub fn masked_recipient(&self) -> String {
        match &self.payload {
            JobPayload::ForwardToAgent(f) => f.agent.masked(),
            JobPayload::SendSms(s) => s.conversation.customer.masked(),
            JobPayload::NotifyAgent(n) => n.agent.masked(),
            JobPayload::AutoReply(a) => a.conversation.customer.masked(),
        }
    }

    /// A notice to `agent`; `key` makes the id stable (a replay re-offers the same job).
    pub fn notice(key: String, line: LineId, agent: impl Into<WhatsAppRecipient>, message: WhatsAppMessage) -> Self {
        let agent = agent.into();
        Self {
            job_id: JobId::derived("n", &key),
            attempt: 0,
            payload: JobPayload::NotifyAgent(NotifyAgent { line, agent, message, fallback: None }),
        }
    }

    /// The bridge's own text to a customer; one job per (conversation, reason, `once_key`),
    /// so the same automated reply is sent at most once.
    pub fn auto_reply(conversation: ConversationKey, reason: AutoReplyReason, text: String, once_key: &str) -> Self {
        let key =
            format!("auto.{}.{}.{}.{once_key}", reason.as_str(), conversation.line, conversation.customer.digits());
        Self {
            job_id: JobId::derived("a", &key),
            attempt: 0,
            payload: JobPayload::AutoReply(AutoReply { conversation, reason, text }),
        }
    }

    /// The same notice, sent as the line's template (handle, customer, text) if the agent's
    /// window has closed.
    pub fn with_template_fallback(mut self, parameters: Vec<String>) -> Self {
        if let JobPayload::NotifyAgent(notice) = &mut self.payload {
            notice.fallback = Some(parameters);
        }
        self
    }

    /// Jobs of one group reach their recipient in queue order (an SQS FIFO message group):
    /// one customer's copies to one agent, one customer's SMS, one agent's notices.
    ///
    /// The recipient is hashed, as derived job ids are: group ids show in the SQS console
    /// and aren't covered by its encryption, and the numbers are personal data.
    pub fn order_group(&self) -> String {
        use sha2::Digest;
        let (kind, line, recipient) = match &self.payload {
            JobPayload::ForwardToAgent(f) => {
                ("fwd", &f.conversation.line, format!("{}.{}", f.conversation.customer.digits(), f.agent.as_str()))
            }
            // Agents' replies and the bridge's own texts to one customer share one order.
            JobPayload::SendSms(SendSms { conversation, .. })
            | JobPayload::AutoReply(AutoReply { conversation, .. }) => {
                ("sms", &conversation.line, conversation.customer.digits().to_owned())
            }
            JobPayload::NotifyAgent(n) => ("note", &n.line, n.agent.as_str().to_owned()),
        };
        format!("{kind}.{line}.{}", hex::encode(&sha2::Sha256::digest(recipient.as_bytes())[..12]))
    }
}

/// What a WhatsApp send carries in `biz_opaque_callback_data`, which Meta echoes on the
/// message's status webhooks (`statuses[].biz_opaque_callback_data`, at most 512
/// characters; Cloud API changelog, checked 2026-12-05): the jobs it delivers, so a send
/// whose answer was lost is learnt of from its `sent` status instead of being sent again.
/// Forwarded copies also name their conversation's handle, which finds the message; a digest
/// names each job's (`part_handles`). No phone number: Meta stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTracking {
    pub line: LineId,
    pub handle: Option<super::conversation::Handle>,
    pub jobs: Vec<JobId>,
    /// A digest's: the handle of each job's conversation, in the jobs' order (`handle` none).
    pub part_handles: Vec<super::conversation::Handle>,
}

impl SendTracking {
    /// Meta's limit for `biz_opaque_callback_data`.
    pub const MAX_LEN: usize = 512;
    const PREFIX: &str = "bridge1";

    /// The send carried only the bridge's own notices: no conversation's handle, and every
    /// job a leg of its own (not of a message).
    pub fn is_notices_only(&self) -> bool {
        self.handle.is_none()
            && self.part_handles.is_empty()
            && !self.jobs.is_empty()
            && self.jobs.iter().all(|job| job.message_id().is_none())
    }

    /// The handle of job `index`'s conversation: the digest's part, or the send's own.
    pub fn handle_of(&self, index: usize) -> Option<&super::conversation::Handle> {
        if self.part_handles.is_empty() { self.handle.as_ref() } else { self.part_handles.get(index) }
    }

    /// `bridge1|<line>|<handle, a digest's handles joined by +, or ->|<job>,<job>…`, with as
    /// many jobs (and a digest's handles for them) as fit the limit.
    pub fn encode(&self) -> String {
        let mut jobs = self.jobs.len();
        loop {
            let text = self.encode_first(jobs);
            if text.len() <= Self::MAX_LEN || jobs <= 1 {
                return text;
            }
            jobs -= 1;
        }
    }

    fn encode_first(&self, jobs: usize) -> String {
        let handle = if self.part_handles.is_empty() {
            self.handle.as_ref().map_or("-", |h| h.as_str()).to_owned()
        } else {
            self.part_handles.iter().take(jobs).map(|h| h.as_str()).collect::<Vec<_>>().join("+")
        };
        let jobs: Vec<&str> = self.jobs.iter().take(jobs).map(JobId::as_str).collect();
        format!("{}|{}|{handle}|{}", Self::PREFIX, self.line, jobs.join(","))
    }

    /// The bridge's own tracking, or `None` for anything else in the field.
    pub fn parse(text: &str) -> Option<Self> {
        use super::conversation::Handle;
        let mut parts = text.split('|');
        if parts.next()? != Self::PREFIX {
            return None;
        }
        let line = LineId::parse(parts.next()?).ok()?;
        let handles = parts.next()?;
        let jobs = parts.next()?.split(',').map(JobId::parse).collect::<Result<Vec<_>, _>>().ok()?;
        if parts.next().is_some() || jobs.is_empty() {
            return None;
        }
        let (handle, part_handles) = match handles {
            "-" => (None, Vec::new()),
            digest if digest.contains('+') => {
                let handles = digest.split('+').map(Handle::parse).collect::<Result<Vec<_>, _>>().ok()?;
                if handles.len() != jobs.len() {
                    return None;
                }
                (None, handles)
            }
            handle => (Some(Handle::parse(handle).ok()?), Vec::new()),
        };
        Some(Self { line, handle, jobs, part_handles })
    }
}

/// Whether the business may send an agent free-form text (docs/using.md): they wrote within
/// 24 hours, and WhatsApp hasn't told us since (131047) that the window is closed.
pub fn agent_window_open(last_inbound_at: Option<Timestamp>, closed_at: Option<Timestamp>, now: Timestamp) -> bool {
    match last_inbound_at {
        Some(at) => {
            now.duration_since(at).unsigned_abs() < AGENT_WINDOW
                && at <= now
                && closed_at.is_none_or(|closed| at > closed)
        }
        None => false,
    }
}

/// How long a failed job waits before its next attempt: exponential backoff with full
/// jitter (a uniform draw up to `base · 2^(attempt-1)`), never sooner than the provider's
/// `Retry-After`; at the cap, a draw from the cap's upper half. A job failing for long is
/// spaced further: once it has spent half the queue's receive budget, every wait is at least
/// [`RetryPolicy::floor`], so a job failing for all of `max_job_age` is received fewer times
/// than SQS's `maxReceiveCount` and the queue's redrive can't dead-letter it during an outage
/// (the worker decides by age, not by receive count). SQS counts visibility in whole
/// seconds, so this rounds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// How long a job may keep failing before it needs an operator (default 24 h).
    pub max_job_age: Duration,
    /// The delivery queue's `maxReceiveCount`: its redrive is a backstop for poison only.
    pub max_receive_count: u32,
}

/// Receives a job needs besides its retries: deadline hand-backs, waits for a busy lease
/// or a reconciliation. Kept out of the receive budget.
pub const RECEIVE_COUNT_MARGIN: u32 = 100;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            max_job_age: Duration::from_secs(24 * 3600),
            max_receive_count: 1000,
        }
    }
}

impl RetryPolicy {
    /// Retries a job may spend at its own pace; the rest are spread over its maximum age.
    fn budget(&self) -> u32 {
        self.max_receive_count.saturating_sub(RECEIVE_COUNT_MARGIN).max(2)
    }

    /// The shortest wait once a job has spent half its receive budget: the other half then
    /// spans the whole maximum age.
    pub fn floor(&self) -> Duration {
        self.max_job_age / (self.budget() - self.budget() / 2)
    }

    /// `attempt` counts attempts so far (1 after the first failure).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let uncapped = self.base.saturating_mul(1 << exponent);
        let mut wait = if uncapped < self.cap {
            Duration::from_millis(rng.u64(0..=millis(uncapped)))
        } else {
            Duration::from_millis(rng.u64(millis(self.cap / 2)..=millis(self.cap)))
        };
        if attempt > self.budget() / 2 {
            wait = wait.max(self.floor());
        }
        let wait = retry_after.map_or(wait, |after| wait.max(after));
        Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }

    /// Whether a job first queued `age` ago has failed for too long to retry again.
    pub fn expired(&self, age: Duration) -> bool {
        age >= self.max_job_age
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What went wrong when calling a provider, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderFailure {
    /// The request never reached the provider (no connection, DNS, a connect timeout):
    /// nothing was sent.
    NotSent(String),
    /// The request may have reached the provider but no readable answer came back: a
    /// timeout after sending, a connection lost mid-request, a success we can't read. It may
    /// have been sent; the worker finds out before sending again.
    Ambiguous(String),
    /// An HTTP answer other than success, with the provider's own error code if it gave one.
    Rejected { http_status: u16, code: Option<i64>, message: String, retry_after: Option<Duration> },
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSent(e) => write!(f, "not sent: {e}"),
            Self::Ambiguous(e) => write!(f, "no answer, may have been sent: {e}"),
            Self::Rejected { http_status, code: Some(code), message, .. } => {
                write!(f, "HTTP {http_status}, code {code}: {message}")
            }
            Self::Rejected { http_status, code: None, message, .. } => write!(f, "HTTP {http_status}: {message}"),
        }
    }
}

/// What a job delivers; its name is the `kind` a leg records and metrics are labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A customer's text copied to an agent.
    ForwardToAgent,
    /// An agent's reply, by SMS to the customer.
    SendSms,
    /// A notice to an agent (✅/❌, claimed by, how to type a command...).
    NotifyAgent,
    /// An automated reply to a customer (first contact, after hours...).
    AutoReply,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForwardToAgent => "forward_to_agent",
            Self::SendSms => "send_sms",
            Self::NotifyAgent => "notify_agent",
            Self::AutoReply => "auto_reply",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::ForwardToAgent, Self::SendSms, Self::NotifyAgent, Self::AutoReply]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a leg's last attempt failed, as the leg records it: the provider outcome's class, or
/// the store failing around the send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Provider(ErrorClass),
    /// The store refused a write around the send; the job is given back.
    Store,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider(ErrorClass::Retry) => "retry",
            Self::Provider(ErrorClass::Permanent) => "permanent",
            Self::Provider(ErrorClass::Fallback) => "fallback",
            Self::Provider(ErrorClass::Escalate) => "escalate",
            Self::Provider(ErrorClass::Ambiguous) => "ambiguous",
            Self::Store => "store",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        use ErrorClass::*;
        [Retry, Permanent, Fallback, Escalate, Ambiguous]
            .into_iter()
            .map(Self::Provider)
            .chain([Self::Store])
            .find(|class| class.as_str() == text)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the worker does about a failure (docs/guarantees.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later, with backoff.
    Retry,
    /// Will never succeed: record it, tell the agent, finish the job.
    Permanent,
    /// Re-send another way: the template instead of free-form text (131047).
    Fallback,
    /// Our configuration or account is broken: record, alert, dead-letter the job.
    Escalate,
    /// It may have gone out: find out from the provider before sending again.
    Ambiguous,
}

impl ErrorClass {
    /// The one place that maps every provider outcome to a class (docs/guarantees.md).
    pub fn of(failure: &ProviderFailure) -> Self {
        match failure {
            ProviderFailure::NotSent(_) => Self::Retry,
            ProviderFailure::Ambiguous(_) => Self::Ambiguous,
            ProviderFailure::Rejected { http_status, code, .. } => match code.and_then(Self::of_code) {
                Some(class) => class,
                None => match http_status {
                    429 | 500..=599 => Self::Retry,
                    401 | 403 => Self::Escalate,
                    _ => Self::Permanent,
                },
            },
        }
    }

    /// Twilio and Meta error codes the bridge knows by number, and its own numbers for AWS
    /// SMS's reasons (`domain::aws_sms`); `None` for others. Also for codes that arrive in a
    /// status report rather than a send's answer.
    pub fn of_code(code: i64) -> Option<Self> {
        if let Some(reason) = super::aws_sms::AwsSmsReason::from_code(code) {
            return Some(reason.class());
        }
        Some(match code {
            20429 | 30001 | 131000 | 131016 | 131057 | 130429 | 131056 | 4 | 80007 => Self::Retry,
            // 131062: a send by business-scoped user id refused (Meta's error codes page,
            // 2026): sending again to the same id won't help.
            21211 | 21610 | 21612 | 21614 | 30005 | 30006 | 131026 | 131051 | 131062 | 100 | 131008 | 131009 => {
                Self::Permanent
            }
            132000..=132999 => Self::Permanent,
            131047 => Self::Fallback,
            190 | 0 | 3 | 10 | 200..=299 | 20003 | 368 | 131031 => Self::Escalate,
            _ => return None,
        })
    }
}

impl ForwardToAgent {
    /// The copy of a customer's message for `agent` (docs/using.md, docs/media.md): what WhatsApp can
    /// show goes as media (when the line relays media), the rest is named in the text.
    pub fn of_message(
        line: &super::line::Line,
        conversation: ConversationKey,
        message_id: MessageId,
        agent: WaId,
        text: &str,
        attachments: &[Attachment],
        received_at: Timestamp,
    ) -> Self {
        let (media, unsupported): (Vec<Attachment>, Vec<Attachment>) = attachments.iter().cloned().partition(|a| {
            line.media_relay && super::media::WhatsAppMediaKind::for_content_type(&a.content_type).is_some()
        });
        Self {
            conversation,
            message_id,
            agent,
            text: text.to_owned(),
            attachments: unsupported.into_iter().map(|a| a.content_type).collect(),
            media,
            received_at,
            keyword: CustomerKeyword::of(text),
        }
    }

    pub fn customer(&self) -> &E164 {
        &self.conversation.customer
    }
}

/// A leg as a claim found it, for whether an earlier attempt may have gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegDoubt {
    pub state: Option<LegState>,
    /// The leg is held by this very claim, written before and sent again (its answer was
    /// lost): nothing happened in between.
    pub same_claim: bool,
    /// Set when an attempt was given back uncertain; kept through later claims.
    pub uncertain_since: Option<Timestamp>,
    pub claimed_at: Option<Timestamp>,
}

/// What a claim took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorAttempt {
    /// Nothing can have gone out. `retried_claim`: the claim itself was written twice.
    Clear { retried_claim: bool },
    /// The attempt begun at `since` may have gone out; `earlier_in_doubt`: one before it too.
    InDoubt { since: Timestamp, earlier_in_doubt: bool, retried_claim: bool },
}

impl LegDoubt {
    pub fn assess(&self) -> PriorAttempt {
        let since = |first: Option<Timestamp>, then: Option<Timestamp>| first.or(then).unwrap_or(Timestamp::UNIX_EPOCH);
        if self.same_claim {
            return match self.uncertain_since {
                None => PriorAttempt::Clear { retried_claim: true },
                Some(at) => PriorAttempt::InDoubt { since: at, earlier_in_doubt: false, retried_claim: true },
            };
        }
        match self.state {
            // Given back uncertain: the attempt it names.
            Some(LegState::Uncertain) => PriorAttempt::InDoubt {
                since: since(self.uncertain_since, self.claimed_at),
                earlier_in_doubt: false,
                retried_claim: false,
            },
            // A delivery stopped while sending (or its claim's answer was lost): its
            // attempt, and an earlier one if that was given back uncertain.
            Some(LegState::Sending) => PriorAttempt::InDoubt {
                since: since(self.claimed_at, self.uncertain_since),
                earlier_in_doubt: self.uncertain_since.is_some(),
                retried_claim: false,
            },
            _ => PriorAttempt::Clear { retried_claim: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> ConversationKey {
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse("+14155550134").unwrap() }
    }

    fn jobs() -> Vec<Job> {
        let message_id = MessageId::new_v7();
        let agent = WaId::parse("14155550111").unwrap();
        let wamid = Wamid::parse("wamid.HBgLMTQxNTU1NTAxMTEVAgARGBI=").unwrap();
        vec![
            Job {
                job_id: JobId::for_leg(&message_id, 1),
                attempt: 2,
                payload: JobPayload::ForwardToAgent(ForwardToAgent {
                    conversation: conversation(),
                    message_id: message_id.clone(),
                    agent: agent.clone(),
                    text: "hi".into(),
                    attachments: vec!["text/vcard".into()],
                    media: vec![Attachment {
                        url: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1".into(),
                        content_type: "image/jpeg".into(),
                    }],
                    received_at: Timestamp::UNIX_EPOCH,
                    keyword: None,
                }),
            },
            Job {
                job_id: JobId::for_leg(&message_id, 0),
                attempt: 0,
                payload: JobPayload::SendSms(SendSms {
                    conversation: conversation(),
                    message_id,
                    agent: agent.clone(),
                    agent_wamid: wamid.clone(),
                    text: "See you at 9".into(),
                    media: WhatsAppMedia::parse("1013859600285441", "image/png").into_iter().collect(),
                }),
            },
            Job::notice(
                format!("{}:delivered", wamid.as_str()),
                LineId::parse("main").unwrap(),
                agent,
                WhatsAppMessage::Reaction { message: wamid, emoji: "✅".into() },
            ),
        ]
    }

    #[test]
    fn derived_job_ids_are_stable_and_hold_no_phone_number() {
        let agent = WaId::parse("14155550111").unwrap();
        let line = LineId::parse("main").unwrap();
        let notice = |key: &str| Job::notice(key.to_owned(), line.clone(), agent.clone(), WhatsAppMessage::text("hi"));
        let reply = |once| Job::auto_reply(conversation(), AutoReplyReason::FirstContact, "Thanks".into(), once);
        for job in [notice("nonagent:main:14155550111:2026-12-03"), reply("first")] {
            let id = job.job_id.as_str();
            assert!(!id.contains("4155550") && JobId::parse(id).is_ok(), "{id}");
        }
        assert_eq!(notice("k").job_id, notice("k").job_id, "a replay makes the same id");
        assert_ne!(notice("k").job_id, notice("k2").job_id);
        assert_ne!(reply("first").job_id, reply("second").job_id);
    }

    #[test]
    fn job_json_round_trips_with_the_spec_fields() {
        for job in jobs() {
            let json: serde_json::Value = serde_json::from_str(&job.encode()).unwrap();
            for field in ["job_id", "kind", "payload", "attempt"] {
                assert!(json.get(field).is_some(), "{field} missing in {json}");
            }
            assert_eq!(json["kind"], job.kind().as_str());
            assert_eq!(Job::decode(&job.encode()).unwrap(), job);
        }
    }

    #[test]
    fn the_masked_recipient_hides_the_number_of_every_kind() {
        let reply = Job::auto_reply(conversation(), AutoReplyReason::FirstContact, "Thanks".into(), "first");
        let masked: Vec<String> = jobs().iter().chain([&reply]).map(Job::masked_recipient).collect();
        assert_eq!(masked, ["1415*****11", "+1415*****34", "1415*****11", "+1415*****34"]);
    }

    #[test]
    fn notice_ids_are_stable_and_key_safe() {
        let a = jobs().pop().unwrap();
        let b = jobs().pop().unwrap();
        assert_eq!(a.job_id, b.job_id, "the same key gives the same job");
        assert!(JobId::parse(a.job_id.as_str()).is_ok());
        assert!(matches!(a.leg_location(), LegLocation::Standalone));
        assert!(matches!(jobs()[1].leg_location(), LegLocation::Message { .. }));
        assert_eq!(jobs()[1].recipient(), "+14155550134");
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            max_job_age: Duration::from_secs(3600),
            max_receive_count: 1000,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..12 {
            let ceiling = (2u64 << (attempt - 1)).min(60);
            let delays: Vec<u64> = (0..200).map(|_| policy.delay(attempt, None, &mut rng).as_secs()).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempt}: {delays:?}");
            if ceiling < 60 {
                assert!(delays.iter().any(|d| *d < ceiling / 2 + 1), "jitter reaches low values");
            } else {
                assert!(delays.iter().all(|d| *d >= 30), "at the cap, the upper half: {delays:?}");
            }
        }
        for _ in 0..100 {
            assert!(policy.delay(1, Some(Duration::from_secs(30)), &mut rng) >= Duration::from_secs(30));
        }
        assert!(
            policy.delay(1, Some(Duration::from_millis(1500)), &mut fastrand::Rng::with_seed(1)).as_secs() >= 2,
            "rounded up to whole seconds"
        );
        // A job that has spent half its receive budget waits at least the floor: the rest of
        // the budget then spans its whole maximum age.
        let day = RetryPolicy { max_job_age: Duration::from_secs(24 * 3600), ..policy };
        assert_eq!(day.floor(), Duration::from_secs(192));
        assert!((0..100).all(|_| day.delay(450, None, &mut rng) <= Duration::from_secs(60)));
        assert!((0..100).all(|_| day.delay(451, None, &mut rng) == Duration::from_secs(192)));
    }

    proptest::proptest! {
        /// Law: a job that fails every attempt for `max_job_age` is received fewer times than
        /// the queue's `maxReceiveCount`, keeping `RECEIVE_COUNT_MARGIN` for waits and
        /// hand-backs: SQS's redrive never decides an outage.
        #[test]
        fn a_job_failing_for_its_whole_age_stays_under_the_receive_limit(
            base_ms in 100u64..10_000,
            cap_s in 1u64..900,
            age_h in 1u64..72,
            max_receive_count in 150u32..=1000,
            seed: u64,
        ) {
            let policy = RetryPolicy {
                base: Duration::from_millis(base_ms),
                cap: Duration::from_secs(cap_s),
                max_job_age: Duration::from_secs(age_h * 3600),
                max_receive_count,
            };
            let mut rng = fastrand::Rng::with_seed(seed);
            let (mut elapsed, mut receives) = (Duration::ZERO, 0u32);
            while !policy.expired(elapsed) {
                receives += 1;
                elapsed += policy.delay(receives, None, &mut rng);
            }
            proptest::prop_assert!(
                receives <= max_receive_count - RECEIVE_COUNT_MARGIN,
                "{receives} receives in {age_h} h (floor {:?})", policy.floor()
            );
        }
    }

    #[test]
    fn a_closed_window_stays_closed_until_the_agent_writes_again() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let hour = jiff::SignedDuration::from_hours(1);
        assert!(agent_window_open(Some(now - hour), None, now));
        assert!(!agent_window_open(Some(now - hour), Some(now - hour / 2), now), "131047 after their message");
        assert!(agent_window_open(Some(now - hour / 4), Some(now - hour / 2), now), "they wrote again since");
    }

    #[test]
    fn each_recipient_of_a_conversation_is_its_own_order_group() {
        let [forward, sms, notice] = &jobs()[..] else { panic!() };
        let groups = [forward.order_group(), sms.order_group(), notice.order_group()];
        for (group, prefix) in groups.iter().zip(["fwd.main.", "sms.main.", "note.main."]) {
            assert!(group.starts_with(prefix) && group.len() == prefix.len() + 24, "{group}");
            assert!(!group.contains("4155550"), "no phone number or WhatsApp id: {group}");
        }
        assert_eq!(jobs()[0].order_group(), groups[0], "one recipient, one group, every time");
        let mut other_agent = forward.clone();
        if let JobPayload::ForwardToAgent(f) = &mut other_agent.payload {
            f.agent = WaId::parse("14155550112").unwrap();
        }
        assert_ne!(other_agent.order_group(), groups[0], "each agent of a conversation is its own group");
    }

    #[test]
    fn a_digests_tracking_names_each_jobs_handle_and_keeps_them_aligned_when_cut() {
        let handles: Vec<crate::domain::Handle> = ["K", "M", "P"]
            .iter()
            .flat_map(|letter| {
                (2..=9).map(move |digit| crate::domain::Handle::parse(&format!("{letter}{digit}")).unwrap())
            })
            .take(20)
            .collect();
        let jobs: Vec<JobId> = (0..20).map(|_| JobId::for_leg(&MessageId::new_v7(), 0)).collect();
        let digest = SendTracking { line: LineId::parse("main").unwrap(), handle: None, jobs, part_handles: handles };
        let text = digest.encode();
        assert!(text.len() <= SendTracking::MAX_LEN, "{}", text.len());
        let cut = SendTracking::parse(&text).unwrap();
        assert!(cut.jobs.len() < 20 && cut.jobs.len() > 5, "{}", cut.jobs.len());
        assert_eq!(cut.part_handles, digest.part_handles[..cut.jobs.len()]);
        assert_eq!(cut.jobs, digest.jobs[..cut.jobs.len()]);
        assert_eq!((cut.handle_of(1), cut.handle_of(99)), (Some(&digest.part_handles[1]), None));
        assert!(!cut.is_notices_only());
    }

    #[test]
    fn send_tracking_round_trips_within_metas_limit_and_refuses_anything_else() {
        let message_id = MessageId::new_v7();
        let tracking = SendTracking {
            line: LineId::parse("main").unwrap(),
            handle: Some(crate::domain::Handle::parse("K7").unwrap()),
            jobs: (0..10).map(|leg| JobId::for_leg(&message_id, leg)).collect(),
            part_handles: Vec::new(),
        };
        let text = tracking.encode();
        assert!(text.len() <= SendTracking::MAX_LEN && !text.contains("4155550"), "{text}");
        assert_eq!(SendTracking::parse(&text), Some(tracking.clone()));
        let notice = SendTracking { handle: None, jobs: vec![JobId::parse("n-abc").unwrap()], ..tracking.clone() };
        assert_eq!(SendTracking::parse(&notice.encode()), Some(notice.clone()));
        assert!(notice.is_notices_only() && !tracking.is_notices_only());
        let orphan_leg = SendTracking { handle: None, ..tracking.clone() };
        assert!(!orphan_leg.is_notices_only(), "a message's leg, its handle unknown: not a notice");
        let many = SendTracking { jobs: (0..40).map(|leg| JobId::for_leg(&message_id, leg)).collect(), ..tracking };
        let cut = SendTracking::parse(&many.encode()).unwrap();
        assert!(many.encode().len() <= SendTracking::MAX_LEN && cut.jobs.len() < 40 && cut.jobs[0] == many.jobs[0]);
        for bad in [
            "",
            "bridge1",
            "bridge1|main|K7|",
            "bridge1|Main|-|n-1",
            "bridge1|main|-|n 1",
            "other|main|-|n-1",
            "bridge1|main|-|n-1|x",
            "bridge1|main|K7+M3|n-1",
            "bridge1|main|K7+|n-1,n-2",
        ] {
            assert_eq!(SendTracking::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_is_not_a_job() {
        for bad in ["", "{}", "null", r#"{"job_id":"x","attempt":0,"kind":"launch_rockets","payload":{}}"#, "\u{0}"] {
            assert!(Job::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_is_open_for_24_hours_after_the_agent_wrote() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let ago = |h: i64| Some(now - jiff::SignedDuration::from_hours(h));
        assert!(agent_window_open(ago(0), None, now));
        assert!(agent_window_open(ago(23), None, now));
        assert!(!agent_window_open(ago(24), None, now));
        assert!(!agent_window_open(None, None, now));
        // A clock skewed into the future doesn't open a window.
        assert!(!agent_window_open(ago(-1), None, now));
    }

    fn rejected(http_status: u16, code: Option<i64>) -> ProviderFailure {
        ProviderFailure::Rejected { http_status, code, message: String::new(), retry_after: None }
    }

    #[test]
    fn error_classes_follow_the_spec_table() {
        use ErrorClass::*;
        let table: &[(&[i64], ErrorClass)] = &[
            (&[20429, 30001, 131000, 131016, 131057, 130429, 131056, 4, 80007], Retry),
            (
                &[
                    21211, 21610, 21612, 21614, 30005, 30006, 131026, 131051, 131062, 100, 131008, 131009, 132000,
                    132001, 132018, 132999,
                ],
                Permanent,
            ),
            (&[131047], Fallback),
            (&[190, 0, 3, 10, 200, 250, 299, 20003, 368, 131031], Escalate),
        ];
        for (codes, class) in table {
            for &code in *codes {
                // The code decides, whatever the HTTP status it came with.
                for status in [400, 403, 429, 500] {
                    assert_eq!(ErrorClass::of(&rejected(status, Some(code))), *class, "code {code} status {status}");
                }
            }
        }
    }

    #[test]
    fn without_a_known_code_the_http_status_decides() {
        use ErrorClass::*;
        assert_eq!(ErrorClass::of(&ProviderFailure::NotSent("connection refused".into())), Retry);
        assert_eq!(ErrorClass::of(&ProviderFailure::Ambiguous("timed out".into())), Ambiguous);
        for (status, class) in [
            (429, Retry),
            (500, Retry),
            (503, Retry),
            (401, Escalate),
            (403, Escalate),
            (400, Permanent),
            (404, Permanent),
        ] {
            assert_eq!(ErrorClass::of(&rejected(status, None)), class, "{status}");
            assert_eq!(ErrorClass::of(&rejected(status, Some(987654))), class, "{status} unknown code");
        }
    }
}
