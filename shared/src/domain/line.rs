//! A line (docs/configuration.md): one business SMS number bridged to one WhatsApp Business number and its
//! agents. Lines are parsed at cold start (from an SSM parameter, again while a function runs:
//! `app::live_lines`); an invalid document fails the start with the path of the offending
//! field (`BRIDGE_LINES[1].agents[0]: ...`).

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::business_hours::BusinessHours;
use super::phone::{E164, WaId};
use super::sms_text::PROVIDER_MAX_UNITS;
use super::whatsapp_message::BUTTON_TITLE_MAX_CHARS;

/// Upper bound on agents per line: one inbound SMS writes one leg per agent into a single
/// DynamoDB item and sends their jobs in `SendMessageBatch` calls of ten.
pub const MAX_AGENTS_PER_LINE: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LineId(String);

impl LineId {
    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=32).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be 1 to 32 characters of a-z, 0-9, '-' or '_'".to_owned())
        }
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_newtype!(LineId, String);

/// The Cloud API's id of a business phone number (digits), used in `/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumberId(String);

impl PhoneNumberId {
    pub fn parse(input: &str) -> Result<Self, String> {
        if (1..=32).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be the numeric WhatsApp phone number id".to_owned())
        }
    }
}

string_newtype!(PhoneNumberId, String);

/// Which SMS provider carries a line's texts (docs/configuration.md, docs/aws-sms.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    Twilio,
    /// AWS End User Messaging SMS (the `pinpoint-sms-voice-v2` API), in the stack's own account.
    AwsEndUserMessaging,
}

impl SmsProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::AwsEndUserMessaging => "aws_end_user_messaging",
        }
    }
}

/// The AWS End User Messaging SMS phone number a line sends from: its id (`phone-…`) or ARN
/// (`arn:aws:sms-voice:<region>:<account>:phone-number/phone-…`; an ARN is required for a
/// number shared from another account). Pools and sender ids are refused: a pool may send
/// from another of its numbers and a sender id can't be answered, so the customer's reply
/// would not come back to the line's `sms_number` (docs/aws-sms.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OriginationIdentity(String);

impl OriginationIdentity {
    pub fn parse(input: &str) -> Result<Self, String> {
        let id_ok = |id: &str| {
            id.strip_prefix("phone-")
                .is_some_and(|rest| (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
        };
        let ok = match input.strip_prefix("arn:") {
            None => id_ok(input),
            Some(arn) => {
                // arn:<partition>:sms-voice:<region>:<account>:phone-number/<id>
                let parts: Vec<&str> = arn.splitn(5, ':').collect();
                parts.len() == 5
                    && parts[0].starts_with("aws")
                    && parts[1] == "sms-voice"
                    && !parts[2].is_empty()
                    && parts[3].len() == 12
                    && parts[3].bytes().all(|b| b.is_ascii_digit())
                    && parts[4].strip_prefix("phone-number/").is_some_and(id_ok)
            }
        };
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be an AWS End User Messaging SMS phone number id (phone-…) or its ARN \
                 (arn:aws:sms-voice:<region>:<account>:phone-number/phone-…)"
                .to_owned())
        }
    }
}

string_newtype!(OriginationIdentity, String);

/// Where a line's texts go out from, as its provider names the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsOrigin<'a> {
    /// The line's number: what customers see and text.
    pub number: &'a E164,
    pub provider: SmsSender<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsSender<'a> {
    /// Twilio sends `From` the number itself.
    Twilio,
    /// AWS sends from an origination identity: the line's `aws_origination_identity`, or,
    /// unset, the number itself (`SendTextMessage` takes a phone number as the identity).
    AwsEndUserMessaging { identity: Option<&'a OriginationIdentity> },
}

