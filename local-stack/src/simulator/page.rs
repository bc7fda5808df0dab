//! The two-phone page: plain HTML, JS and CSS built into the binary (no build step), and the
//! JSON API it drives the simulated phones with. Every action goes through the providers'
//! side of the simulator, so what the page shows is what reached the bridge and came back.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::domain::{ConversationKey, E164, SmsProviderKind};
use shared::ports::{Conversations, Direction};

use super::twilio::{MAX_INBOUND_MEDIA_BYTES, UploadedMedia};
use super::user_id::{business_scoped_user_id, username};
use super::world::{Blob, MediaRef, WaRecord};
use super::{Simulator, aws_sms, graph, twilio};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// Base64 of the largest upload (16 MB of media) and the JSON around it.
const UPLOAD_LIMIT: usize = 24 * 1024 * 1024;
/// What one SMS may hold: ten segments' worth, as Twilio accepts.
const MAX_SMS_CHARS: usize = 1600;
/// What one WhatsApp text may hold.
const MAX_WHATSAPP_CHARS: usize = 4096;
/// WhatsApp's upload limits: images 5 MB, other media 16 MB.
const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
const MAX_OTHER_MEDIA_BYTES: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/_sim/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/_sim/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/_sim/state", get(state))
        .route("/_sim/events", get(events))
        .route("/_sim/thread", get(thread))
        .route("/_sim/media/{id}", get(media))
        .route("/_sim/customer/send", post(customer_send))
        .route("/_sim/agent/send", post(agent_send))
        .route("/_sim/agent/media", post(agent_media))
        .route("/_sim/agent/button", post(agent_button))
        .route("/_sim/agent/list", post(agent_list))
        .route("/_sim/agent/react", post(agent_react))
        .route("/_sim/agent/read", post(agent_read))
        .route("/_sim/agent/username", post(agent_username))
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// An action the page asked for that can't be done: 400 and a sentence it shows.
struct Refused(String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "error": self.0 }))).into_response()
    }
}

impl From<JsonRejection> for Refused {
    fn from(rejection: JsonRejection) -> Self {
        Refused(rejection.body_text())
    }
}

type Action = Result<Json<Value>, Refused>;

/// Everything the phones show, the line and the failure settings.
async fn state(State(sim): State<Simulator>) -> Json<Value> {
    let lines: Vec<Value> = sim
        .lines()
        .map(|line| {
            let agents: Vec<Value> = line
                .agents
                .iter()
                .map(|a| {
                    let name = sim.agent_name(a.as_str());
                    json!({
                        "wa_id": a.as_str(), "name": name,
                        "user_id": business_scoped_user_id(a.as_str()), "username": username(&name),
                        "number_hidden": sim.world().number_hidden(a.as_str()),
                    })
                })
                .collect();
            let opted_out = sim.world().opted_out_customers(&sim.opt_out_list(line));
            json!({
                "id": line.id.as_str(), "sms_number": line.sms_number.as_str(),
                "sms_provider": line.sms_provider.as_str(),
                "aws_origination_identity": line.aws_origination_identity.as_ref().map(|i| i.as_str()),
                "whatsapp_phone_number_id": line.whatsapp_phone_number_id.as_str(), "agents": agents,
                "opted_out": opted_out,
            })
        })
        .collect();
    let first_list = sim.first_line().map(|l| sim.opt_out_list(l)).unwrap_or_default();
    let version = *sim.0.version.borrow();
    let world = sim.world();
    Json(json!({
        "version": version,
        "lines": lines,
        "customers": world.customers,
        "sms": world.sms,
        "whatsapp": world.whatsapp,
        "settings": sim.0.config.failures,
        "aws_sms": aws_sms::account_summary(&sim.0.config.aws_sms),
        "failures_injected": world.failures_injected,
        // The first line's, as before lines had their own.
        "opted_out": world.opted_out_customers(&first_list),
    }))
}

