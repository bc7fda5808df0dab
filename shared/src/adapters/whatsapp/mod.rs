//! WhatsApp Business Platform (Cloud API): webhook verification and the Graph API client.

pub mod graph;
pub mod signature;
pub mod webhook;

pub use graph::GraphClient;
pub use signature::{MetaSignatureError, MetaSignatureVerifier, VerifiedMetaPayload};
pub use webhook::{ChangeBatch, MalformedNotification, parse_notification};
