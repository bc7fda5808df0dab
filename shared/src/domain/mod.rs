//! The pure part: types that parse, rules that decide. No I/O, no async, no AWS types.

/// For a `struct X(String)` with `X::parse(&str) -> Result<X, E>`: `as_str`, and the
/// `TryFrom<String>` / `Into<String>` pair that serde's `try_from`/`into` use, so every
/// deserialized value went through `parse`.
macro_rules! string_newtype {
    ($name:ident, $error:ty) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

pub mod agent_copy;
pub mod aws_sms;
pub mod business_hours;
pub mod compliance;
pub mod conversation;
pub mod copies;
pub mod delivery;
pub mod line;
pub mod log_safe;
pub mod media;
pub mod message;
pub mod notices;
pub mod pacing;
pub mod phone;
pub mod pricing;
pub mod retention;
pub mod routing;
pub mod sms_text;
pub mod status;
pub mod template_event;
pub mod whatsapp_message;
pub mod whatsapp_text;
pub mod whatsapp_user;

pub use conversation::{ConversationKey, Handle, MessageId};
pub use delivery::{
    AutoReply, ErrorClass, FailureClass, ForwardToAgent, Job, JobId, JobKind, JobPayload, LegLocation, LegState,
    NotifyAgent, ProviderFailure, RetryPolicy, SendSms, SendTracking,
};
pub use line::{Line, LineId, Lines, OriginationIdentity, PhoneNumberId, SmsOrigin, SmsProviderKind, SmsSender};
pub use log_safe::{LogId, scrub_numbers};
pub use message::{
    Attachment, InboundSms, InboundWhatsApp, ProviderMessageId, ReceivedWhatsApp, Wamid, WhatsAppContent,
    WhatsAppStatusReport,
};
pub use phone::{E164, WaId};
pub use status::{DeliveryStatus, ReportedStatus};
pub use whatsapp_message::WhatsAppMessage;
pub use whatsapp_user::{IdentityChange, UserId, WhatsAppRecipient, WhatsAppUser};
