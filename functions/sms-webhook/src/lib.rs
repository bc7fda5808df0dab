//! The SMS provider's webhooks (Twilio):
//!
//! - `POST /sms/inbound` (docs/using.md): a customer's text. Checks, in order: size (413),
//!   content type (415), form encoding (400), signature (403), account (403), required
//!   parameters (400), known line (404). Only then is anything written: the message, its
//!   conversation and its delivery jobs, atomically, then the jobs are enqueued. The answer
//!   is an empty TwiML `<Response/>`; WhatsApp is never called here.
//! - `POST /sms/status` (docs/using.md): a delivery report on an agent's reply, checked the same
//!   way; the status only moves forward and the agent's notices are enqueued.
//! - SNS notifications from AWS End User Messaging SMS (docs/aws-sms.md): its customers'
//!   texts and delivery events, handled by the same use cases (`sns`).
//! - `GET /media/{source}/{reference}` (docs/media.md): the bridge's signed, short-lived
//!   media links. Meta fetches a customer's MMS part through it, Twilio an agent's WhatsApp
//!   media; the handler checks the link's signature and expiry, then fetches the media from
//!   the provider that holds it, with that provider's credentials, from its hosts only.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::media::{GraphMediaAccess, MediaFetchError, MediaFetcher, TwilioMediaAccess};
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::{
    FormError, InboundParamError, SIGNATURE_SETTINGS_HEADER, TwilioSignatureError, TwilioSignatureVerifier,
    VerifiedTwilioRequest, inbound_sms, parse_form,
};
use shared::app::apply_sms_status::{SmsStatusReport, StatusError, StatusHandled, apply_sms_status};
use shared::app::copy_facts_cache::CopyFactsCache;
use shared::app::live_lines::LiveLines;
use shared::app::receive_sms::{ReceiveError, Received, receive_sms};
use shared::app::retry_budget::RetryBudget;
use shared::config::{SMS_STATUS_PATH, SmsWebhookConfig};
use shared::domain::media::{MEDIA_LINK_TTL, MEDIA_PATH_PREFIX, MediaUrlError, MediaUrlKey};
use shared::domain::{E164, JobId, ReportedStatus};
use shared::ports::{ConversationStore, DeliveryQueue};
use shared::telemetry;

pub mod sns;

pub use shared::adapters::aws_sms::events::{AwsSmsTopics, is_sns_event};
pub use sns::{SnsError, SnsHandled};

/// Twilio's inbound bodies are a few KiB; anything near this is not from Twilio.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The routes this function serves; `template.yaml` routes exactly these to it.
pub const ROUTES: &[(&str, &str)] =
    &[("POST", INBOUND_PATH), ("POST", STATUS_PATH), ("GET", "/media/{source}/{reference}")];
const INBOUND_PATH: &str = "/sms/inbound";
const STATUS_PATH: &str = SMS_STATUS_PATH;

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

pub struct SmsWebhook<S, Q> {
    /// Read per request: with the lines in SSM, a change is in force within the refresh.
    lines: LiveLines,
    /// None without a Twilio auth token (no line uses Twilio): every Twilio request is refused.
    verifier: Option<TwilioSignatureVerifier>,
    account_sid: Option<String>,
    media_key: MediaUrlKey,
    media: MediaFetcher,
    retry_budget: std::time::Duration,
    /// Who holds which conversation and who is away, as this instance last saw it.
    copy_facts: CopyFactsCache,
    /// Where AWS SMS lines' notifications may come from (none: every SNS event is refused).
    aws_sms_topics: Option<AwsSmsTopics>,
    store: S,
    queue: Q,
}

impl SmsWebhook<DynamoStore, SqsQueue> {
    /// The deployed wiring: DynamoDB and SQS clients from `sdk`.
    pub fn from_config(config: SmsWebhookConfig, sdk: &SdkConfig) -> Self {
        let (store, queue) =
            shared::aws::store_and_queue(sdk, &config.table_name, &config.delivery_queue_url, config.message_retention);
        let lines = shared::aws::live_lines(config.lines.clone(), config.lines_refresh.as_ref(), sdk);
        Self::new(config, store, queue).with_lines(lines)
    }

