//! The WhatsApp messages the bridge sends, and the Cloud API's limits on them, checked
//! where each message is built (docs/using.md).

use serde::{Deserialize, Serialize};

use super::compliance::CustomerKeyword;
use super::conversation::Handle;
use super::delivery::ForwardToAgent;
use super::line::Line;
use super::media::WhatsAppMediaKind;
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
pub const BUTTON_TITLE_MAX_CHARS: usize = 20;
pub const BUTTONS_MAX: usize = 3;
pub const BUTTON_ID_MAX_CHARS: usize = 256;

/// Reply-button ids on forwarded copies: `act:<action>:<handle>` (docs/using.md).
pub const ACTION_PREFIX: &str = "act:";

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
    /// An image, video, audio or document the Cloud API fetches from `link`.
    Media {
        kind: WhatsAppMediaKind,
        link: String,
        caption: Option<String>,
    },
    /// Interactive reply buttons (at most three) under a body of text.
    Buttons {
        body: String,
        buttons: Vec<ReplyButton>,
    },
    /// An interactive list with one section.
    List {
        body: String,
        button: String,
        rows: Vec<ListRow>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// What a reply button on a forwarded copy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    /// Assign the conversation to the agent who pressed it; the others are told.
    Claim,
    /// Close the conversation; the customer's next text reopens it.
    Close,
    /// Send the line's quick reply to the customer.
    QuickReply,
}

impl ButtonAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Close => "close",
            Self::QuickReply => "quick",
        }
    }

    pub fn button_id(self, handle: &Handle) -> String {
        format!("{ACTION_PREFIX}{}:{}", self.as_str(), handle.as_str())
    }

    /// Reads `act:<action>:<handle>`; anything else is not one of the bridge's buttons.
    pub fn parse_button_id(id: &str) -> Option<(Self, Handle)> {
        let (action, handle) = id.strip_prefix(ACTION_PREFIX)?.split_once(':')?;
        let action = match action {
            "claim" => Self::Claim,
            "close" => Self::Close,
            "quick" => Self::QuickReply,
            _ => return None,
        };
        Some((action, Handle::parse(handle).ok()?))
    }
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

    /// Anything but a template needs the recipient's 24 h window open (131047 otherwise).
    pub fn is_free_form_text(&self) -> bool {
        !matches!(self, Self::Template { .. })
    }
}

/// What the copy of a customer's SMS shows besides the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyFacts {
    /// The agent wrote to the business within 24 h: free-form and interactive messages allowed.
    pub window_open: bool,
    /// The customer opted out of SMS: replies can't be sent, so the copy says so.
    pub opted_out: bool,
}

/// The copy of a customer's SMS an agent receives (docs/using.md): labelled text with
/// Claim / Close / quick-reply buttons inside the agent's window, the line's template
/// outside it. A text too long for an interactive body goes without buttons.
pub fn agent_copy(line: &Line, handle: &Handle, job: &ForwardToAgent, facts: CopyFacts) -> WhatsAppMessage {
    let customer = job.conversation.customer.pretty();
    let mut text = annotated_text(job);
    if facts.opted_out && job.keyword.is_none() {
        text.push_str("\n\n");
        text.push_str(OPTED_OUT_NOTE);
    }
    if !facts.window_open {
        return WhatsAppMessage::Template {
            name: line.template.name.clone(),
            language: line.template.language.clone(),
            parameters: vec![
                handle.to_string(),
                customer,
                truncate_chars(&template_safe(&text), TEMPLATE_PARAMETER_MAX_CHARS),
            ],
        };
    }
    let body = format!("{handle} · {customer}\n{text}");
    if body.chars().count() > INTERACTIVE_BODY_MAX_CHARS {
        return WhatsAppMessage::text(&body);
    }
    let mut buttons = vec![
        ReplyButton { id: ButtonAction::Claim.button_id(handle), title: "Claim".to_owned() },
        ReplyButton { id: ButtonAction::Close.button_id(handle), title: "Close".to_owned() },
    ];
    if let Some(quick) = &line.quick_reply
        && !facts.opted_out
    {
        let title = truncate_chars(quick.title.trim(), BUTTON_TITLE_MAX_CHARS);
        buttons.push(ReplyButton { id: ButtonAction::QuickReply.button_id(handle), title });
    }
    WhatsAppMessage::Buttons { body, buttons }
}

const OPTED_OUT_NOTE: &str = "🚫 Opted out of SMS: replies can't be sent until they text START.";

/// The customer's text with its attachments and what a keyword in it changed.
pub fn annotated_text(job: &ForwardToAgent) -> String {
    let mut text = customer_text(job);
    let note = match job.keyword {
        Some(CustomerKeyword::OptOut) => Some(OPTED_OUT_NOTE),
        Some(CustomerKeyword::OptIn) => Some("✅ Opted back in to SMS: replies can be sent again."),
        Some(CustomerKeyword::Help) => Some("ℹ️ Asked for help (HELP)."),
        None => None,
    };
    if let Some(note) = note {
        text.push_str("\n\n");
        text.push_str(note);
    }
    text
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

/// `/list`: one page of open conversations, newest first; picking one focuses on it.
pub fn conversation_list(page: usize, conversations: &[ListedConversation], more: bool) -> WhatsAppMessage {
    let mut body = format!("Open conversations, newest first (page {page}). Pick one to answer it.");
    if more {
        body.push_str(&format!(" Send /list {} for more.", page + 1));
    }
    let rows = conversations
        .iter()
        .take(LIST_MAX_ROWS)
        .map(|c| {
            let claimed = c.claimed_by.as_ref().map(|name| format!("{name} · ")).unwrap_or_default();
            ListRow {
                id: format!("{PICK_CONVERSATION_PREFIX}{}", c.handle.as_str()),
                title: truncate_chars(&format!("{} · {}", c.handle, c.customer.pretty()), LIST_ROW_TITLE_MAX_CHARS),
                description: truncate_chars(
                    &single_line(&format!("{claimed}{}", c.last_text)),
                    LIST_ROW_DESCRIPTION_MAX_CHARS,
                ),
            }
        })
        .collect();
    WhatsAppMessage::List { body: truncate_chars(&body, INTERACTIVE_BODY_MAX_CHARS), button: "Open".to_owned(), rows }
}

/// A conversation as `/list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedConversation {
    pub handle: Handle,
    pub customer: E164,
    pub last_text: String,
    pub claimed_by: Option<String>,
}

