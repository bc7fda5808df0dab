//! `GET|POST /whatsapp` (docs/using.md): the WhatsApp Cloud API webhook.
//!
//! `GET` answers Meta's subscription check. `POST` verifies `X-Hub-Signature-256` over the
//! raw body before anything reads it, then, for every `entry[].changes[].value`, records and
//! routes each message (`app::receive_whatsapp`) and applies each status. It only stores and
//! enqueues: every reply, SMS or notice is sent by the worker.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use secrecy::ExposeSecret;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::whatsapp::{
    MalformedNotification, MetaSignatureError, MetaSignatureVerifier, parse_notification,
};
use shared::app::agent_identity::{LearntUserIds, learn_from_status};
use shared::app::apply_whatsapp_status::apply_whatsapp_status;
use shared::app::live_lines::LiveLines;
use shared::app::receive_whatsapp::{HandleError, MessageHandled, receive_whatsapp_message};
use shared::app::retry_budget::RetryBudget;
use shared::config::WhatsAppWebhookConfig;
use shared::domain::template_event::{TemplateChange, TemplateConcern, TemplateEvent};
use shared::domain::{Lines, LogId};
use shared::ports::{ConversationStore, DeliveryQueue, StoreError};
use shared::telemetry;

/// Meta batches up to a thousand updates per request; 1 MiB holds that with room to spare.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The routes this function serves; `template.yaml` routes exactly these to it.
pub const ROUTES: &[(&str, &str)] = &[("GET", WEBHOOK_PATH), ("POST", WEBHOOK_PATH)];
const WEBHOOK_PATH: &str = "/whatsapp";

pub struct WhatsAppWebhook<S, Q> {
    /// Read per notification: with the lines in SSM, an agent added or removed counts as
    /// one (or not) within the refresh.
    lines: LiveLines,
    verifier: MetaSignatureVerifier,
    verify_token: secrecy::SecretString,
    retry_budget: std::time::Duration,
    /// Agents' user ids this instance already stored (`agent_identity`).
    learnt: LearntUserIds,
    store: S,
    queue: Q,
}

