//! The WhatsApp Cloud API (Graph API) over reqwest: sending messages.

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::adapters::{request_failure, retry_after};
use crate::domain::media::WhatsAppMediaKind;
use crate::domain::{PhoneNumberId, ProviderFailure, Wamid, WhatsAppMessage, WhatsAppRecipient};
use crate::ports::WhatsAppClient;

pub struct GraphClient {
    http: reqwest::Client,
    /// `{GRAPH_API_BASE}/{GRAPH_API_VERSION}`.
    versioned_base: String,
    access_token: SecretString,
}

impl GraphClient {
    pub fn new(http: reqwest::Client, base: &str, version: &str, access_token: SecretString) -> Self {
        Self { http, versioned_base: format!("{}/{}", base.trim_end_matches('/'), version), access_token }
    }

    /// Opens the connection to the Graph API during a cold start: a `GET` of the API root
    /// without the token, kept in the client's pool for the first send.
    pub async fn warm_up(&self) -> Result<(), reqwest::Error> {
        self.http.get(format!("{}/", self.versioned_base)).send().await.map(|_| ())
    }
}

/// The `/messages` request body for `message` (Cloud API reference, "Messages"): `to` a
/// phone number, or `recipient` a business-scoped user id (Meta, "Business-scoped user IDs",
/// read 2026-12-05).
pub fn message_body(to: &WhatsAppRecipient, message: &WhatsAppMessage) -> Value {
    // A read mark names the message, not the person (Cloud API, "Mark messages as read").
    if let WhatsAppMessage::ReadMark { message } = message {
        return json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message.as_str() });
    }
    let mut body = json!({ "messaging_product": "whatsapp", "recipient_type": "individual" });
    match to {
        WhatsAppRecipient::Phone(phone) => body["to"] = json!(phone.as_str()),
        WhatsAppRecipient::User(id) => body["recipient"] = json!(id.as_str()),
    }
    let fields = match message {
        WhatsAppMessage::Text { body, reply_to } => {
            let mut fields = json!({ "type": "text", "text": { "preview_url": false, "body": body } });
            if let Some(quoted) = reply_to {
                fields["context"] = json!({ "message_id": quoted.as_str() });
            }
            fields
        }
        WhatsAppMessage::Template { name, language, parameters } => json!({
            "type": "template",
            "template": {
                "name": name,
                "language": { "code": language },
                "components": [{
                    "type": "body",
                    "parameters": parameters.iter().map(|p| json!({ "type": "text", "text": p })).collect::<Vec<_>>(),
                }],
            },
        }),
        WhatsAppMessage::Reaction { message, emoji } => {
            json!({ "type": "reaction", "reaction": { "message_id": message.as_str(), "emoji": emoji } })
        }
        WhatsAppMessage::ReadMark { .. } => unreachable!("answered above"),
        WhatsAppMessage::Media { kind, link, caption } => {
            let mut object = json!({ "link": link });
            // Audio takes no caption.
            if let Some(caption) = caption.as_ref().filter(|_| *kind != WhatsAppMediaKind::Audio) {
                object["caption"] = json!(caption);
            }
            json!({ "type": kind.as_str(), kind.as_str(): object })
        }
        WhatsAppMessage::Buttons { body, buttons } => json!({
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": { "text": body },
                "action": {
                    "buttons": buttons.iter().map(|b| json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } })).collect::<Vec<_>>(),
                },
            },
        }),
        WhatsAppMessage::List { body, button, rows } => json!({
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": { "text": body },
                "action": {
                    "button": button,
                    "sections": [{
                        "title": "Open conversations",
                        "rows": rows.iter().map(|r| json!({ "id": r.id, "title": r.title, "description": r.description })).collect::<Vec<_>>(),
                    }],
                },
            },
        }),
    };
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    body
}

#[derive(Deserialize)]
struct SendResponse {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: GraphError,
}

#[derive(Deserialize)]
struct ReadMarkResponse {
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: Option<i64>,
    #[serde(default)]
    error_data: Option<Value>,
}

impl WhatsAppClient for GraphClient {
    async fn send(
        &self,
        from: &PhoneNumberId,
        to: &WhatsAppRecipient,
        message: &WhatsAppMessage,
        tracking: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        let url = format!("{}/{}/messages", self.versioned_base, from.as_str());
        let mut body = message_body(to, message);
        // A read mark has no status webhooks to echo anything on.
        if let Some(tracking) = tracking.filter(|_| !matches!(message, WhatsAppMessage::ReadMark { .. })) {
            // Echoed on the message's status webhooks (Cloud API "Messages" reference).
            body["biz_opaque_callback_data"] = json!(tracking);
        }
        let response = self
            .http
            .post(url)
            .bearer_auth(self.access_token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(request_failure)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        // A refusal whose body is cut off is still a refusal; a success's is ambiguous.
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(_) if !status.is_success() => Default::default(),
            Err(e) => return Err(request_failure(e)),
        };
        if status.is_success() {
            // A read mark answers `{"success": true}`: the marked message is its id.
            if let WhatsAppMessage::ReadMark { message } = message {
                let marked: ReadMarkResponse =
                    serde_json::from_slice(&bytes).map_err(|e| unexpected(status, e.to_string()))?;
                return if marked.success { Ok(message.clone()) } else { Err(unexpected(status, "not marked".into())) };
            }
            let sent: SendResponse = serde_json::from_slice(&bytes).map_err(|e| unexpected(status, e.to_string()))?;
            let id = sent
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| unexpected(status, "no message id".into()))?;
            return Wamid::parse(&id).map_err(|e| unexpected(status, e));
        }
        Err(rejected(status, &bytes, retry_after))
    }
}

