//! Twilio's incoming-message webhook parameters → [`InboundSms`].

use jiff::Timestamp;

use super::signature::VerifiedTwilioRequest;
use crate::domain::{Attachment, E164, InboundSms, ProviderMessageId};

/// Twilio allows at most 10 media items per MMS.
const MAX_MEDIA: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundParamError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

pub fn inbound_sms(request: &VerifiedTwilioRequest, received_at: Timestamp) -> Result<InboundSms, InboundParamError> {
    let required =
        |name: &'static str| request.get(name).filter(|v| !v.is_empty()).ok_or(InboundParamError::Missing(name));
    let invalid = |name: &'static str| move |reason: String| InboundParamError::Invalid { name, reason };

    let provider_message_id = ProviderMessageId::parse(required("MessageSid")?).map_err(invalid("MessageSid"))?;
    let from = E164::parse(required("From")?).map_err(|e| invalid("From")(e.to_string()))?;
    let to = E164::parse(required("To")?).map_err(|e| invalid("To")(e.to_string()))?;
    let body = request.get("Body").unwrap_or_default().to_owned();

    let num_media: usize = match request.get("NumMedia") {
        None | Some("") => 0,
        Some(n) => n.parse().map_err(|_| invalid("NumMedia")("not a number".into()))?,
    };
    if num_media > MAX_MEDIA {
        return Err(invalid("NumMedia")(format!("at most {MAX_MEDIA}")));
    }
    let attachments = (0..num_media)
        .filter_map(|i| {
            let url = request.get(&format!("MediaUrl{i}"))?;
            let content_type = request.get(&format!("MediaContentType{i}")).unwrap_or("application/octet-stream");
            Some(Attachment { url: url.to_owned(), content_type: content_type.to_owned() })
        })
        .collect();

    Ok(InboundSms { provider_message_id, from, to, body, attachments, received_at })
}
