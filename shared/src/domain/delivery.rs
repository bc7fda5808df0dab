//! Delivery jobs (SPEC §9) and what a provider's answer means for them.
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

/// How long after an agent's last message the business may send them free-form text.
pub const AGENT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// A customer's SMS, to one agent in WhatsApp (SPEC §4.4).
    ForwardToAgent(ForwardToAgent),
    /// An agent's reply, to the customer by SMS (SPEC §5.6, §6).
    SendSms(SendSms),
    /// A message from the bridge itself to an agent: a delivery reaction, a failure reason,
    /// a "which conversation?" list (SPEC §5.4, §8).
    NotifyAgent(NotifyAgent),
    /// A text from the bridge itself to a customer: an automated reply or a keyword's
    /// answer (SPEC §7).
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
    /// The agent's media, relayed as links the SMS provider fetches (SPEC §5.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<WhatsAppMedia>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyAgent {
    pub line: LineId,
    pub agent: WaId,
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
    /// The customer's MMS parts WhatsApp can show, sent after the copy (SPEC §4.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Attachment>,
    pub received_at: Timestamp,
    /// The text was a compliance keyword (SPEC §7): the copy says what it changed.
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

    pub fn kind(&self) -> &'static str {
        match self.payload {
            JobPayload::ForwardToAgent(_) => "forward_to_agent",
            JobPayload::SendSms(_) => "send_sms",
            JobPayload::NotifyAgent(_) => "notify_agent",
            JobPayload::AutoReply(_) => "auto_reply",
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

    /// A notice to `agent`; `key` makes the id stable (a replay re-offers the same job).
    pub fn notice(key: String, line: LineId, agent: WaId, message: WhatsAppMessage) -> Self {
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

/// Whether the business may send an agent free-form text (SPEC §4.4): they wrote within
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
/// jitter (a uniform draw up to `base · 2^(attempt-1)`, capped), never sooner than the
/// provider's `Retry-After`. SQS counts visibility in whole seconds, so this rounds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_secs(2), cap: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// `attempt` counts deliveries so far (1 after the first failure).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.cap);
        let jittered = Duration::from_millis(rng.u64(0..=u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX)));
        let wait = retry_after.map_or(jittered, |after| jittered.max(after));
        Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }
}

/// What went wrong when calling a provider, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderFailure {
    Timeout,
    Connection(String),
    /// An HTTP answer other than success, with the provider's own error code if it gave one.
    Rejected {
        http_status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Connection(e) => write!(f, "connection failed: {e}"),
            Self::Rejected { http_status, code: Some(code), message, .. } => {
                write!(f, "HTTP {http_status}, code {code}: {message}")
            }
            Self::Rejected { http_status, code: None, message, .. } => write!(f, "HTTP {http_status}: {message}"),
        }
    }
}

/// What the worker does about a failure (SPEC §9).
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
}

impl ErrorClass {
    /// The one place that maps every provider outcome to a class (SPEC §9).
    pub fn of(failure: &ProviderFailure) -> Self {
        match failure {
            ProviderFailure::Timeout | ProviderFailure::Connection(_) => Self::Retry,
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

    /// Twilio and Meta error codes named by the SPEC; `None` for codes it doesn't name. Also
    /// for codes that arrive in a status report rather than a send's answer.
    pub fn of_code(code: i64) -> Option<Self> {
        Some(match code {
            20429 | 30001 | 131000 | 131016 | 131057 | 130429 | 131056 | 4 | 80007 => Self::Retry,
            21211 | 21610 | 21612 | 21614 | 30005 | 30006 | 131026 | 131051 | 100 | 131008 | 131009 => Self::Permanent,
            132000..=132999 => Self::Permanent,
            131047 => Self::Fallback,
            190 | 0 | 3 | 10 | 200..=299 | 20003 | 368 | 131031 => Self::Escalate,
            _ => return None,
        })
    }
}

impl ForwardToAgent {
    /// The copy of a customer's message for `agent` (SPEC §4.4, §4.6): what WhatsApp can
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
            assert_eq!(json["kind"], job.kind());
            assert_eq!(Job::decode(&job.encode()).unwrap(), job);
        }
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
        let policy = RetryPolicy { base: Duration::from_secs(2), cap: Duration::from_secs(60) };
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..12 {
            let ceiling = (2u64 << (attempt - 1)).min(60);
            let delays: Vec<u64> = (0..200).map(|_| policy.delay(attempt, None, &mut rng).as_secs()).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempt}: {delays:?}");
            assert!(delays.iter().any(|d| *d < ceiling / 2 + 1), "jitter reaches low values");
        }
        for _ in 0..100 {
            assert!(policy.delay(1, Some(Duration::from_secs(30)), &mut rng) >= Duration::from_secs(30));
        }
        assert!(
            policy.delay(1, Some(Duration::from_millis(1500)), &mut fastrand::Rng::with_seed(1)).as_secs() >= 2,
            "rounded up to whole seconds"
        );
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
                    21211, 21610, 21612, 21614, 30005, 30006, 131026, 131051, 100, 131008, 131009, 132000, 132001,
                    132018, 132999,
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
        assert_eq!(ErrorClass::of(&ProviderFailure::Timeout), Retry);
        assert_eq!(ErrorClass::of(&ProviderFailure::Connection("reset".into())), Retry);
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