/// `data: {"version": N}` whenever something changed; the page then reloads the state.
async fn events(State(sim): State<Simulator>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let changes = sim.0.version.subscribe();
    let stopping = sim.0.stopping.subscribe();
    let stream = futures_util::stream::unfold((changes, stopping), |(mut changes, mut stopping)| async move {
        tokio::select! {
            changed = changes.changed() => changed.ok()?,
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
        let version = *changes.borrow_and_update();
        let event = Event::default().data(json!({ "version": version }).to_string());
        Some((Ok(event), (changes, stopping)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct ThreadQuery {
    customer: String,
    /// The line's id (default: the first line).
    #[serde(default)]
    line: Option<String>,
}

/// The conversation as the bridge stored it, read from its table.
async fn thread(State(sim): State<Simulator>, Query(query): Query<ThreadQuery>) -> Response {
    let customer = match E164::parse(&query.customer) {
        Ok(customer) => customer,
        Err(e) => return Refused(format!("customer: {e}")).into_response(),
    };
    let line = match &query.line {
        Some(id) => sim.line_by_id(id),
        None => sim.first_line(),
    };
    let Some(line) = line else { return Refused("no such line".into()).into_response() };
    let key = ConversationKey { line: line.id.clone(), customer };
    let store = &sim.0.store;
    let (summary, messages) = match tokio::try_join!(store.conversation(&key), store.thread(&key)) {
        Ok(found) => found,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ok": false, "error": e.to_string() })))
                .into_response();
        }
    };
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let legs: Vec<Value> = m
                .legs
                .iter()
                .map(|leg| {
                    json!({
                        "job_id": leg.job_id.as_str(), "kind": leg.kind.as_str(), "to": leg.to, "state": leg.state.as_str(),
                        "status": leg.status.map(|s| s.as_str()), "provider_id": leg.provider_id,
                        "error": leg.error.as_ref().map(|e| json!({ "class": e.class.as_str(), "code": e.code, "reason": e.reason })),
                    })
                })
                .collect();
            json!({
                "message_id": m.message_id.as_str(),
                "direction": match m.direction { Direction::Inbound => "inbound", Direction::Outbound => "outbound" },
                "agent": m.agent.as_ref().map(|a| a.as_str()),
                "body": m.body,
                "attachments": m.attachments.iter().map(|a| json!({ "content_type": a.content_type })).collect::<Vec<_>>(),
                "at": m.at.to_string(),
                "legs": legs,
            })
        })
        .collect();
    Json(json!({
        "handle": summary.as_ref().map(|s| s.handle.as_str().to_owned()),
        "open": summary.as_ref().is_some_and(|s| s.open),
        "opted_out": summary.as_ref().is_some_and(|s| s.opted_out),
        "claimed_by": summary.as_ref().and_then(|s| s.claimed_by.clone()),
        "messages": messages,
    }))
    .into_response()
}

/// A file as the page shows it (the simulator's copy: no credentials needed).
async fn media(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    match sim.world().blob(&id) {
        Some(blob) => (
            [(header::CONTENT_TYPE, blob.content_type.clone()), (header::CACHE_CONTROL, "max-age=3600".to_owned())],
            blob.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

#[derive(Deserialize)]
struct Upload {
    content_type: String,
    #[serde(default)]
    name: Option<String>,
    data_base64: String,
}

impl Upload {
    fn decode(self, limit: usize) -> Result<Blob, Refused> {
        let content_type = self.content_type.trim().to_ascii_lowercase();
        let looks_like_type = content_type.split_once('/').is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
        if !looks_like_type {
            return Err(Refused(format!("`{content_type}` is not a media type")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.data_base64.trim())
            .map_err(|_| Refused("the file is not valid base64".into()))?;
        if bytes.is_empty() {
            return Err(Refused("the file is empty".into()));
        }
        if bytes.len() > limit {
            return Err(Refused(format!("the file is {} bytes; the limit is {limit}", bytes.len())));
        }
        Ok(Blob { content_type, name: self.name.filter(|n| !n.is_empty()), bytes })
    }
}

#[derive(Deserialize)]
struct CustomerSend {
    from: String,
    /// The business number (default: `line`'s, else the first line's).
    #[serde(default)]
    to: Option<String>,
    /// The line's id, instead of its number.
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    media: Vec<Upload>,
}

/// The customer's phone sends an SMS or MMS to the business.
async fn customer_send(State(sim): State<Simulator>, request: Result<Json<CustomerSend>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let from = E164::parse(request.from.trim()).map_err(|e| Refused(format!("from: {e}")))?;
    let line = match (&request.to, &request.line) {
        (Some(to), _) => sim.line_by_sms_number(to).ok_or_else(|| Refused(format!("{to} is not a line's number")))?,
        (None, Some(id)) => sim.line_by_id(id).ok_or_else(|| Refused(format!("no line has the id `{id}`")))?,
        (None, None) => sim.first_line().ok_or_else(|| Refused("no line is configured".into()))?,
    }
    .clone();
    let to = line.sms_number.as_str().to_owned();
    if request.text.trim().is_empty() && request.media.is_empty() {
        return Err(Refused("an SMS needs text or a picture".into()));
    }
    if request.text.chars().count() > MAX_SMS_CHARS {
        return Err(Refused(format!("an SMS holds at most {MAX_SMS_CHARS} characters")));
    }
    if line.sms_provider == SmsProviderKind::AwsEndUserMessaging {
        if !request.media.is_empty() {
            return Err(Refused(format!(
                "{to} is an AWS End User Messaging SMS number: two-way SMS takes text only (no MMS), \
                 so a picture would never reach the bridge"
            )));
        }
        if request.text.trim().is_empty() {
            return Err(Refused("an SMS needs text".into()));
        }
        let text = aws_sms::customer_texts(&sim, from.as_str(), &line, &request.text).await;
        return Ok(Json(match text.answer {
            Some(answer) => {
                json!({ "ok": true, "sid": text.id, "webhook_status": answer.as_status(), "sns": answer.to_string() })
            }
            None => json!({ "ok": true, "sid": text.id, "webhook_status": null, "answered_by": "aws" }),
        }));
    }
    if request.media.len() > 10 {
        return Err(Refused("an MMS holds at most 10 files".into()));
    }
    let mut uploads = Vec::new();
    let mut total = 0;
    for upload in request.media {
        let blob = upload.decode(MAX_INBOUND_MEDIA_BYTES)?;
        total += blob.bytes.len();
        uploads.push(UploadedMedia { content_type: blob.content_type, name: blob.name, bytes: blob.bytes });
    }
    if total > MAX_INBOUND_MEDIA_BYTES {
        return Err(Refused(format!("an MMS holds at most {MAX_INBOUND_MEDIA_BYTES} bytes in all")));
    }
    let (sid, webhook_status) =
        twilio::customer_texts(&sim, from.as_str(), &to, &request.text, uploads).await.map_err(Refused)?;
    Ok(Json(json!({ "ok": true, "sid": sid, "webhook_status": webhook_status })))
}

fn checked_agent(sim: &Simulator, from: &str) -> Result<String, Refused> {
    let from = from.trim();
    let known = sim.lines().any(|l| l.agents.iter().any(|a| a.as_str() == from));
    let digits = (5..=15).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_digit());
    if known || digits { Ok(from.to_owned()) } else { Err(Refused(format!("`{from}` is not a WhatsApp id"))) }
}

fn sent(outcome: Result<(String, u16), String>) -> Action {
    let (wamid, webhook_status) = outcome.map_err(Refused)?;
    Ok(Json(json!({ "ok": true, "wamid": wamid, "webhook_status": webhook_status })))
}

#[derive(Deserialize)]
struct AgentSend {
    from: String,
    text: String,
    #[serde(default)]
    context: Option<String>,
}

/// The agent types a message (a swipe-reply when `context` names the quoted message).
async fn agent_send(State(sim): State<Simulator>, request: Result<Json<AgentSend>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.from)?;
    if request.text.trim().is_empty() {
        return Err(Refused("the message is empty".into()));
    }
    if request.text.chars().count() > MAX_WHATSAPP_CHARS {
        return Err(Refused(format!("a WhatsApp message holds at most {MAX_WHATSAPP_CHARS} characters")));
    }
    let fields = json!({ "type": "text", "text": { "body": request.text } });
    let record = WaRecord { kind: "text", text: Some(request.text), ..WaRecord::default() };
    sent(graph::agent_sends(&sim, &agent, fields, request.context.as_deref(), record).await)
}

#[derive(Deserialize)]
struct AgentMedia {
    from: String,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(flatten)]
    file: Upload,
}

/// The agent sends a photo or a file (uploaded to WhatsApp's media store, as the app does).
async fn agent_media(State(sim): State<Simulator>, request: Result<Json<AgentMedia>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.from)?;
    let kind = match request.file.content_type.trim().to_ascii_lowercase().as_str() {
        "image/jpeg" | "image/png" => "image",
        "image/webp" => "sticker",
        t if t.starts_with("video/") => "video",
        t if t.starts_with("audio/") => "audio",
        _ => "document",
    };
    let limit = if kind == "image" || kind == "sticker" { MAX_IMAGE_BYTES } else { MAX_OTHER_MEDIA_BYTES };
    let blob = request.file.decode(limit)?;
    let caption = request.caption.filter(|c| !c.trim().is_empty() && kind != "audio" && kind != "sticker");
    let (content_type, name) = (blob.content_type.clone(), blob.name.clone());
    let (media_id, sha256) = graph::agent_uploads(&sim, blob);
    let mut object = json!({ "mime_type": content_type, "sha256": sha256, "id": media_id });
    if let Some(caption) = &caption {
        object["caption"] = json!(caption);
    }
    if kind == "document" {
        object["filename"] = json!(name.clone().unwrap_or_else(|| "file".into()));
    }
    if kind == "sticker" {
        object["animated"] = json!(false);
    }
    let fields = json!({ "type": kind, kind: object });
    let record = WaRecord {
        kind,
        text: caption.clone(),
        media: Some(MediaRef { content_type, name, preview_url: Some(format!("/_sim/media/{media_id}")), caption }),
        ..WaRecord::default()
    };
    sent(graph::agent_sends(&sim, &agent, fields, request.context.as_deref(), record).await)
}

#[derive(Deserialize)]
struct AgentButton {
    from: String,
    /// The message whose button was tapped.
    context: String,
    id: String,
    #[serde(default)]
    title: String,
}

/// The agent taps a reply button of an interactive message.
async fn agent_button(State(sim): State<Simulator>, request: Result<Json<AgentButton>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.from)?;
    let fields = json!({ "type": "interactive", "interactive": {
        "type": "button_reply", "button_reply": { "id": request.id, "title": request.title } } });
    let record = WaRecord { kind: "button_reply", text: Some(request.title), ..WaRecord::default() };
    sent(graph::agent_sends(&sim, &agent, fields, Some(&request.context), record).await)
}

#[derive(Deserialize)]
struct AgentList {
    from: String,
    context: String,
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
}

/// The agent picks a row of a list message.
async fn agent_list(State(sim): State<Simulator>, request: Result<Json<AgentList>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.from)?;
    let mut reply = json!({ "id": request.id, "title": request.title });
    if let Some(description) = request.description.filter(|d| !d.is_empty()) {
        reply["description"] = json!(description);
    }
    let fields = json!({ "type": "interactive", "interactive": { "type": "list_reply", "list_reply": reply } });
    let record = WaRecord { kind: "list_reply", text: Some(request.title), ..WaRecord::default() };
    sent(graph::agent_sends(&sim, &agent, fields, Some(&request.context), record).await)
}

#[derive(Deserialize)]
struct AgentReact {
    from: String,
    message: String,
    /// Empty removes the agent's reaction.
    #[serde(default)]
    emoji: String,
}

async fn agent_react(State(sim): State<Simulator>, request: Result<Json<AgentReact>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.from)?;
    let fields = json!({ "type": "reaction", "reaction": { "message_id": request.message, "emoji": request.emoji } });
    let record = WaRecord {
        kind: "reaction",
        reaction_to: Some(request.message),
        emoji: Some(request.emoji),
        ..WaRecord::default()
    };
    sent(graph::agent_sends(&sim, &agent, fields, None, record).await)
}

#[derive(Deserialize)]
struct AgentRead {
    agent: String,
}

/// The agent's phone showed its chat: blue ticks for everything in it.
async fn agent_read(State(sim): State<Simulator>, request: Result<Json<AgentRead>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = checked_agent(&sim, &request.agent)?;
    let read = graph::agent_reads(&sim, &agent).await.map_err(Refused)?;
    Ok(Json(json!({ "ok": true, "read": read })))
}

#[derive(Deserialize)]
struct AgentUsername {
    agent: String,
    number_hidden: bool,
}

/// The agent adopts a username and hides their number, or shows it again: while hidden, their
/// messages reach the bridge with their business-scoped user id only, and the statuses of
/// sends to them name them by user id only. Only a line's agents have the switch (the page
/// offers no other phone).
async fn agent_username(State(sim): State<Simulator>, request: Result<Json<AgentUsername>, JsonRejection>) -> Action {
    let Json(request) = request?;
    let agent = request.agent.trim();
    if !sim.lines().any(|l| l.agents.iter().any(|a| a.as_str() == agent)) {
        return Err(Refused(format!("`{agent}` is not an agent of a line")));
    }
    sim.update(|world| world.set_number_hidden(agent, request.number_hidden));
    let shown = if request.number_hidden { "hidden (username)" } else { "shown" };
    println!("agent {agent}: number {shown}");
    Ok(Json(json!({
        "ok": true, "agent": agent, "number_hidden": request.number_hidden,
        "user_id": business_scoped_user_id(agent), "username": username(&sim.agent_name(agent)),
    })))
}
