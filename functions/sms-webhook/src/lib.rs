//! `POST /sms/inbound` (SPEC §4.1–§4.3): Twilio's incoming-message webhook.
//!
//! Checks, in order: size (413), content type (415), form encoding (400), signature (403),
//! account (403), required parameters (400), known line (404). Only then is anything
//! written: the message, its conversation and its delivery jobs, atomically, then the jobs
//! are enqueued. The answer is an empty TwiML `<Response/>`; WhatsApp is never called here.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jiff::Timestamp;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::{
    FormError, InboundParamError, TwilioSignatureError, TwilioSignatureVerifier, inbound_sms, parse_form,
};
use shared::app::receive_sms::{ReceiveError, Received, receive_sms};
use shared::config::SmsWebhookConfig;
use shared::domain::Lines;
use shared::ports::{ConversationStore, DeliveryQueue};

/// Twilio's inbound bodies are a few KiB; anything near this is not from Twilio.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The routes this function serves; `template.yaml` routes exactly these to it.
pub const ROUTES: &[(&str, &str)] = &[("POST", INBOUND_PATH)];
const INBOUND_PATH: &str = "/sms/inbound";

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

pub struct SmsWebhook<S, Q> {
    lines: Lines,
    verifier: TwilioSignatureVerifier,
    account_sid: Option<String>,
    store: S,
    queue: Q,
}

impl SmsWebhook<DynamoStore, SqsQueue> {
    /// The deployed wiring: DynamoDB and SQS clients from `sdk`.
    pub fn from_config(config: SmsWebhookConfig, sdk: &SdkConfig) -> Self {
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table_name,
            config.message_retention,
        );
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.delivery_queue_url);
        Self::new(config, store, queue)
    }
}

impl<S: ConversationStore, Q: DeliveryQueue> SmsWebhook<S, Q> {
    pub fn new(config: SmsWebhookConfig, store: S, queue: Q) -> Self {
        Self {
            verifier: TwilioSignatureVerifier::new(config.twilio_auth_token, &config.public_base_url),
            lines: config.lines,
            account_sid: config.twilio_account_sid,
            store,
            queue,
        }
    }
}

/// The function's routes; the Lambda runtime and the local stack both serve this router.
pub fn router<S, Q>(webhook: Arc<SmsWebhook<S, Q>>) -> Router
where
    S: ConversationStore + 'static,
    Q: DeliveryQueue + 'static,
{
    Router::new()
        .route(INBOUND_PATH, post(inbound::<S, Q>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(webhook)
}

async fn inbound<S: ConversationStore, Q: DeliveryQueue>(
    State(webhook): State<Arc<SmsWebhook<S, Q>>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, InboundError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            InboundError::TooLarge
        } else {
            InboundError::UnreadableBody
        }
    })?;
    if !is_form(&headers) {
        return Err(InboundError::UnsupportedContentType);
    }
    let params = parse_form(&body)?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    let verified = webhook.verifier.verify(path_and_query, signature, params)?;
    if let Some(expected) = &webhook.account_sid
        && verified.get("AccountSid") != Some(expected.as_str())
    {
        return Err(InboundError::WrongAccount);
    }
    let sms = inbound_sms(&verified, Timestamp::now())?;
    let line = webhook.lines.by_sms_number(&sms.to).ok_or(InboundError::UnknownLine)?;
    let (customer, message_sid) = (sms.from.masked(), sms.provider_message_id.as_str().to_owned());

    let mut rng = fastrand::Rng::new();
    match receive_sms(&webhook.store, &webhook.queue, line, sms, &mut rng).await? {
        Received::Accepted {
            message_id,
            new_conversation,
            jobs,
        } => tracing::info!(
            outcome = "accepted",
            line = %line.id,
            customer,
            message_sid,
            message_id = message_id.as_str(),
            new_conversation,
            jobs,
            "inbound sms recorded"
        ),
        Received::Duplicate { message_id, jobs } => tracing::info!(
            outcome = "duplicate",
            line = %line.id,
            customer,
            message_sid,
            message_id = message_id.as_str(),
            jobs,
            "inbound sms replayed; jobs re-offered, nothing recorded"
        ),
    }
    Ok(([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Every way the webhook refuses a request, mapped to its status in one place.
#[derive(Debug, thiserror::Error)]
enum InboundError {
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("could not read the request body")]
    UnreadableBody,
    #[error("Content-Type must be application/x-www-form-urlencoded")]
    UnsupportedContentType,
    #[error("malformed form body: {0}")]
    Form(#[from] FormError),
    #[error("{0}")]
    Signature(#[from] TwilioSignatureError),
    #[error("AccountSid is not this deployment's Twilio account")]
    WrongAccount,
    #[error("{0}")]
    Params(#[from] InboundParamError),
    #[error("no line is configured for the number in To")]
    UnknownLine,
    #[error("could not accept the message right now")]
    Receive(#[from] ReceiveError),
}

impl IntoResponse for InboundError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnreadableBody | Self::Form(_) | Self::Params(_) => StatusCode::BAD_REQUEST,
            Self::Signature(_) | Self::WrongAccount => StatusCode::FORBIDDEN,
            Self::UnknownLine => StatusCode::NOT_FOUND,
            Self::Receive(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &self {
            Self::Receive(e) => tracing::error!(outcome = "error", error = %e, "inbound sms not accepted"),
            Self::Signature(e) => tracing::warn!(outcome = "signature_rejected", error = %e, "inbound sms refused"),
            other => {
                tracing::warn!(outcome = "rejected", status = status.as_u16(), error = %other, "inbound sms refused")
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