/// An approved WhatsApp message template, used when an agent's 24 h window is closed
/// (docs/using.md). Its body takes three parameters: handle, customer, text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub id: LineId,
    pub sms_number: E164,
    pub sms_provider: SmsProviderKind,
    /// AWS lines only: the phone number id or ARN to send from (default: `sms_number`).
    #[serde(default)]
    pub aws_origination_identity: Option<OriginationIdentity>,
    pub whatsapp_phone_number_id: PhoneNumberId,
    pub agents: Vec<WaId>,
    pub template: TemplateRef,
    #[serde(default)]
    pub help_text: Option<String>,
    #[serde(default)]
    pub allow_agent_initiated: bool,
    /// How long an agent's focus on a conversation lasts (docs/using.md).
    #[serde(default = "default_focus_hours")]
    pub focus_hours: u32,
    /// When agents answer; outside these hours customers get `auto_replies.after_hours`.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    #[serde(default)]
    pub auto_replies: AutoReplies,
    /// A third button on forwarded messages that sends a canned answer (docs/using.md).
    #[serde(default)]
    pub quick_reply: Option<QuickReply>,
    /// Replace curly quotes, dashes, ellipses and odd spaces with GSM-7 ones so a reply
    /// isn't sent (and billed) as UCS-2 for a typographic quote (docs/using.md).
    #[serde(default = "default_true")]
    pub smart_encoding: bool,
    /// Relay media between MMS and WhatsApp through the bridge's signed links (docs/media.md,
    /// §5.6); off, attachments are named in text instead.
    #[serde(default = "default_true")]
    pub media_relay: bool,
    /// Tell the agent when one reply costs more than this many SMS segments.
    #[serde(default = "default_segment_warning")]
    pub segment_warning: u32,
    /// Where a claimed conversation's texts are copied (`domain::copies`).
    #[serde(default)]
    pub claimed_copies: super::copies::ClaimedCopies,
    /// How an agent learns their reply was delivered (`domain::notices::delivery_result`).
    #[serde(default)]
    pub delivery_receipts: DeliveryReceipts,
    /// Agents' own working hours: outside them an agent is off duty as if `/away`
    /// (`domain::copies`). Agents not listed are on duty until they say `/away`.
    #[serde(default)]
    pub agent_hours: std::collections::BTreeMap<WaId, BusinessHours>,
}

impl Line {
    /// Who sends this line's texts, for the SMS provider port.
    pub fn sms_origin(&self) -> SmsOrigin<'_> {
        let provider = match self.sms_provider {
            SmsProviderKind::Twilio => SmsSender::Twilio,
            SmsProviderKind::AwsEndUserMessaging => {
                SmsSender::AwsEndUserMessaging { identity: self.aws_origination_identity.as_ref() }
            }
        };
        SmsOrigin { number: &self.sms_number, provider }
    }
}

/// Line option: how "delivered" shows on the agent's reply. A reaction is a message WhatsApp
/// may bill; marking the agent's message read is not a message at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryReceipts {
    /// The agent's message turns blue-ticked (read) when the SMS is delivered.
    #[default]
    ReadMark,
    /// A ✅ reaction on the agent's message.
    Reaction,
}

fn default_focus_hours() -> u32 {
    12
}

fn default_true() -> bool {
    true
}

fn default_segment_warning() -> u32 {
    3
}

/// The texts the bridge sends customers by itself (docs/using.md); each is off unless set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoReplies {
    /// To a customer's first message.
    #[serde(default)]
    pub first_contact: Option<String>,
    /// Outside `business_hours`; `{opens}` becomes e.g. "Monday 09:00".
    #[serde(default)]
    pub after_hours: Option<String>,
    /// When the line has no agents.
    #[serde(default)]
    pub no_agent: Option<String>,
    /// Confirmations of STOP and START. Leave them unset when the SMS provider already
    /// answers these keywords (Twilio does by default), so the customer gets one answer.
    #[serde(default)]
    pub opt_out: Option<String>,
    #[serde(default)]
    pub opt_in: Option<String>,
    /// The same automated reply goes to a conversation at most once in this many hours
    /// ("closed now" at most once per closed period).
    #[serde(default = "default_auto_reply_window_hours")]
    pub window_hours: u32,
}

impl Default for AutoReplies {
    fn default() -> Self {
        Self {
            first_contact: None,
            after_hours: None,
            no_agent: None,
            opt_out: None,
            opt_in: None,
            window_hours: default_auto_reply_window_hours(),
        }
    }
}

