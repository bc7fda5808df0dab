//! Twilio: webhook verification and parsing (the SMS provider's inbound side).

pub mod form;
pub mod inbound;
pub mod messages;
pub mod signature;

pub use form::{FormError, encode_form, parse_form};
pub use inbound::{InboundParamError, inbound_sms};
pub use messages::{AccountStatus, TwilioClient};
pub use signature::{
    SIGNATURE_SETTINGS_HEADER, SignatureAlgorithm, TwilioSignatureError, TwilioSignatureVerifier,
    VerifiedTwilioRequest, compute_signature, compute_signature_with,
};
