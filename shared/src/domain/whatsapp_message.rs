//! The WhatsApp messages the bridge sends, and the Cloud API's limits on them, checked
//! where each message is built (docs/using.md).

use serde::{Deserialize, Serialize};

use super::conversation::Handle;
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
    /// The recipient's own message marked read (blue ticks): no message, nothing billed
    /// (Cloud API, "Mark messages as read").
    ReadMark {
        message: Wamid,
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
    /// Opt the customer out, as if they had texted STOP (their text read like a request).
    OptOut,
}

impl ButtonAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Close => "close",
            Self::QuickReply => "quick",
            Self::OptOut => "optout",
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
            "optout" => Self::OptOut,
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

    /// What the message says, in words: for a notice that has to travel inside a template.
    pub fn in_words(&self) -> String {
        match self {
            Self::Text { body, .. } | Self::Buttons { body, .. } | Self::List { body, .. } => body.clone(),
            Self::Reaction { emoji, .. } => emoji.clone(),
            Self::ReadMark { .. } => "✅".to_owned(),
            Self::Template { parameters, .. } => parameters.join(" · "),
            Self::Media { kind, caption, .. } => caption.clone().unwrap_or_else(|| format!("[{}]", kind.as_str())),
        }
    }

    /// Anything but a template needs the recipient's 24 h window open (131047 otherwise).
    pub fn is_free_form_text(&self) -> bool {
        !matches!(self, Self::Template { .. })
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

/// Whitespace runs become one space, with none at the ends: for one-line previews.
pub(crate) fn single_line(text: &str) -> String {
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

    #[test]
    fn every_message_can_be_said_in_words() {
        let wamid = Wamid::parse("wamid.X").unwrap();
        assert_eq!(WhatsAppMessage::text("not delivered").in_words(), "not delivered");
        assert_eq!(WhatsAppMessage::Reaction { message: wamid, emoji: "❌".into() }.in_words(), "❌");
        let template = WhatsAppMessage::Template {
            name: "t".into(),
            language: "en".into(),
            parameters: vec!["#K7".into(), "hi".into()],
        };
        assert_eq!(template.in_words(), "#K7 · hi");
        let media = WhatsAppMessage::Media { kind: WhatsAppMediaKind::Image, link: "https://x".into(), caption: None };
        assert_eq!(media.in_words(), "[image]");
        let list = conversation_list(1, &[], false);
        assert!(!list.in_words().contains('{'), "no Debug output: {}", list.in_words());
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
