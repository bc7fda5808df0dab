//! The WhatsApp messages the bridge sends, and the Cloud API's limits on them, checked
//! where each message is built (SPEC §4.4, §5.4, §8).

use serde::{Deserialize, Serialize};

use super::conversation::Handle;
use super::delivery::ForwardToAgent;
use super::line::Line;
use super::message::Wamid;
use super::phone::E164;

/// Cloud API limits.
pub const TEXT_BODY_MAX_CHARS: usize = 4096;
pub const TEMPLATE_PARAMETER_MAX_CHARS: usize = 1000;
pub const INTERACTIVE_BODY_MAX_CHARS: usize = 1024;
pub const LIST_BUTTON_MAX_CHARS: usize = 20;
pub const LIST_ROW_TITLE_MAX_CHARS: usize = 24;
pub const LIST_ROW_DESCRIPTION_MAX_CHARS: usize = 72;
pub const LIST_MAX_ROWS: usize = 10;

/// Row ids of the conversation picker: `conv:` + handle.
pub const PICK_CONVERSATION_PREFIX: &str = "conv:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WhatsAppMessage {
    /// Free-form text, optionally quoting one of the recipient's messages.
    Text {
        body: String,
        reply_to: Option<Wamid>,
    },
    /// An approved template (outside the recipient's 24 h window).
    Template {
        name: String,
        language: String,
        parameters: Vec<String>,
    },
    Reaction {
        message: Wamid,
        emoji: String,
    },
    /// An interactive list with one section.
    List {
        body: String,
        button: String,
        rows: Vec<ListRow>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: String,
}

impl WhatsAppMessage {
    pub fn text(body: &str) -> Self {
        Self::Text { body: truncate_chars(body, TEXT_BODY_MAX_CHARS), reply_to: None }
    }

    /// A text quoting `message` (shown as a reply to it).
    pub fn reply(body: &str, message: &Wamid) -> Self {
        Self::Text { body: truncate_chars(body, TEXT_BODY_MAX_CHARS), reply_to: Some(message.clone()) }
    }

    pub fn is_free_form_text(&self) -> bool {
        matches!(self, Self::Text { .. })
    }
}

/// The copy of a customer's SMS an agent receives: labelled text inside the agent's window,
/// the line's template outside it.
pub fn agent_copy(line: &Line, handle: &Handle, job: &ForwardToAgent, window_open: bool) -> WhatsAppMessage {
    let customer = job.conversation.customer.pretty();
    let text = customer_text(job);
    if window_open {
        WhatsAppMessage::text(&format!("{handle} · {customer}\n{text}"))
    } else {
        WhatsAppMessage::Template {
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

/// A conversation the agent can pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickableConversation {
    pub handle: Handle,
    pub customer: E164,
    pub last_text: String,
}

/// "Which conversation is this for?" with up to ten open conversations, newest first.
pub fn conversation_picker(pending_text: &str, conversations: &[PickableConversation]) -> WhatsAppMessage {
    let preview = truncate_chars(pending_text.trim(), 600);
    let body = truncate_chars(
        &format!("Which conversation is this for? Pick one and I'll send it:\n\n“{preview}”"),
        INTERACTIVE_BODY_MAX_CHARS,
    );
    let rows = conversations
        .iter()
        .take(LIST_MAX_ROWS)
        .map(|c| ListRow {
            id: format!("{PICK_CONVERSATION_PREFIX}{}", c.handle.as_str()),
            title: truncate_chars(&format!("{} · {}", c.handle, c.customer.pretty()), LIST_ROW_TITLE_MAX_CHARS),
            description: truncate_chars(&single_line(&c.last_text), LIST_ROW_DESCRIPTION_MAX_CHARS),
        })
        .collect();
    WhatsAppMessage::List { body, button: "Conversations".to_owned(), rows }
}

/// The handle a picker row stands for.
pub fn picked_handle(row_id: &str) -> Option<Handle> {
    Handle::parse(row_id.strip_prefix(PICK_CONVERSATION_PREFIX)?).ok()
}

fn customer_text(job: &ForwardToAgent) -> String {
    let mut text = job.text.clone();
    for attachment in &job.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("[attachment: {attachment}]"));
    }
    if text.trim().is_empty() { "(empty message)".to_owned() } else { text }
}