/// The handle a picker row stands for.
pub fn picked_handle(row_id: &str) -> Option<Handle> {
    Handle::parse(row_id.strip_prefix(PICK_CONVERSATION_PREFIX)?).ok()
}

fn customer_text(job: &ForwardToAgent) -> String {
    let mut text = job.text.clone();
    for (i, item) in job.media.iter().enumerate() {
        if !text.is_empty() {
            text.push('\n');
        }
        let kind = WhatsAppMediaKind::for_content_type(&item.content_type).map_or("attachment", |k| k.as_str());
        text.push_str(&format!("[{kind} {}/{}]", i + 1, job.media.len()));
    }
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
            media: Vec::new(),
            received_at: Timestamp::UNIX_EPOCH,
            keyword: None,
        }
    }

    fn k7() -> Handle {
        Handle::parse("K7").unwrap()
    }

    const OPEN: CopyFacts = CopyFacts { window_open: true, opted_out: false };
    const CLOSED: CopyFacts = CopyFacts { window_open: false, opted_out: false };

    #[test]
    fn buttons_respect_the_cloud_api_limits_and_round_trip() {
        let mut with_quick = line();
        with_quick.quick_reply =
            Some(crate::domain::line::QuickReply { title: "On our way!".into(), text: "We're on our way.".into() });
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &job("Hi"), OPEN) else {
            panic!()
        };
        assert!(body.chars().count() <= INTERACTIVE_BODY_MAX_CHARS);
        assert_eq!(buttons.len(), BUTTONS_MAX);
        for button in &buttons {
            assert!(button.title.chars().count() <= BUTTON_TITLE_MAX_CHARS);
            assert!(button.id.len() <= BUTTON_ID_MAX_CHARS);
            assert_eq!(ButtonAction::parse_button_id(&button.id).map(|(_, h)| h), Some(k7()));
        }
        assert_eq!(ButtonAction::parse_button_id(&buttons[2].id).map(|(a, _)| a), Some(ButtonAction::QuickReply));
        // An opted-out customer can't be answered: no quick reply, and the copy says why.
        let opted_out = CopyFacts { window_open: true, opted_out: true };
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &job("Hi"), opted_out) else {
            panic!()
        };
        assert_eq!(buttons.len(), 2);
        assert!(body.contains("Opted out of SMS"), "{body}");
        // Over the interactive body limit: plain text, no buttons.
        let long = "y".repeat(INTERACTIVE_BODY_MAX_CHARS);
        assert!(matches!(agent_copy(&with_quick, &k7(), &job(&long), OPEN), WhatsAppMessage::Text { .. }));
        for bad in ["claim:K7", "act:claim", "act:claim:", "act:fly:K7", "act:claim:K0", "act:close:#K7 x", ""] {
            assert_eq!(ButtonAction::parse_button_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keywords_are_explained_on_the_copy() {
        let mut stop = job(" Stop. ");
        stop.keyword = Some(CustomerKeyword::OptOut);
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &stop, OPEN) else { panic!() };
        assert!(body.starts_with("#K7 · +1 415-555-0134\n Stop. \n\n🚫 Opted out of SMS"), "{body}");
        assert_eq!(body.matches("Opted out").count(), 1, "said once even though the store says opted out too");
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&line(), &k7(), &stop, CLOSED) else { panic!() };
        assert!(parameters[2].contains("Opted out of SMS"));
    }

    #[test]
    fn open_window_gets_labelled_text() {
        let copy = agent_copy(&line(), &k7(), &job("Is my order ready?"), OPEN);
        assert_eq!(
            copy,
            WhatsAppMessage::Buttons {
                body: "#K7 · +1 415-555-0134\nIs my order ready?".into(),
                buttons: vec![
                    ReplyButton { id: "act:claim:K7".into(), title: "Claim".into() },
                    ReplyButton { id: "act:close:K7".into(), title: "Close".into() },
                ],
            }
        );
    }

    #[test]
    fn closed_window_gets_the_template_with_safe_parameters() {
        let copy = agent_copy(&line(), &k7(), &job("line one\n\nline\ttwo     end"), CLOSED);
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
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &j, OPEN) else { panic!() };
        assert!(body.ends_with("(empty message)"));
        j.attachments = vec!["image/jpeg".into()];
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &j, OPEN) else { panic!() };
        assert!(body.ends_with("[attachment: image/jpeg]"));
    }

    #[test]
    fn long_texts_are_cut_to_the_cloud_api_limits() {
        let long = "x".repeat(5000);
        let WhatsAppMessage::Text { body, .. } = agent_copy(&line(), &k7(), &job(&long), OPEN) else { panic!() };
        assert_eq!(body.chars().count(), TEXT_BODY_MAX_CHARS);
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&line(), &k7(), &job(&long), CLOSED) else {
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
