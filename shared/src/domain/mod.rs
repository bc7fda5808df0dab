//! The pure part: types that parse, rules that decide. No I/O, no async, no AWS types.

pub mod conversation;
pub mod delivery;
pub mod line;
pub mod message;
pub mod phone;

pub use conversation::{ConversationKey, Handle, MessageId};
pub use delivery::{AgentCopy, ErrorClass, ForwardToAgent, Job, JobId, JobPayload, ProviderFailure};
pub use line::{Line, LineId, Lines, PhoneNumberId};
pub use message::{Attachment, InboundSms, ProviderMessageId, Wamid};
pub use phone::{E164, WaId};
