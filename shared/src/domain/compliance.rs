//! Compliance keywords and automated replies to customers (docs/using.md).
//!
//! A keyword is the *whole* message, trimmed of spaces and punctuation, in any case:
//! `" Stop. "` opts out, "please stop texting" does not. What the bridge answers, if
//! anything, is decided here from the line's configuration; whether the customer is opted
//! out is the store's to know, and the worker checks it before every SMS (docs/using.md).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::line::Line;

/// The provider's code for "the recipient opted out" (Twilio 21610); the bridge records its
/// own refusals with it too, so agents read one reason.
pub const OPTED_OUT_CODE: i64 = 21610;

const OPT_OUT: [&str; 8] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"];
const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKeyword {
    OptOut,
    OptIn,
    Help,
}

impl CustomerKeyword {
    pub fn of(text: &str) -> Option<Self> {
        let word = text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation()).to_ascii_uppercase();
        if OPT_OUT.contains(&word.as_str()) {
            Some(Self::OptOut)
        } else if OPT_IN.contains(&word.as_str()) {
            Some(Self::OptIn)
        } else if HELP.contains(&word.as_str()) {
            Some(Self::Help)
        } else {
            None
        }
    }
}

/// Phrases that ask to stop texts in plain words. US rules since April 2025 (FCC, revocation
/// of consent "by any reasonable means") make these count; the bridge doesn't act on them by
/// itself (a customer writing "don't stop texting me!" exists) but puts an Opt out button in
/// front of the agents (docs/using.md, "Opt-out in plain words").
const OPT_OUT_PHRASES: [&str; 20] = [
    "stop texting",
    "stop text",
    "stop messaging",
    "stop sending",
    "stop contacting",
    "stop all",
    "unsubscribe",
    "opt out",
    "opt me out",
    "optout",
    "remove me",
    "take me off",
    "do not text",
    "don't text",
    "dont text",
    "do not contact",
    "don't contact",
    "no more texts",
    "no more messages",
    "leave me alone",
];

/// A text that isn't a keyword but reads like a request to stop texts ("stop texting me",
/// "unsubscribe me please"): its copies carry an Opt out button and a hint.
pub fn reads_like_opt_out(text: &str) -> bool {
    if CustomerKeyword::of(text).is_some() {
        return false;
    }
    // Lowercase words separated by single spaces, apostrophes kept (curly ones made straight).
    let words: String = text
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' => '\'',
            c if c.is_alphanumeric() || c == '\'' => c.to_ascii_lowercase(),
            _ => ' ',
        })
        .collect();
    let padded = format!(" {} ", words.split_whitespace().collect::<Vec<_>>().join(" "));
    OPT_OUT_PHRASES.iter().any(|phrase| {
        padded.contains(&format!(" {phrase} ")) || padded.contains(&format!(" {phrase}")) && phrase.ends_with("text")
    })
}

/// Why the bridge itself texts a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoReplyReason {
    FirstContact,
    AfterHours,
    NoAgent,
    OptOutConfirmation,
    OptInConfirmation,
    Help,
}

impl AutoReplyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstContact => "first_contact",
            Self::AfterHours => "after_hours",
            Self::NoAgent => "no_agent",
            Self::OptOutConfirmation => "opt_out",
            Self::OptInConfirmation => "opt_in",
            Self::Help => "help",
        }
    }

    /// Answers to a keyword go out even to an opted-out customer: the STOP confirmation is
    /// the last message they get, and carriers require HELP to be answered.
    pub fn allowed_when_opted_out(self) -> bool {
        matches!(self, Self::OptOutConfirmation | Self::Help)
    }
}

/// An automated reply due for one customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAutoReply {
    pub reason: AutoReplyReason,
    pub text: String,
    /// What makes it "at most once": replies with the same reason and `once_key` for one
    /// conversation are the same job, sent once.
    pub once_key: String,
}

