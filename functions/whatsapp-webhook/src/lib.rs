//! `GET|POST /whatsapp` (SPEC §5.1): the WhatsApp Cloud API webhook.
//!
//! `GET` answers Meta's subscription check. `POST` verifies `X-Hub-Signature-256` over the
//! raw body before anything reads it, then acknowledges. Routing agents' messages to
//! customers builds on the verified payload (SPEC §5.2–§5.7).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Deserialize;
use shared::adapters::whatsapp::{MetaSignatureError, MetaSignatureVerifier, VerifiedMetaPayload};
use shared::config::WhatsAppWebhookConfig;

/// Meta batches up to a thousand updates per request; 1 MiB holds that with room to spare.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The routes this function serves; `template.yaml` routes exactly these to it.
pub const ROUTES: &[(&str, &str)] = &[("GET", WEBHOOK_PATH), ("POST", WEBHOOK_PATH)];
const WEBHOOK_PATH: &str = "/whatsapp";

pub struct WhatsAppWebhook {
    verifier: MetaSignatureVerifier,
    verify_token: secrecy::SecretString,
}

impl WhatsAppWebhook {
    pub fn new(config: WhatsAppWebhookConfig) -> Self {
        Self {
            verifier: MetaSignatureVerifier::new(config.meta_app_secret),
            verify_token: config.meta_verify_token,
        }
    }
}

/// The function's routes; the Lambda runtime and the local stack both serve this router.
pub fn router(webhook: Arc<WhatsAppWebhook>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, get(verify_subscription).post(notification))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(webhook)
}

/// Meta's `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` check.
async fn verify_subscription(
    State(webhook): State<Arc<WhatsAppWebhook>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_bytes).unwrap_or_default();
    let expected = webhook.verify_token.expose_secret().as_bytes();
    let token_ok = token.len() == expected.len() && bool::from(subtle::ConstantTimeEq::ct_eq(token, expected));
    match (mode, token_ok, query.get("hub.challenge")) {
        (Some("subscribe"), true, Some(challenge)) => {
            tracing::info!(outcome = "subscribed", "webhook verification answered");
            ([(header::CONTENT_TYPE, "text/plain")], challenge.clone()).into_response()
        }
        _ => {
            tracing::warn!(outcome = "verification_rejected", "webhook verification refused");
            (StatusCode::FORBIDDEN, "verification failed").into_response()
        }
    }
}

async fn notification(
    State(webhook): State<Arc<WhatsAppWebhook>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, NotificationError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            NotificationError::TooLarge
        } else {
            NotificationError::UnreadableBody
        }
    })?;
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    let payload = webhook.verifier.verify(signature, &body)?;
    let summary = summarize(&payload)?;
    tracing::info!(
        outcome = "acknowledged",
        messages = summary.messages,
        statuses = summary.statuses,
        errors = summary.errors,
        "whatsapp notification received"
    );
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct NotificationSummary {
    pub messages: usize,
    pub statuses: usize,
    pub errors: usize,
}

#[derive(Deserialize)]
struct Notification {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    value: ChangeValue,
}

#[derive(Deserialize, Default)]
struct ChangeValue {
    #[serde(default)]
    messages: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    statuses: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    errors: Vec<serde::de::IgnoredAny>,
}

/// Counts what a verified notification carries, over every `entry[].changes[].value`.
fn summarize(payload: &VerifiedMetaPayload) -> Result<NotificationSummary, NotificationError> {
    // serde_json skips ignored strings without checking their UTF-8: check the whole body.
    let text =
        std::str::from_utf8(payload.body()).map_err(|_| NotificationError::Malformed("body is not UTF-8".into()))?;
    let notification: Notification =
        serde_json::from_str(text).map_err(|e| NotificationError::Malformed(e.to_string()))?;
    if notification.object != "whatsapp_business_account" {
        return Err(NotificationError::Malformed(format!(
            "unexpected object `{}`",
            notification.object
        )));
    }
    let mut summary = NotificationSummary::default();
    for change in notification.entry.iter().flat_map(|e| &e.changes) {
        summary.messages += change.value.messages.len();
        summary.statuses += change.value.statuses.len();
        summary.errors += change.value.errors.len();
    }
    Ok(summary)
}

#[derive(Debug, thiserror::Error)]
enum NotificationError {
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("could not read the request body")]
    UnreadableBody,
    #[error("{0}")]
    Signature(#[from] MetaSignatureError),
    #[error("not a WhatsApp Business notification: {0}")]
    Malformed(String),
}

impl IntoResponse for NotificationError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnreadableBody | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Signature(_) => StatusCode::FORBIDDEN,
        };
        match &self {
            Self::Signature(e) => {
                tracing::warn!(outcome = "signature_rejected", error = %e, "whatsapp notification refused")
            }
            other => {
                tracing::warn!(outcome = "rejected", status = status.as_u16(), error = %other, "whatsapp notification refused")
            }
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}
