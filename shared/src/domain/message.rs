//! Messages as the bridge records them, independent of the provider that carried them.

use jiff::Timestamp;

use super::media::WhatsAppMedia;
use super::phone::{E164, WaId};
use super::whatsapp_user::{IdentityChange, UserId, WhatsAppUser};

/// A customer's text as received from the SMS provider, already verified and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundSms {
    /// The provider's id of this message (Twilio `MessageSid`): the dedupe key.
    pub provider_message_id: ProviderMessageId,
    pub from: E164,
    pub to: E164,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub received_at: Timestamp,
}

/// A provider's message id, bounded and safe to use in a store key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderMessageId(String);

impl ProviderMessageId {
    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(Self(input.to_owned())) } else { Err("must be 1 to 64 letters, digits, '-' or '_'".to_owned()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub url: String,
    pub content_type: String,
}

/// A message someone sent to a line's WhatsApp number, as the webhook reports it: from an
/// agent or anyone else, known by phone number, user id or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedWhatsApp {
    pub wamid: Wamid,
    pub sender: WhatsAppUser,
    pub context: Option<Wamid>,
    pub content: WhatsAppContent,
}

impl ReceivedWhatsApp {
    /// The same message, known to be from the agent configured as `agent`.
    pub fn from_agent(self, agent: WaId) -> InboundWhatsApp {
        InboundWhatsApp { wamid: self.wamid, from: agent, context: self.context, content: self.content }
    }
}

impl From<InboundWhatsApp> for ReceivedWhatsApp {
    fn from(message: InboundWhatsApp) -> Self {
        Self {
            wamid: message.wamid,
            sender: WhatsAppUser::by_phone(message.from),
            context: message.context,
            content: message.content,
        }
    }
}

/// An agent's message: [`ReceivedWhatsApp`] once its sender is recognised as one of the
/// line's agents, by the phone number the line configures for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundWhatsApp {
    pub wamid: Wamid,
    pub from: WaId,
    /// The message it replies to (a swipe-reply), if any.
    pub context: Option<Wamid>,
    pub content: WhatsAppContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatsAppContent {
    Text(String),
    /// A row picked in an interactive list the bridge sent.
    ListReply {
        id: String,
        title: String,
    },
    /// A reply button pressed (ids `act:…`).
    ButtonReply {
        id: String,
        title: String,
    },
    Reaction {
        emoji: String,
    },
    /// Image, audio, video, document, sticker...; `media` is the Graph API object, when the
    /// webhook named a usable one.
    Media {
        kind: String,
        caption: Option<String>,
        media: Option<WhatsAppMedia>,
    },
    /// WhatsApp's own notice that the sender's number or user id changed (`system`).
    IdentityChanged(IdentityChange),
    /// A type the bridge does not handle; recorded and acknowledged.
    Unsupported {
        kind: String,
    },
}

impl WhatsAppContent {
    pub fn kind(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::ListReply { .. } => "list_reply",
            Self::ButtonReply { .. } => "button_reply",
            Self::Reaction { .. } => "reaction",
            Self::IdentityChanged(_) => "system",
            Self::Media { kind, .. } | Self::Unsupported { kind } => kind,
        }
    }
}

/// A delivery report (`statuses[]`) on a message the line sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppStatusReport {
    pub wamid: Wamid,
    pub status: super::ReportedStatus,
    pub error_code: Option<i64>,
    /// The jobs the message delivered, echoed from the send (`biz_opaque_callback_data`).
    pub tracking: Option<super::SendTracking>,
    /// Who it was sent to (`recipient_id`), when it is a phone number.
    pub recipient: Option<super::WaId>,
    /// Their business-scoped user id (`recipient_user_id`), when the report carries it.
    pub recipient_user_id: Option<UserId>,
    /// What Meta bills for the message, when the report says (`pricing`).
    pub pricing: Option<super::pricing::Pricing>,
}

impl WhatsAppStatusReport {
    /// The category a billed message is counted under: once per message, on its `sent`
    /// report (which comes first and carries the pricing Meta will apply on delivery).
    pub fn billed_category(&self) -> Option<super::pricing::PricingCategory> {
        let pricing = self.pricing.filter(|p| p.billable)?;
        (self.status.tracked() == Some(super::DeliveryStatus::Sent)).then_some(pricing.category)
    }
}

/// A WhatsApp message id (`wamid.…`), as the Cloud API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Wamid(String);

impl Wamid {
    pub fn parse(input: &str) -> Result<Self, String> {
        if (1..=256).contains(&input.len()) && !input.chars().any(char::is_control) {
            Ok(Self(input.to_owned()))
        } else {
            Err("not a WhatsApp message id".to_owned())
        }
    }
}

string_newtype!(Wamid, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_bounded_key_safe_strings() {
        assert!(ProviderMessageId::parse("SM0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "SM#1", "a b", &"x".repeat(65), "SM\u{e9}"] {
            assert!(ProviderMessageId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Wamid::parse("wamid.HBgLMTQxNTU1NTAxMTEVAgARGBI=").is_ok());
        assert!(Wamid::parse("").is_err());
        assert!(Wamid::parse("a\nb").is_err());
    }
}
