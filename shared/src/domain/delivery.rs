//! Delivery jobs (SPEC §9) and what a provider's answer means for them.
//!
//! A job is one copy of one message for one recipient. It travels through SQS as JSON
//! `{ "job_id", "attempt", "kind", "payload" }` and its progress is recorded as a leg of the
//! message in the store, keyed by `job_id`, which is what makes the worker idempotent.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::conversation::{ConversationKey, Handle, MessageId};
use super::line::Line;
use super::phone::{E164, WaId};

/// How long after an agent's last message the business may send them free-form text.
pub const AGENT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// The job for leg `leg` of a message: stable, so a replayed webhook re-offers the
    /// same jobs rather than new ones.
    pub fn for_leg(message: &MessageId, leg: usize) -> Self {
        Self(format!("{}:{leg}", message.as_str()))
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=100).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(format!("`{input}` is not a job id"))
        }
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardToAgent {
    pub conversation: ConversationKey,
    pub message_id: MessageId,
    pub agent: WaId,
    pub text: String,
    /// Attachments the customer sent, as `content type` labels, until media relay exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    pub received_at: Timestamp,
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
        }
    }
}

/// Whether the business may send an agent free-form text (SPEC §4.4).
pub fn agent_window_open(last_inbound_at: Option<Timestamp>, now: Timestamp) -> bool {
    match last_inbound_at {
        Some(at) => now.duration_since(at).unsigned_abs() < AGENT_WINDOW && at <= now,
        None => false,
    }
}

/// The WhatsApp message an agent receives for a customer's SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCopy {
    /// Inside the agent's window: `#K7 · +1 415-555-0134` then the text.
    Text { body: String },
    /// Outside it: the line's approved template with handle, customer and text.
    Template {
        name: String,
        language: String,
        parameters: Vec<String>,
    },
}

/// Cloud API limits: text bodies up to 4096 characters; template parameters may not hold
/// newlines, tabs or more than four spaces in a row, and we keep them short.
const TEXT_BODY_MAX_CHARS: usize = 4096;
const TEMPLATE_PARAMETER_MAX_CHARS: usize = 1000;

pub fn agent_copy(line: &Line, handle: &Handle, job: &ForwardToAgent, window_open: bool) -> AgentCopy {
    let customer = job.conversation.customer.pretty();
    let text = customer_text(job);
    if window_open {
        let body = truncate_chars(&format!("{handle} · {customer}\n{text}"), TEXT_BODY_MAX_CHARS);
        AgentCopy::Text { body }
    } else {
        AgentCopy::Template {
            name: line.template.name.clone(),
            language: line.template.language.clone(),
            parameters: vec![
                handle.to_string(),
                customer,
                truncate_chars(&template_safe(&text), TEMPLATE_PARAMETER_MAX_CHARS),
            ],
        }
    }
}

fn customer_text(job: &ForwardToAgent) -> String {
    let mut text = job.text.clone();
    for attachment in &job.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("[attachment: {attachment}]"));
    }
    if text.trim().is_empty() {
        "(empty message)".to_owned()
    } else {
        text
    }
}