/// Newlines and tabs become spaces and runs of spaces collapse: Meta rejects template
/// parameters that contain them (error 132018).
fn template_safe(text: &str) -> String {
    single_line(text)
}

fn single_line(text: &str) -> String {
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

pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationKey, LineId, Lines, MessageId, WaId};
    use jiff::Timestamp;

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
        ForwardToAgent {
            conversation: ConversationKey {
                line: LineId::parse("main").unwrap(),
                customer: E164::parse("+14155550134").unwrap(),
            },
            message_id: MessageId::new_v7(),
            agent: WaId::parse("14155550111").unwrap(),
            text: text.to_owned(),
            attachments: Vec::new(),
            received_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn k7() -> Handle {
        Handle::parse("K7").unwrap()
    }

    #[test]
    fn open_window_gets_labelled_text() {
        let copy = agent_copy(&line(), &k7(), &job("Is my order ready?"), true);
        assert_eq!(copy, WhatsAppMessage::text("#K7 · +1 415-555-0134\nIs my order ready?"));
    }

    #[test]
    fn closed_window_gets_the_template_with_safe_parameters() {
        let copy = agent_copy(&line(), &k7(), &job("line one\n\nline\ttwo     end"), false);
        assert_eq!(
            copy,
            WhatsAppMessage::Template {
                name: "new_customer_message".into(),
                language: "en".into(),
                parameters: vec!["#K7".into(), "+1 415-555-0134".into(), "line one line two end".into()],
            }
        );
    }

    #[test]
    fn attachments_and_empty_texts_are_visible() {
        let mut j = job("");
        let WhatsAppMessage::Text { body, .. } = agent_copy(&line(), &k7(), &j, true) else { panic!() };
        assert!(body.ends_with("(empty message)"));
        j.attachments = vec!["image/jpeg".into()];
        let WhatsAppMessage::Text { body, .. } = agent_copy(&line(), &k7(), &j, true) else { panic!() };
        assert!(body.ends_with("[attachment: image/jpeg]"));
    }

    #[test]
    fn long_texts_are_cut_to_the_cloud_api_limits() {
        let long = "x".repeat(5000);
        let WhatsAppMessage::Text { body, .. } = agent_copy(&line(), &k7(), &job(&long), true) else { panic!() };
        assert_eq!(body.chars().count(), TEXT_BODY_MAX_CHARS);
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&line(), &k7(), &job(&long), false) else {
            panic!()
        };
        assert_eq!(parameters[2].chars().count(), TEMPLATE_PARAMETER_MAX_CHARS);
    }

    #[test]
    fn the_picker_respects_the_list_limits() {
        let conversations: Vec<PickableConversation> = (0..15)
            .map(|i| PickableConversation {
                handle: Handle::parse(&format!(
                    "ABCDE{}",
                    ["F", "G", "H", "J", "K", "M", "N", "P", "Q", "R", "S", "T", "U", "V", "W"][i]
                ))
                .unwrap(),
                customer: E164::parse("+447700900123").unwrap(),
                last_text: "a long\nmultiline text ".repeat(10),
            })
            .collect();
        let WhatsAppMessage::List { body, button, rows } = conversation_picker(&"y".repeat(2000), &conversations)
        else {
            panic!()
        };
        assert!(body.chars().count() <= INTERACTIVE_BODY_MAX_CHARS);
        assert!(button.chars().count() <= LIST_BUTTON_MAX_CHARS);
        assert_eq!(rows.len(), LIST_MAX_ROWS);
        for row in &rows {
            assert!(row.title.chars().count() <= LIST_ROW_TITLE_MAX_CHARS, "{}", row.title);
            assert!(row.description.chars().count() <= LIST_ROW_DESCRIPTION_MAX_CHARS);
            assert!(!row.description.contains('\n'));
            assert_eq!(picked_handle(&row.id).map(|h| h.to_string()), Some(row.title[..7].to_owned()));
        }
        assert_eq!(picked_handle("act:claim"), None);
        assert_eq!(picked_handle("conv:not a handle"), None);
    }
}