impl GraphClient {
    /// Reads the business phone number `id` with the access token the worker sends with
    /// (`GET /{version}/{phone-number-id}?fields=id`; Meta, "WhatsApp Business Account Phone
    /// Number API" reference, v23.0, read 2026-12-06): whether the token and the line's number
    /// work, without messaging anyone. Meta documents reading a business number as needing
    /// `whatsapp_business_management` besides the sending permission (Meta, "Permissions",
    /// updated 2025-11-05, read 2026-12-06). Only `id` is asked for: the number itself never
    /// comes back.
    pub async fn read_phone_number(&self, id: &PhoneNumberId) -> Result<(), ProviderFailure> {
        let url = format!("{}/{}?fields=id", self.versioned_base, id.as_str());
        let response = self
            .http
            .get(url)
            .bearer_auth(self.access_token.expose_secret())
            .send()
            .await
            // A read: whatever happened to it, nothing was sent.
            .map_err(|e| ProviderFailure::NotSent(request_failure(e).to_string()))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        Err(rejected(status, &bytes, retry_after))
    }
}

/// A refusal as Meta words it: its error code, and the details (or message) without numbers.
fn rejected(status: StatusCode, bytes: &[u8], retry_after: Option<std::time::Duration>) -> ProviderFailure {
    let (code, message) = match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(ErrorResponse { error }) => {
            let details =
                error.error_data.as_ref().and_then(|d| d.get("details")).and_then(|d| d.as_str()).map(str::to_owned);
            (error.code, details.unwrap_or(error.message))
        }
        Err(_) => (None, String::from_utf8_lossy(bytes).chars().take(200).collect()),
    };
    // Providers quote the number they refused (Twilio 21211, 21612...): never log it.
    let message = crate::domain::scrub_numbers(&message);
    ProviderFailure::Rejected { http_status: status.as_u16(), code, message, retry_after }
}

fn unexpected(status: StatusCode, reason: String) -> ProviderFailure {
    // A 2xx we can't read: the message may have gone out.
    ProviderFailure::Ambiguous(format!("HTTP {} with an unreadable answer: {reason}", status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::whatsapp_message::ListRow;

    #[test]
    fn bodies_have_the_cloud_api_shapes() {
        let to = WhatsAppRecipient::parse("14155550111").unwrap();
        let quoted = Wamid::parse("wamid.Q").unwrap();
        let text = message_body(&to, &WhatsAppMessage::reply("not delivered", &quoted));
        assert_eq!(text["type"], "text");
        assert_eq!(text["context"]["message_id"], "wamid.Q");
        assert_eq!(text["messaging_product"], "whatsapp");
        let reaction = message_body(&to, &WhatsAppMessage::Reaction { message: quoted, emoji: "✅".into() });
        assert_eq!(reaction["reaction"]["emoji"], "✅");
        let list = message_body(
            &to,
            &WhatsAppMessage::List {
                body: "Which?".into(),
                button: "Conversations".into(),
                rows: vec![ListRow { id: "conv:K7".into(), title: "#K7".into(), description: "hi".into() }],
            },
        );
        assert_eq!(list["interactive"]["type"], "list");
        assert_eq!(list["interactive"]["action"]["sections"][0]["rows"][0]["id"], "conv:K7");
        assert_eq!(list["to"], "14155550111");
        let buttons = message_body(
            &to,
            &WhatsAppMessage::Buttons {
                body: "#K7 · hi".into(),
                buttons: vec![crate::domain::whatsapp_message::ReplyButton {
                    id: "act:claim:K7".into(),
                    title: "Claim".into(),
                }],
            },
        );
        assert_eq!(buttons["interactive"]["type"], "button");
        assert_eq!(buttons["interactive"]["body"]["text"], "#K7 · hi");
        assert_eq!(buttons["interactive"]["action"]["buttons"][0]["type"], "reply");
        assert_eq!(buttons["interactive"]["action"]["buttons"][0]["reply"]["id"], "act:claim:K7");
    }

    #[test]
    fn a_read_mark_names_the_message_only() {
        let to = WhatsAppRecipient::parse("14155550111").unwrap();
        let body = message_body(&to, &WhatsAppMessage::ReadMark { message: Wamid::parse("wamid.A").unwrap() });
        assert_eq!(body, json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A" }));
    }

    #[test]
    fn a_user_known_only_by_user_id_is_addressed_as_recipient() {
        let to = WhatsAppRecipient::parse("US.13491208655302741918").unwrap();
        let body = message_body(&to, &WhatsAppMessage::text("hi"));
        assert_eq!(body["recipient"], "US.13491208655302741918");
        assert!(body.get("to").is_none(), "{body}");
    }
}