/// Newlines and tabs become spaces and runs of spaces collapse: Meta rejects template
/// parameters that contain them (error 132018).
fn template_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out.trim().to_owned()
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
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
            Self::Rejected {
                http_status,
                code: Some(code),
                message,
                ..
            } => {
                write!(f, "HTTP {http_status}, code {code}: {message}")
            }
            Self::Rejected {
                http_status,
                code: None,
                message,
                ..
            } => write!(f, "HTTP {http_status}: {message}"),
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

    /// Twilio and Meta error codes named by the SPEC; `None` for codes it doesn't name.
    fn of_code(code: i64) -> Option<Self> {
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
    pub fn customer(&self) -> &E164 {
        &self.conversation.customer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::line::Lines;

    fn forward_job(conversation: ConversationKey, message_id: MessageId, leg: usize, agent: WaId, text: &str) -> Job {
        Job {
            job_id: JobId::for_leg(&message_id, leg),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent {
                conversation,
                message_id,
                agent,
                text: text.to_owned(),
                attachments: Vec::new(),
                received_at: Timestamp::UNIX_EPOCH,
            }),
        }
    }

    fn line() -> Line {
        let lines = Lines::from_json(
            "t",
            r#"[{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
                "template": { "name": "new_customer_message", "language": "en" } }]"#,
        )
        .unwrap();
        lines.iter().next().unwrap().clone()
    }

    fn job(text: &str) -> ForwardToAgent {
        let conversation = ConversationKey {
            line: crate::domain::line::LineId::parse("main").unwrap(),
            customer: E164::parse("+14155550134").unwrap(),
        };
        match forward_job(
            conversation,
            MessageId::new_v7(),
            0,
            WaId::parse("14155550111").unwrap(),
            text,
        )
        .payload
        {
            JobPayload::ForwardToAgent(f) => f,
        }
    }

    #[test]
    fn job_json_round_trips_with_the_spec_fields() {
        let j = Job {
            attempt: 2,
            ..forward_job(
                job("hi").conversation,
                MessageId::new_v7(),
                1,
                WaId::parse("14155550111").unwrap(),
                "hi",
            )
        };
        let json: serde_json::Value = serde_json::from_str(&j.encode()).unwrap();
        for field in ["job_id", "kind", "payload", "attempt"] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        assert_eq!(json["kind"], "forward_to_agent");
        assert_eq!(Job::decode(&j.encode()).unwrap(), j);
    }

    #[test]
    fn garbage_is_not_a_job() {
        for bad in [
            "",
            "{}",
            "null",
            r#"{"job_id":"x","attempt":0,"kind":"launch_rockets","payload":{}}"#,
            "\u{0}",
        ] {
            assert!(Job::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_is_open_for_24_hours_after_the_agent_wrote() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let ago = |h: i64| Some(now - jiff::SignedDuration::from_hours(h));
        assert!(agent_window_open(ago(0), now));
        assert!(agent_window_open(ago(23), now));
        assert!(!agent_window_open(ago(24), now));
        assert!(!agent_window_open(None, now));
        // A clock skewed into the future doesn't open a window.
        assert!(!agent_window_open(ago(-1), now));
    }

    #[test]
    fn open_window_gets_labelled_text() {
        let handle = Handle::parse("K7").unwrap();
        let copy = agent_copy(&line(), &handle, &job("Is my order ready?"), true);
        assert_eq!(
            copy,
            AgentCopy::Text {
                body: "#K7 · +1 415-555-0134\nIs my order ready?".into()
            }
        );
    }

    #[test]
    fn closed_window_gets_the_template_with_safe_parameters() {
        let handle = Handle::parse("K7").unwrap();
        let copy = agent_copy(&line(), &handle, &job("line one\n\nline\ttwo     end"), false);
        assert_eq!(
            copy,
            AgentCopy::Template {
                name: "new_customer_message".into(),
                language: "en".into(),
                parameters: vec!["#K7".into(), "+1 415-555-0134".into(), "line one line two end".into()],
            }
        );
    }

    #[test]
    fn attachments_and_empty_texts_are_visible() {
        let handle = Handle::parse("K7").unwrap();
        let mut j = job("");
        let AgentCopy::Text { body } = agent_copy(&line(), &handle, &j, true) else {
            panic!()
        };
        assert!(body.ends_with("(empty message)"));
        j.attachments = vec!["image/jpeg".into()];
        let AgentCopy::Text { body } = agent_copy(&line(), &handle, &j, true) else {
            panic!()
        };
        assert!(body.ends_with("[attachment: image/jpeg]"));
    }

    #[test]
    fn long_texts_are_cut_to_the_cloud_api_limits() {
        let handle = Handle::parse("K7").unwrap();
        let long = "x".repeat(5000);
        let AgentCopy::Text { body } = agent_copy(&line(), &handle, &job(&long), true) else {
            panic!()
        };
        assert_eq!(body.chars().count(), TEXT_BODY_MAX_CHARS);
        let AgentCopy::Template { parameters, .. } = agent_copy(&line(), &handle, &job(&long), false) else {
            panic!()
        };
        assert_eq!(parameters[2].chars().count(), TEMPLATE_PARAMETER_MAX_CHARS);
    }

    fn rejected(http_status: u16, code: Option<i64>) -> ProviderFailure {
        ProviderFailure::Rejected {
            http_status,
            code,
            message: String::new(),
            retry_after: None,
        }
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
                    assert_eq!(
                        ErrorClass::of(&rejected(status, Some(code))),
                        *class,
                        "code {code} status {status}"
                    );
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
            assert_eq!(
                ErrorClass::of(&rejected(status, Some(987654))),
                class,
                "{status} unknown code"
            );
        }
    }
}