fn default_auto_reply_window_hours() -> u32 {
    24
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickReply {
    /// The button's title (at most 20 characters, WhatsApp's limit).
    pub title: String,
    /// What the customer receives.
    pub text: String,
}

/// The longest automated text: one provider message (docs/using.md).
const AUTO_TEXT_MAX_CHARS: usize = PROVIDER_MAX_UNITS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct LinesError {
    /// Where in the document, e.g. `BRIDGE_LINES[0].sms_number`.
    pub path: String,
    pub reason: String,
}

/// Every line of the deployment, indexed the ways the webhooks look them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    lines: Vec<Line>,
}

impl Lines {
    /// Parses and validates the `BRIDGE_LINES` document; `source` names it in errors.
    pub fn from_json(source: &str, json: &str) -> Result<Self, LinesError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let lines: Vec<Line> = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner().to_string();
            let path = e.path().to_string();
            LinesError {
                path: if path == "." { source.to_owned() } else { format!("{source}{}", prefixed(&path)) },
                reason: inner,
            }
        })?;
        Self::new(source, lines)
    }

    pub fn new(source: &str, lines: Vec<Line>) -> Result<Self, LinesError> {
        let err = |path: String, reason: String| LinesError { path: format!("{source}{path}"), reason };
        if lines.is_empty() {
            return Err(err(String::new(), "at least one line is required".into()));
        }
        let mut ids = HashSet::new();
        let mut numbers = HashSet::new();
        let mut phone_ids = HashSet::new();
        for (i, line) in lines.iter().enumerate() {
            if !ids.insert(&line.id) {
                return Err(err(format!("[{i}].id"), format!("duplicate line id `{}`", line.id)));
            }
            if !numbers.insert(&line.sms_number) {
                return Err(err(format!("[{i}].sms_number"), "another line has this number".into()));
            }
            if !phone_ids.insert(&line.whatsapp_phone_number_id) {
                return Err(err(
                    format!("[{i}].whatsapp_phone_number_id"),
                    "another line has this phone number id".into(),
                ));
            }
            if line.aws_origination_identity.is_some() && line.sms_provider != SmsProviderKind::AwsEndUserMessaging {
                return Err(err(
                    format!("[{i}].aws_origination_identity"),
                    "only for lines whose sms_provider is aws_end_user_messaging".into(),
                ));
            }
            if line.agents.len() > MAX_AGENTS_PER_LINE {
                return Err(err(format!("[{i}].agents"), format!("at most {MAX_AGENTS_PER_LINE} agents")));
            }
            let mut agents = HashSet::new();
            for (a, agent) in line.agents.iter().enumerate() {
                if !agents.insert(agent) {
                    return Err(err(format!("[{i}].agents[{a}]"), "listed twice".into()));
                }
            }
            if let Some(stranger) = line.agent_hours.keys().find(|agent| !agents.contains(agent)) {
                return Err(err(
                    format!("[{i}].agent_hours.{}", stranger.as_str()),
                    "not one of the line's agents".into(),
                ));
            }
            let name_ok = !line.template.name.is_empty()
                && line.template.name.len() <= 512
                && line.template.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(err(
                    format!("[{i}].template.name"),
                    "must be lowercase letters, digits and '_' (a WhatsApp template name)".into(),
                ));
            }
            if line.template.language.is_empty() || line.template.language.len() > 16 {
                return Err(err(
                    format!("[{i}].template.language"),
                    "must be a language code such as `en` or `en_US`".into(),
                ));
            }
            if line.focus_hours == 0 || line.focus_hours > 24 * 30 {
                return Err(err(format!("[{i}].focus_hours"), "must be between 1 and 720".into()));
            }
            let replies = &line.auto_replies;
            let texts = [
                ("auto_replies.first_contact", &replies.first_contact),
                ("auto_replies.after_hours", &replies.after_hours),
                ("auto_replies.no_agent", &replies.no_agent),
                ("auto_replies.opt_out", &replies.opt_out),
                ("auto_replies.opt_in", &replies.opt_in),
                ("help_text", &line.help_text),
            ];
            for (field, text) in texts {
                if let Some(text) = text
                    && (text.trim().is_empty() || text.encode_utf16().count() > AUTO_TEXT_MAX_CHARS)
                {
                    return Err(err(
                        format!("[{i}].{field}"),
                        format!("must be 1 to {AUTO_TEXT_MAX_CHARS} characters"),
                    ));
                }
            }
            if replies.window_hours == 0 || replies.window_hours > 24 * 30 {
                return Err(err(format!("[{i}].auto_replies.window_hours"), "must be between 1 and 720".into()));
            }
            if let Some(quick) = &line.quick_reply {
                let title_chars = quick.title.trim().chars().count();
                if title_chars == 0 || title_chars > BUTTON_TITLE_MAX_CHARS {
                    return Err(err(
                        format!("[{i}].quick_reply.title"),
                        format!("must be 1 to {BUTTON_TITLE_MAX_CHARS} characters (a WhatsApp button title)"),
                    ));
                }
                if quick.text.trim().is_empty() || quick.text.encode_utf16().count() > AUTO_TEXT_MAX_CHARS {
                    return Err(err(
                        format!("[{i}].quick_reply.text"),
                        format!("must be 1 to {AUTO_TEXT_MAX_CHARS} characters"),
                    ));
                }
            }
            if line.segment_warning == 0 {
                return Err(err(format!("[{i}].segment_warning"), "must be at least 1".into()));
            }
        }
        Ok(Self { lines })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter()
    }

    /// The line whose SMS number received a customer's text.
    pub fn by_sms_number(&self, number: &E164) -> Option<&Line> {
        self.lines.iter().find(|l| &l.sms_number == number)
    }

    pub fn by_id(&self, id: &LineId) -> Option<&Line> {
        self.lines.iter().find(|l| &l.id == id)
    }

    /// Whether any line sends through `provider` (its client is built only then).
    pub fn use_provider(&self, provider: SmsProviderKind) -> bool {
        self.lines.iter().any(|l| l.sms_provider == provider)
    }

    /// The line a WhatsApp webhook is about (`metadata.phone_number_id`).
    pub fn by_phone_number_id(&self, id: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.whatsapp_phone_number_id.as_str() == id)
    }
}