    /// Opens DynamoDB's and SQS's connections during the cold start.
    pub async fn warm_up(&self) {
        shared::aws::warm_up_store_and_queue(&self.store, &self.queue).await;
    }
}

impl<S: ConversationStore, Q: DeliveryQueue> SmsWebhook<S, Q> {
    /// The lines in force from `lines` rather than the config's, fixed ones.
    pub fn with_lines(mut self, lines: LiveLines) -> Self {
        self.lines = lines;
        self
    }

    pub fn new(config: SmsWebhookConfig, store: S, queue: Q) -> Self {
        let twilio =
            config.twilio_account_sid.clone().zip(config.twilio_auth_token.clone()).map(|(account_sid, auth_token)| {
                TwilioMediaAccess { account_sid, auth_token, api_base: config.twilio_api_base.clone() }
            });
        let graph = config.meta_access_token.map(|access_token| GraphMediaAccess {
            access_token,
            api_base: config.graph_api_base,
            api_version: config.graph_api_version,
        });
        // Inside the function's 10 s timeout (template.yaml), so a slow provider gets a 502
        // rather than the Lambda being killed mid-answer.
        let http = shared::aws::LazyHttpClient::new(std::time::Duration::from_secs(8));
        Self {
            media_key: config.media_url_key,
            media: MediaFetcher::new(http, twilio, graph),
            verifier: config.twilio_auth_token.map(|auth_token| {
                TwilioSignatureVerifier::new(auth_token, &config.public_base_url)
                    .with_shared_keys(config.twilio_webhook_shared_keys)
            }),
            lines: LiveLines::fixed(config.lines),
            account_sid: config.twilio_account_sid,
            retry_budget: config.retry_budget,
            copy_facts: CopyFactsCache::with_duty_fresh(config.duty_roster_fresh),
            aws_sms_topics: config.aws_sms_topics,
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
        .route(STATUS_PATH, post(status::<S, Q>))
        .route(&format!("{MEDIA_PATH_PREFIX}{{source}}/{{reference}}"), get(media::<S, Q>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(webhook)
}

/// Size, content type, form encoding, signature and account: what every Twilio request
/// passes before anything reads its parameters.
fn verified_form<S, Q>(
    webhook: &SmsWebhook<S, Q>,
    headers: &HeaderMap,
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<VerifiedTwilioRequest, InboundError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            InboundError::TooLarge
        } else {
            InboundError::UnreadableBody
        }
    })?;
    if !is_form(headers) {
        return Err(InboundError::UnsupportedContentType);
    }
    let params = parse_form(&body)?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verifier = webhook.verifier.as_ref().ok_or(InboundError::TwilioNotConfigured)?;
    let verified =
        verifier.verify(path_and_query, header("x-twilio-signature"), header(SIGNATURE_SETTINGS_HEADER), params)?;
    if let Some(expected) = &webhook.account_sid
        && verified.get("AccountSid") != Some(expected.as_str())
    {
        return Err(InboundError::WrongAccount);
    }
    Ok(verified)
}

async fn inbound<S: ConversationStore, Q: DeliveryQueue>(
    State(webhook): State<Arc<SmsWebhook<S, Q>>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, InboundError> {
    let verified = verified_form(&webhook, &headers, &uri, body)?;
    let sms = inbound_sms(&verified, Timestamp::now())?;
    let lines = webhook.lines.current().await;
    let line = lines.by_sms_number(&sms.to).ok_or(InboundError::UnknownLine)?;
    let (customer, message_sid) = (sms.from.masked(), sms.provider_message_id.as_str().to_owned());

    let mut rng = fastrand::Rng::new();
    let budget = RetryBudget::new(webhook.retry_budget);
    match receive_sms(&webhook.store, &webhook.queue, line, sms, &mut rng, &budget, &webhook.copy_facts).await? {
        Received::Accepted { message_id, new_conversation, jobs, enqueued } => tracing::info!(
            outcome = "accepted",
            line = %line.id,
            customer,
            message_sid,
            message_id = message_id.as_str(),
            new_conversation = new_conversation.is_some(),
            handle = new_conversation.as_ref().map(|h| h.as_str()),
            jobs,
            enqueued,
            "inbound sms recorded"
        ),
        Received::Duplicate { message_id, jobs, enqueued } => {
            tracing::info!(
                outcome = "duplicate",
                line = %line.id,
                customer,
                message_sid,
                message_id = message_id.as_ref().map(|m| m.as_str()),
                jobs,
                enqueued,
                "inbound sms replayed; jobs re-offered, nothing recorded"
            );
            telemetry::count("DuplicateWebhook", &[("source", "twilio")]);
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response())
}

async fn status<S: ConversationStore, Q: DeliveryQueue>(
    State(webhook): State<Arc<SmsWebhook<S, Q>>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, InboundError> {
    let verified = verified_form(&webhook, &headers, &uri, body)?;
    let report = status_report(&verified, uri.query())?;
    let budget = RetryBudget::new(webhook.retry_budget);
    let lines = webhook.lines.current().await;
    let handled = apply_sms_status(&webhook.store, &webhook.queue, &lines, &report, Timestamp::now(), &budget).await?;
    log_status_outcome(&handled, &report, StatusSource::Twilio);
    Ok(StatusCode::OK.into_response())
}

/// Where a delivery status came from: its log lines' `source` and its counters' dimension.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StatusSource {
    /// Twilio's status callback.
    Twilio,
    /// AWS End User Messaging SMS's delivery event, by SNS.
    AwsSms,
}

impl StatusSource {
    fn log_source(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::AwsSms => "aws_sms",
        }
    }

    fn metric_source(self) -> &'static str {
        match self {
            Self::Twilio => "twilio_status",
            Self::AwsSms => "aws_sms_status",
        }
    }
}

/// One log line (and counter) for what a delivery status changed, whichever provider sent it.
pub(crate) fn log_status_outcome(handled: &StatusHandled, report: &SmsStatusReport, from: StatusSource) {
    let (sid, source) = (report.sid.as_str(), from.log_source());
    match handled {
        StatusHandled::Advanced { status, notices } => tracing::info!(
            outcome = "advanced",
            source,
            sid,
            status = status.as_str(),
            error_code = report.error_code,
            notices,
            "sms status recorded"
        ),
        StatusHandled::Unchanged { current } => {
            tracing::info!(
                outcome = "unchanged",
                source,
                sid,
                reported = report.status.as_str(),
                current = current.map(|c| c.as_str()),
                "late, duplicate or backwards sms status: nothing changed"
            );
            if current.is_some() && *current == report.status.tracked() {
                telemetry::count("DuplicateWebhook", &[("source", from.metric_source())]);
            }
        }
        StatusHandled::Ignored => {
            // A status the bridge doesn't know (Twilio's `receiving`, one a provider adds, an
            // AWS event that isn't final): acknowledged.
            tracing::info!(
                outcome = "ignored",
                source,
                sid,
                reported = report.status.as_str(),
                "sms status says nothing final about delivery"
            );
            telemetry::count("WebhookItemSkipped", &[("source", from.metric_source())]);
        }
        StatusHandled::Unknown => tracing::warn!(
            outcome = "unknown_sid",
            source,
            sid,
            reported = report.status.as_str(),
            "status for an sms the bridge has no record of"
        ),
    }
}

#[derive(serde::Deserialize)]
struct MediaLinkQuery {
    #[serde(default)]
    exp: String,
    #[serde(default)]
    sig: String,
}

/// A provider fetching media through one of the bridge's links. Nothing is fetched for a
/// link the bridge didn't sign or that has expired.
async fn media<S: ConversationStore, Q: DeliveryQueue>(
    State(webhook): State<Arc<SmsWebhook<S, Q>>>,
    Path((source, reference)): Path<(String, String)>,
    Query(query): Query<MediaLinkQuery>,
) -> Response {
    let (source, reference) =
        match webhook.media_key.verify(&source, &reference, &query.exp, &query.sig, Timestamp::now()) {
            Ok(link) => link,
            Err(error) => {
                let status = match error {
                    MediaUrlError::Invalid => StatusCode::FORBIDDEN,
                    MediaUrlError::Expired => StatusCode::GONE,
                };
                tracing::warn!(outcome = "media_link_rejected", error = %error, "media link refused");
                return (status, error.to_string()).into_response();
            }
        };
    match webhook.media.fetch(source, &reference).await {
        Ok(fetched) => {
            tracing::info!(
                outcome = "media_relayed",
                source = source.as_str(),
                bytes = fetched.bytes.len(),
                "media relayed"
            );
            let max_age = format!("private, max-age={}", MEDIA_LINK_TTL.as_secs());
            ([(header::CONTENT_TYPE, fetched.content_type), (header::CACHE_CONTROL, max_age)], fetched.bytes)
                .into_response()
        }
        Err(error) => {
            let status = match &error {
                MediaFetchError::NotFound => StatusCode::NOT_FOUND,
                MediaFetchError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                MediaFetchError::ForeignHost => StatusCode::FORBIDDEN,
                MediaFetchError::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
                MediaFetchError::Upstream(_) => StatusCode::BAD_GATEWAY,
            };
            let level_error = matches!(error, MediaFetchError::ForeignHost | MediaFetchError::NotConfigured(_));
            if level_error {
                tracing::error!(outcome = "media_not_relayed", source = source.as_str(), error = %error, "media not relayed");
            } else {
                tracing::warn!(outcome = "media_not_relayed", source = source.as_str(), error = %error, "media not relayed");
            }
            (status, error.to_string()).into_response()
        }
    }
}

fn status_report(verified: &VerifiedTwilioRequest, query: Option<&str>) -> Result<SmsStatusReport, InboundError> {
    let required = |name: &'static str| {
        verified
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or(InboundError::Params(InboundParamError::Missing(name)))
    };
    // A code the bridge can't read doesn't make the report unreadable: the status is kept.
    let error_code = match verified.get("ErrorCode").filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => code.parse().ok().or_else(|| {
            tracing::warn!(outcome = "field_ignored", field = "ErrorCode", "sms status with an unreadable ErrorCode");
            None
        }),
    };
    // `?job=` is the bridge's own: it names the leg the SMS was sent for.
    let job = query
        .and_then(|q| parse_form(q.as_bytes()).ok())
        .and_then(|params| params.into_iter().find(|(k, _)| k == "job").map(|(_, v)| v))
        .and_then(|job| JobId::parse(&job).ok());
    Ok(SmsStatusReport {
        sid: required("MessageSid")?,
        status: ReportedStatus::parse(&required("MessageStatus")?),
        error_code,
        job,
        from: verified.get("From").and_then(|f| E164::parse(f).ok()),
        to: verified.get("To").and_then(|t| E164::parse(t).ok()),
    })
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
    #[error("this deployment has no Twilio auth token (no line uses Twilio), so no Twilio request can be verified")]
    TwilioNotConfigured,
    #[error("{0}")]
    Params(#[from] InboundParamError),
    #[error("no line is configured for the number in To")]
    UnknownLine,
    #[error("could not accept the message right now")]
    Receive(#[from] ReceiveError),
    #[error("could not record the status right now")]
    Status(#[from] StatusError),
}

impl IntoResponse for InboundError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnreadableBody | Self::Form(_) | Self::Params(_) => StatusCode::BAD_REQUEST,
            Self::Signature(_) | Self::WrongAccount | Self::TwilioNotConfigured => StatusCode::FORBIDDEN,
            Self::UnknownLine => StatusCode::NOT_FOUND,
            Self::Receive(_) | Self::Status(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &self {
            Self::Receive(e) => tracing::error!(outcome = "error", error = %e, "inbound sms not accepted"),
            Self::Status(e) => tracing::error!(outcome = "error", error = %e, "sms status not recorded"),
            Self::Signature(e) => {
                tracing::warn!(outcome = "signature_rejected", error = %e, "sms webhook refused");
                telemetry::count("SignatureRejected", &[("source", "twilio")]);
            }
            other => {
                tracing::warn!(outcome = "rejected", status = status.as_u16(), error = %other, "sms webhook refused")
            }
        }
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.to_string()).into_response()
    }
}