impl WhatsAppWebhook<DynamoStore, SqsQueue> {
    /// The deployed wiring: DynamoDB and SQS clients from `sdk`.
    pub fn from_config(config: WhatsAppWebhookConfig, sdk: &SdkConfig) -> Self {
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

impl<S: ConversationStore, Q: DeliveryQueue> WhatsAppWebhook<S, Q> {
    /// The lines in force from `lines` rather than the config's, fixed ones.
    pub fn with_lines(mut self, lines: LiveLines) -> Self {
        self.lines = lines;
        self
    }

    pub fn new(config: WhatsAppWebhookConfig, store: S, queue: Q) -> Self {
        Self {
            lines: LiveLines::fixed(config.lines),
            verifier: MetaSignatureVerifier::new(config.meta_app_secret),
            verify_token: config.meta_verify_token,
            retry_budget: config.retry_budget,
            learnt: LearntUserIds::new(),
            store,
            queue,
        }
    }
}

/// The function's routes; the Lambda runtime and the local stack both serve this router.
pub fn router<S, Q>(webhook: Arc<WhatsAppWebhook<S, Q>>) -> Router
where
    S: ConversationStore + 'static,
    Q: DeliveryQueue + 'static,
{
    Router::new()
        .route(WEBHOOK_PATH, get(verify_subscription::<S, Q>).post(notification::<S, Q>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(webhook)
}

/// Meta's `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` check.
async fn verify_subscription<S, Q>(
    State(webhook): State<Arc<WhatsAppWebhook<S, Q>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    let token_ok =
        shared::adapters::whatsapp::signature::verify_token_matches(token, webhook.verify_token.expose_secret());
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

async fn notification<S: ConversationStore, Q: DeliveryQueue>(
    State(webhook): State<Arc<WhatsAppWebhook<S, Q>>>,
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
    let batches = parse_notification(&payload)?;
    let now = Timestamp::now();
    let budget = RetryBudget::new(webhook.retry_budget);
    let lines = webhook.lines.current().await;
    // Every item on its own: one that fails doesn't stop the others. A store or queue error
    // on any of them answers 500 at the end, and Meta delivers the notification again;
    // what was handled is deduplicated by wamid (messages) or changes nothing (statuses).
    let mut failed = None;
    for batch in batches {
        for why in &batch.skipped {
            tracing::warn!(outcome = "item_skipped", why, "an item of a notification couldn't be read; skipped");
            telemetry::count("WebhookItemSkipped", &[("source", "meta")]);
        }
        for event in &batch.template_events {
            note_template_event(&lines, event);
        }
        if !batch.template_events.is_empty() {
            continue;
        }
        let Some(line) = batch.phone_number_id.as_deref().and_then(|id| lines.by_phone_number_id(id)) else {
            tracing::warn!(
                outcome = "unknown_number",
                phone_number_id = batch.phone_number_id,
                messages = batch.messages.len(),
                statuses = batch.statuses.len(),
                "notification for a number no line has; acknowledged"
            );
            continue;
        };
        for error in &batch.errors {
            tracing::warn!(outcome = "meta_error", line = %line.id, error, "Meta reported an error for the number");
        }
        for message in batch.messages {
            let (wamid, from, kind) =
                (LogId(message.wamid.as_str()).to_string(), message.sender.masked(), message.content.kind().to_owned());
            let sender = &message.sender;
            let profile_name = [sender.phone().map(|p| p.as_str()), sender.user_id().map(|id| id.as_str())]
                .into_iter()
                .flatten()
                .find_map(|id| batch.profile_names.get(id).cloned());
            let handled = receive_whatsapp_message(
                &webhook.store,
                &webhook.queue,
                line,
                profile_name,
                message,
                now,
                &budget,
                &webhook.learnt,
            );
            match handled.await {
                Ok(handled) => log_message(&line.id, &wamid, &from, &kind, &handled),
                Err(e) => {
                    tracing::error!(outcome = "error", line = %line.id, wamid, error = %e, "agent message not recorded; Meta will deliver it again");
                    failed = Some(e);
                }
            }
        }
        for status in &batch.statuses {
            let wamid = LogId(status.wamid.as_str()).to_string();
            // Every message the line sends may be billed, tracked or not (notices, reactions).
            // A notification Meta delivers again counts again: this is a cost gauge, not a bill.
            if let Some(category) = status.billed_category() {
                telemetry::count("WhatsAppMessagesBilled", &[("category", category.as_str())]);
            }
            // A send to an agent's number tells their user id (`agent_identity`); learning it
            // is worth a retry of the notification, as the status itself is.
            let learn = || learn_from_status(&webhook.store, line, status, now, &webhook.learnt);
            if let Err(e) = budget.retry(learn, StoreError::is_transient).await {
                tracing::error!(outcome = "error", line = %line.id, wamid, error = %e, "agent's user id not stored; Meta will deliver the status again");
                failed = Some(HandleError::Store(e));
            }
            match apply_whatsapp_status(&webhook.store, &webhook.queue, line, status, now, &budget).await {
                Ok(handled) => tracing::info!(
                    outcome = if handled.is_some() { "status_recorded" } else { "status_untracked" },
                    line = %line.id,
                    wamid,
                    status = status.status.as_str(),
                    error_code = status.error_code,
                    change = handled.as_ref().map(|h| format!("{:?}", h.change)),
                    resent_as_template = handled.as_ref().map_or(0, |h| h.resent_as_template),
                    noted_sent = handled.as_ref().map_or(0, |h| h.noted),
                    "whatsapp status"
                ),
                Err(e) => {
                    tracing::error!(outcome = "error", line = %line.id, wamid, error = %e, "status not recorded; Meta will deliver it again");
                    failed = Some(e);
                }
            }
        }
    }
    match failed {
        Some(e) => Err(NotificationError::Handle(e)),
        None => Ok(StatusCode::OK.into_response()),
    }
}

/// A template's news (docs/operating.md): counted and logged when a line uses that template,
/// because its copies outside an agent's window then fail or cost more. Nothing is stored.
fn note_template_event(lines: &Lines, event: &TemplateEvent) {
    let users: Vec<String> =
        lines.iter().filter(|line| event.is_about(&line.template)).map(|l| l.id.to_string()).collect();
    let (change, category) = match &event.change {
        TemplateChange::Status { event } => (event.as_str(), None),
        TemplateChange::Category { new, impending } => {
            (if *impending { "category_change_impending" } else { "category_changed" }, Some(new.as_str()))
        }
    };
    if users.is_empty() {
        tracing::info!(outcome = "template_event", template = event.name, change, "about a template no line uses");
        return;
    }
    let concern = event.concern();
    telemetry::count("LineTemplateChanged", &[("concern", concern.as_str())]);
    // Rare, and each one matters to the copies outside agents' windows: a warning whatever
    // the concern (`stopped` and `recategorized` also raise their alarms).
    tracing::warn!(
        outcome = "template_event",
        template = event.name,
        language = event.language,
        change,
        category,
        lines = users.join(","),
        concern = concern.as_str(),
        copies_at_risk = matches!(concern, TemplateConcern::Stopped | TemplateConcern::Recategorized),
        "a line's template changed"
    );
}

fn log_message(line: &shared::domain::LineId, wamid: &str, from: &str, kind: &str, handled: &MessageHandled) {
    match handled {
        MessageHandled::Relayed { conversation, handle, rule } => tracing::info!(
            outcome = "relayed",
            line = %line,
            wamid,
            agent = from,
            customer = conversation.customer.masked(),
            handle = handle.as_str(),
            rule = rule.as_str(),
            "agent reply queued as sms"
        ),
        MessageHandled::Duplicate => {
            tracing::info!(outcome = "duplicate", line = %line, wamid, agent = from, kind, "agent message seen before; nothing done");
            telemetry::count("DuplicateWebhook", &[("source", "whatsapp")]);
        }
        MessageHandled::NonAgent { replied } => {
            tracing::warn!(outcome = "non_agent", line = %line, wamid, from, replied, "message from someone who is not an agent; nothing relayed")
        }
        MessageHandled::NotRelayed { why } => {
            tracing::info!(outcome = "not_relayed", why = why.as_str(), line = %line, wamid, agent = from, kind, "agent message recorded, not relayed")
        }
        MessageHandled::Acted { action } => {
            tracing::info!(outcome = "acted", action = action.as_str(), line = %line, wamid, agent = from, kind, "agent acted on a conversation")
        }
        MessageHandled::AskedWhich => {
            tracing::info!(outcome = "asked_which", line = %line, wamid, agent = from, kind, "agent asked which conversation")
        }
        MessageHandled::Focused => {
            tracing::info!(outcome = "focused", line = %line, wamid, agent = from, kind, "agent's focus moved")
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum NotificationError {
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("could not read the request body")]
    UnreadableBody,
    #[error("{0}")]
    Signature(#[from] MetaSignatureError),
    #[error("{0}")]
    Malformed(#[from] MalformedNotification),
    #[error("could not record the notification right now")]
    Handle(#[from] HandleError),
}

impl From<StoreError> for NotificationError {
    fn from(e: StoreError) -> Self {
        Self::Handle(HandleError::Store(e))
    }
}

impl IntoResponse for NotificationError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnreadableBody | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Signature(_) => StatusCode::FORBIDDEN,
            // Meta retries; every write is deduplicated by wamid, so a retry is safe.
            Self::Handle(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &self {
            Self::Signature(e) => {
                tracing::warn!(outcome = "signature_rejected", error = %e, "whatsapp notification refused");
                telemetry::count("SignatureRejected", &[("source", "meta")]);
            }
            Self::Handle(e) => tracing::error!(outcome = "error", error = %e, "whatsapp notification not recorded"),
            other => {
                tracing::warn!(outcome = "rejected", status = status.as_u16(), error = %other, "whatsapp notification refused")
            }
        }
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.to_string()).into_response()
    }
}