/// What the bridge answers a customer's message, if anything (docs/using.md). At most one reply
/// per message: a keyword's answer, else "no agent", else "closed now", else the
/// first-contact acknowledgement.
pub fn auto_reply_for(
    line: &Line,
    keyword: Option<CustomerKeyword>,
    new_conversation: bool,
    nobody_on_duty: bool,
    provider_message_id: &str,
    now: Timestamp,
) -> Option<DueAutoReply> {
    let replies = &line.auto_replies;
    let due = |reason, text: &Option<String>, once_key: String| {
        text.as_ref().map(|text| DueAutoReply { reason, text: text.clone(), once_key })
    };
    // Each keyword message gets its own answer (the customer asked). After STOP nothing
    // else is said; START or HELP without a configured answer is treated as a text.
    let keyword_answer = match keyword {
        Some(CustomerKeyword::OptOut) => {
            return due(AutoReplyReason::OptOutConfirmation, &replies.opt_out, provider_message_id.to_owned());
        }
        Some(CustomerKeyword::OptIn) => {
            due(AutoReplyReason::OptInConfirmation, &replies.opt_in, provider_message_id.to_owned())
        }
        Some(CustomerKeyword::Help) => due(AutoReplyReason::Help, &line.help_text, provider_message_id.to_owned()),
        None => None,
    };
    if keyword_answer.is_some() {
        return keyword_answer;
    }
    let window = i64::from(replies.window_hours.max(1)) * 3600;
    let window_key = format!("w{}", now.as_second().div_euclid(window));
    // No agent, or every agent away (`/away`, domain::copies): the same answer.
    if line.agents.is_empty() || nobody_on_duty {
        return due(AutoReplyReason::NoAgent, &replies.no_agent, window_key);
    }
    if let Some(hours) = &line.business_hours
        && !hours.is_open(now)
    {
        // Once per closed period: the period is named by when it ends.
        let (once_key, opens) = match hours.next_opening(now) {
            Some(opening) => {
                (format!("o{}", opening.timestamp().as_second()), opening.strftime("%A %H:%M").to_string())
            }
            None => (window_key, String::new()),
        };
        let text = replies.after_hours.as_ref().map(|t| t.replace("{opens}", &opens));
        return due(AutoReplyReason::AfterHours, &text, once_key);
    }
    if new_conversation {
        return due(AutoReplyReason::FirstContact, &replies.first_contact, "first".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_that_ask_to_stop_read_like_an_opt_out_and_keywords_stay_keywords() {
        for asks in [
            "stop texting me",
            "Please STOP sending these",
            "unsubscribe me please",
            "Can you opt me out?",
            "Don\u{2019}t text me again!!",
            "do not text this number",
            "remove me from your list",
            "No more texts, thanks",
            "leave me alone",
        ] {
            assert!(reads_like_opt_out(asks), "{asks}");
        }
        for not_asking in ["STOP", " unsubscribe. ", "Is my bike ready?", "stopping by at 5", "optometrist", "removed"]
        {
            assert!(!reads_like_opt_out(not_asking), "{not_asking}");
        }
    }
    use crate::domain::Lines;

    fn line(extra: &str) -> Line {
        let json = format!(
            r#"[{{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
                "template": {{ "name": "new_customer_message", "language": "en" }} {extra} }}]"#
        );
        Lines::from_json("t", &json).unwrap().iter().next().unwrap().clone()
    }

    #[test]
    fn keywords_are_whole_messages_in_any_case_with_punctuation_around() {
        let cases = [
            ("STOP", Some(CustomerKeyword::OptOut)),
            (" Stop. ", Some(CustomerKeyword::OptOut)),
            ("stop!!", Some(CustomerKeyword::OptOut)),
            ("\tunsubscribe\n", Some(CustomerKeyword::OptOut)),
            ("StopAll", Some(CustomerKeyword::OptOut)),
            ("optout", Some(CustomerKeyword::OptOut)),
            ("Cancel", Some(CustomerKeyword::OptOut)),
            ("start", Some(CustomerKeyword::OptIn)),
            ("Unstop", Some(CustomerKeyword::OptIn)),
            ("yes.", Some(CustomerKeyword::OptIn)),
            ("help?", Some(CustomerKeyword::Help)),
            ("INFO", Some(CustomerKeyword::Help)),
            ("please stop", None),
            ("stop it", None),
            ("stopp", None),
            ("don't stop", None),
            ("yes please", None),
            ("", None),
            ("🛑", None),
            ("STOP STOP", None),
        ];
        for (text, expected) in cases {
            assert_eq!(CustomerKeyword::of(text), expected, "{text:?}");
        }
    }

    #[test]
    fn keyword_answers_only_when_configured() {
        let plain = line("");
        let now = Timestamp::UNIX_EPOCH;
        assert_eq!(auto_reply_for(&plain, Some(CustomerKeyword::OptOut), false, false, "SM1", now), None);
        assert_eq!(auto_reply_for(&plain, Some(CustomerKeyword::Help), false, false, "SM1", now), None);
        // Unanswered HELP on first contact still gets the acknowledgement; STOP never does.
        let ack = line(r#", "auto_replies": { "first_contact": "Thanks!" }"#);
        let first = auto_reply_for(&ack, Some(CustomerKeyword::Help), true, false, "SM1", now).unwrap();
        assert_eq!(first.reason, AutoReplyReason::FirstContact);
        assert_eq!(auto_reply_for(&ack, Some(CustomerKeyword::OptOut), true, false, "SM1", now), None);
        let configured = line(
            r#", "help_text": "Acme support. Reply STOP to opt out.",
               "auto_replies": { "opt_out": "You're unsubscribed.", "opt_in": "Welcome back." }"#,
        );
        let help = auto_reply_for(&configured, Some(CustomerKeyword::Help), true, false, "SM1", now).unwrap();
        assert_eq!(
            (help.reason, help.text.as_str(), help.once_key.as_str()),
            (AutoReplyReason::Help, "Acme support. Reply STOP to opt out.", "SM1")
        );
        let stop = auto_reply_for(&configured, Some(CustomerKeyword::OptOut), true, false, "SM2", now).unwrap();
        assert_eq!(stop.reason, AutoReplyReason::OptOutConfirmation);
        assert!(stop.reason.allowed_when_opted_out());
        let start = auto_reply_for(&configured, Some(CustomerKeyword::OptIn), false, false, "SM3", now).unwrap();
        assert_eq!(start.text, "Welcome back.");
        assert!(!AutoReplyReason::FirstContact.allowed_when_opted_out());
    }

    #[test]
    fn first_contact_after_hours_and_no_agent_take_precedence_in_that_order() {
        let texts = r#", "auto_replies": { "first_contact": "Thanks!", "after_hours": "Closed; back {opens}.",
            "no_agent": "Nobody here." }"#;
        // Monday 2026-11-23 12:00 and 20:00 in New York.
        let noon: Timestamp = "2026-11-23T17:00:00Z".parse().unwrap();
        let evening: Timestamp = "2026-11-24T01:00:00Z".parse().unwrap();
        let hours = r#", "business_hours": { "time_zone": "America/New_York",
            "weekly": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:00" }] }"#;
        let open_line = line(&format!("{texts}{hours}"));
        let first = auto_reply_for(&open_line, None, true, false, "SM1", noon).unwrap();
        assert_eq!((first.reason, first.once_key.as_str()), (AutoReplyReason::FirstContact, "first"));
        assert_eq!(auto_reply_for(&open_line, None, false, false, "SM1", noon), None);

        let closed = auto_reply_for(&open_line, None, true, false, "SM1", evening).unwrap();
        assert_eq!(closed.reason, AutoReplyReason::AfterHours);
        assert_eq!(closed.text, "Closed; back Tuesday 09:00.");
        // Two texts in the same closed period share the key; the next evening's doesn't.
        let later =
            auto_reply_for(&open_line, None, false, false, "SM2", evening + jiff::SignedDuration::from_hours(3));
        assert_eq!(later.unwrap().once_key, closed.once_key);
        let next_evening =
            auto_reply_for(&open_line, None, false, false, "SM3", evening + jiff::SignedDuration::from_hours(24));
        assert_ne!(next_evening.unwrap().once_key, closed.once_key);

        let json = format!(
            r#"[{{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": [],
                "template": {{ "name": "new_customer_message", "language": "en" }} {texts}{hours} }}]"#
        );
        let nobody = Lines::from_json("t", &json).unwrap().iter().next().unwrap().clone();
        let reply = auto_reply_for(&nobody, None, true, false, "SM1", noon).unwrap();
        assert_eq!(reply.reason, AutoReplyReason::NoAgent);
        assert!(reply.once_key.starts_with('w'));
        // Agents, all of them away: the same answer, before the business hours' one.
        let all_away = Line { agents: vec![crate::domain::WaId::parse("14155550111").unwrap()], ..nobody };
        assert_eq!(auto_reply_for(&all_away, None, false, true, "SM2", noon).unwrap().reason, AutoReplyReason::NoAgent);
        assert_eq!(auto_reply_for(&all_away, None, false, false, "SM2", noon), None);
    }
}
