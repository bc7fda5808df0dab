//! WhatsApp Business Platform (Cloud API): webhook verification and the Graph API client.

pub mod graph;
pub mod signature;

pub use graph::GraphClient;
pub use signature::{MetaSignatureError, MetaSignatureVerifier, VerifiedMetaPayload};