fn prefixed(path: &str) -> String {
    if path.starts_with('[') { path.to_owned() } else { format!(".{path}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = r#"{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
        "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111", "14155550112"],
        "template": { "name": "new_customer_message", "language": "en" } }"#;

    fn parse(json: &str) -> Result<Lines, LinesError> {
        Lines::from_json("BRIDGE_LINES", json)
    }

    #[test]
    fn parses_the_spec_example() {
        let lines = parse(&format!("[{MAIN}]")).unwrap();
        let line = lines.by_sms_number(&E164::parse("+14155550100").unwrap()).unwrap();
        assert_eq!(line.id.as_str(), "main");
        assert_eq!(line.agents.len(), 2);
        assert_eq!(line.focus_hours, 12);
        assert!(lines.by_phone_number_id("106540352242922").is_some());
        assert!(lines.by_sms_number(&E164::parse("+14155550199").unwrap()).is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (MAIN.replace("+14155550100", "4155550100"), "BRIDGE_LINES[0].sms_number"),
            (MAIN.replace("\"14155550112\"", "\"+14155550112\""), "BRIDGE_LINES[0].agents[1]"),
            (MAIN.replace("\"twilio\"", "\"vonage\""), "BRIDGE_LINES[0].sms_provider"),
            (MAIN.replace("\"agents\"", "\"agnets\""), "BRIDGE_LINES[0].agnets"),
            (
                MAIN.replace(
                    "\"template\"",
                    r#""agent_hours": { "14155550199": { "time_zone": "Etc/UTC", "weekly": [{ "days": ["mon"], "open": "09:00", "close": "17:00" }] } }, "template""#,
                ),
                "BRIDGE_LINES[0].agent_hours.14155550199",
            ),
            (MAIN.replace("\"template\"", r#""claimed_copies": "nobody", "template""#), "BRIDGE_LINES[0].claimed_copies"),
            (MAIN.replace("\"template\"", r#""delivery_receipts": "sms", "template""#), "BRIDGE_LINES[0].delivery_receipts"),
            (MAIN.replace("new_customer_message", "New Message"), "BRIDGE_LINES[0].template.name"),
            (MAIN.replace("\"main\"", "\"Main Line\""), "BRIDGE_LINES[0].id"),
            (MAIN.replace("\"14155550112\"", "\"14155550111\""), "BRIDGE_LINES[0].agents[1]"),
            (
                MAIN.replace("\"template\"", r#""auto_replies": { "first_contact": " " }, "template""#),
                "BRIDGE_LINES[0].auto_replies.first_contact",
            ),
            (
                MAIN.replace("\"template\"", r#""auto_replies": { "first_contat": "Hi" }, "template""#),
                "BRIDGE_LINES[0].auto_replies.first_contat",
            ),
            (
                MAIN.replace(
                    "\"template\"",
                    r#""quick_reply": { "title": "A title far too long for it", "text": "x" }, "template""#,
                ),
                "BRIDGE_LINES[0].quick_reply.title",
            ),
            (MAIN.replace("\"template\"", r#""help_text": "", "template""#), "BRIDGE_LINES[0].help_text"),
        ];
        for (json, path) in cases {
            let e = parse(&format!("[{json}]")).unwrap_err();
            assert_eq!(e.path, path, "{e}");
        }
    }

    #[test]
    fn an_aws_line_sends_from_its_identity_or_its_number() {
        let aws = MAIN.replace("\"twilio\"", "\"aws_end_user_messaging\"");
        let lines = parse(&format!("[{aws}]")).unwrap();
        let line = lines.iter().next().unwrap();
        assert!(lines.use_provider(SmsProviderKind::AwsEndUserMessaging));
        assert!(!lines.use_provider(SmsProviderKind::Twilio));
        assert_eq!(line.sms_origin().provider, SmsSender::AwsEndUserMessaging { identity: None });
        assert_eq!(line.sms_origin().number.as_str(), "+14155550100");

        let arn = "arn:aws:sms-voice:us-east-1:111122223333:phone-number/phone-0123456789abcdef0123456789abcdef";
        for identity in ["phone-0123456789abcdef0123456789abcdef", arn] {
            let with = aws.replace("\"template\"", &format!(r#""aws_origination_identity": "{identity}", "template""#));
            let lines = parse(&format!("[{with}]")).unwrap();
            let origin = lines.iter().next().unwrap().sms_origin();
            let SmsSender::AwsEndUserMessaging { identity: Some(parsed) } = origin.provider else { panic!() };
            assert_eq!(parsed.as_str(), identity);
        }
        let twilio = parse(&format!("[{MAIN}]")).unwrap();
        assert_eq!(twilio.iter().next().unwrap().sms_origin().provider, SmsSender::Twilio);
    }

    #[test]
    fn an_origination_identity_is_a_phone_number_of_aws_sms() {
        let bad = [
            "",
            "phone-",
            "pool-0123456789abcdef",
            "senderid-ABC",
            "+14155550100",
            "phone-01 23",
            "arn:aws:sms-voice:us-east-1:111122223333:pool/pool-0123",
            "arn:aws:sns:us-east-1:111122223333:phone-number/phone-0123",
            "arn:aws:sms-voice:us-east-1:1111:phone-number/phone-0123",
            "arn:aws:sms-voice::111122223333:phone-number/phone-0123",
        ];
        for input in bad {
            assert!(OriginationIdentity::parse(input).is_err(), "{input:?}");
        }
        let aws = MAIN.replace("\"twilio\"", "\"aws_end_user_messaging\"");
        let pool = aws.replace("\"template\"", r#""aws_origination_identity": "pool-1", "template""#);
        assert_eq!(parse(&format!("[{pool}]")).unwrap_err().path, "BRIDGE_LINES[0].aws_origination_identity");
        let on_twilio = MAIN.replace("\"template\"", r#""aws_origination_identity": "phone-1", "template""#);
        let e = parse(&format!("[{on_twilio}]")).unwrap_err();
        assert_eq!(e.path, "BRIDGE_LINES[0].aws_origination_identity", "{e}");
    }

    #[test]
    fn rejects_duplicates_across_lines_and_empty_documents() {
        let e = parse(&format!("[{MAIN},{MAIN}]")).unwrap_err();
        assert_eq!(e.path, "BRIDGE_LINES[1].id");
        let other = MAIN.replace("\"main\"", "\"other\"");
        let e = parse(&format!("[{MAIN},{other}]")).unwrap_err();
        assert_eq!(e.path, "BRIDGE_LINES[1].sms_number");
        assert_eq!(parse("[]").unwrap_err().path, "BRIDGE_LINES");
        assert_eq!(parse("{").unwrap_err().path, "BRIDGE_LINES");
    }
}
