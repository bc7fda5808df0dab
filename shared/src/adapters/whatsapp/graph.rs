//! The WhatsApp Cloud API (Graph API) over reqwest: sending messages.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{AgentCopy, PhoneNumberId, ProviderFailure, WaId, Wamid};
use crate::ports::WhatsAppClient;

pub struct GraphClient {
    http: reqwest::Client,
    /// `{GRAPH_API_BASE}/{GRAPH_API_VERSION}`.
    versioned_base: String,
    access_token: SecretString,
}

impl GraphClient {
    pub fn new(http: reqwest::Client, base: &str, version: &str, access_token: SecretString) -> Self {
        Self {
            http,
            versioned_base: format!("{}/{}", base.trim_end_matches('/'), version),
            access_token,
        }
    }

    fn body(to: &WaId, message: &AgentCopy) -> serde_json::Value {
        match message {
            AgentCopy::Text { body } => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.as_str(),
                "type": "text",
                "text": { "preview_url": false, "body": body },
            }),
            AgentCopy::Template {
                name,
                language,
                parameters,
            } => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.as_str(),
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
        }
    }
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
struct GraphError {
    #[serde(default)]
    message: String,
    code: Option<i64>,
    #[serde(default)]
    error_data: Option<serde_json::Value>,
}

impl WhatsAppClient for GraphClient {
    async fn send(&self, from: &PhoneNumberId, to: &WaId, message: &AgentCopy) -> Result<Wamid, ProviderFailure> {
        let url = format!("{}/{}/messages", self.versioned_base, from.as_str());
        let response = self
            .http
            .post(url)
            .bearer_auth(self.access_token.expose_secret())
            .json(&Self::body(to, message))
            .send()
            .await
            .map_err(request_failure)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(request_failure)?;
        if status.is_success() {
            let sent: SendResponse = serde_json::from_slice(&bytes).map_err(|e| unexpected(status, e.to_string()))?;
            let id = sent
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| unexpected(status, "no message id".into()))?;
            return Wamid::parse(&id).map_err(|e| unexpected(status, e));
        }
        let (code, message) = match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(ErrorResponse { error }) => {
                let details = error
                    .error_data
                    .as_ref()
                    .and_then(|d| d.get("details"))
                    .and_then(|d| d.as_str())
                    .map(str::to_owned);
                (error.code, details.unwrap_or(error.message))
            }
            Err(_) => (None, String::from_utf8_lossy(&bytes).chars().take(200).collect()),
        };
        Err(ProviderFailure::Rejected {
            http_status: status.as_u16(),
            code,
            message,
            retry_after,
        })
    }
}

fn request_failure(e: reqwest::Error) -> ProviderFailure {
    if e.is_timeout() {
        ProviderFailure::Timeout
    } else {
        ProviderFailure::Connection(without_url(&e))
    }
}

/// reqwest errors print the URL; ours carry no secret, but keep logs short and uniform.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<graph>");
    }
    text
}

fn unexpected(status: StatusCode, reason: String) -> ProviderFailure {
    // A 2xx we can't read: the message may have gone out. Treat as retryable server
    // trouble; the leg's claim keeps the retry from racing a second worker.
    ProviderFailure::Rejected {
        http_status: status.as_u16().max(500),
        code: None,
        message: reason,
        retry_after: None,
    }
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(900)))
}
