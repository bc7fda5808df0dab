//! The WhatsApp Cloud API, simulated: `/messages` checked like Meta checks it (token,
//! phone number id, Meta's limits, the line's template, the 24-hour window), answered with
//! real-shaped bodies; `sent`/`delivered`/`read` or `failed` statuses posted to the bridge's
//! webhook; the business marking an agent's message read; the media endpoints; and the
//! agents' phones, whose messages reach the bridge as Meta-signed notifications naming the
//! agent by business-scoped user id, and by number unless they hide it behind a username.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::Digest;
use shared::domain::Line;

use super::graph_rules::{
    GraphContent, GraphError, GraphRequest, GraphSend, MarkRead, not_a_received_message, validate_request,
};
use super::user_id::{business_scoped_user_id, username};
use super::world::{Blob, MediaRef, WaRecord, now_string};
use super::{Simulator, signing};

/// The WhatsApp Business Account id the notifications name.
const WABA_ID: &str = "102290129340398";
/// Parameters of the line's template, as docs/configuration.md tells the business to create it:
/// `New SMS {{1}} from {{2}}: {{3}}`.
const TEMPLATE_PARAMETERS: usize = 3;

const SENT_AFTER: Duration = Duration::from_millis(150);
const DELIVERED_AFTER: Duration = Duration::from_millis(350);

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/{version}/{phone_number_id}/messages", post(send_message))
        .route("/{version}/{media_id}", get(media_object))
        .route("/media-download/{media_id}", get(download))
}

fn graph_error(http_status: u16, code: i64, message: &str, details: impl Into<String>) -> GraphError {
    GraphError { http_status, code, message: message.to_owned(), details: details.into() }
}

fn error_response(error: &GraphError) -> Response {
    let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    let trace = format!("A{}", &uuid::Uuid::new_v4().simple().to_string()[..22]);
    (status, axum::Json(error.body(&trace))).into_response()
}

impl Simulator {
    fn graph_authorized(&self, headers: &HeaderMap) -> Result<(), GraphError> {
        let expected = format!("Bearer {}", self.0.config.meta_access_token);
        if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token", ""))
        }
    }
}

/// `POST /{version}/{phone_number_id}/messages`.
/// (`GET /{version}/{id}` answers a media id, or a line's phone number id with its `id`.)
async fn send_message(
    State(sim): State<Simulator>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept_message(&sim, &phone_number_id, &headers, &body) {
        Ok(answer) => {
            // --late-answer-rate: accepted and delivered, but answered past the bridge's timeout.
            if sim.answers_late() {
                let accepted = answer["messages"][0]["id"].as_str().unwrap_or("a read mark");
                println!("WhatsApp {accepted}: accepted, answering after {:?}", super::failures::LATE_ANSWER);
                tokio::time::sleep(super::failures::LATE_ANSWER).await;
            }
            axum::Json(answer).into_response()
        }
        Err(error) => {
            println!("WhatsApp refused: {} {} ({}) {}", error.http_status, error.message, error.code, error.details);
            let mut response = error_response(&error);
            if error.http_status == 429 {
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

fn accept_message(
    sim: &Simulator,
    phone_number_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, GraphError> {
    sim.graph_authorized(headers)?;
    let line = sim.line_by_phone_number_id(phone_number_id).ok_or_else(|| {
        graph_error(
            400,
            100,
            &format!("Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            "",
        )
    })?;
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| graph_error(400, 100, "Invalid parameter", format!("the request body is not JSON: {e}")))?;
    let send = match validate_request(&json)? {
        GraphRequest::Send(send) => send,
        GraphRequest::MarkRead(mark) => return mark_read(sim, line, &mark),
    };
    if let GraphContent::Template { name, language, parameters } = &send.content {
        if *name != line.template.name || *language != line.template.language {
            return Err(graph_error(
                404,
                132001,
                "Template name does not exist in the translation",
                format!("template name ({name}) does not exist in {language}"),
            ));
        }
        if parameters.len() != TEMPLATE_PARAMETERS {
            return Err(graph_error(
                400,
                132000,
                "Number of parameters does not match the expected number of params",
                format!(
                    "body: number of localizable_params ({}) does not match the expected number of params ({TEMPLATE_PARAMETERS})",
                    parameters.len()
                ),
            ));
        }
    }
    fail_at_random(sim)?;

    let wamid = new_wamid();
    let mut record = to_agent_record(&wamid, &send);
    record.tracking.clone_from(&send.tracking);
    println!("WhatsApp {phone_number_id} → {}: {}  ({wamid})", send.to, shown(&record).replace('\n', "\n    "));
    sim.update(|world| world.add_whatsapp(record));
    tokio::spawn(deliver(sim.clone(), line.clone(), wamid.clone(), send.clone()));
    Ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": send.to, "wa_id": send.to.trim_start_matches('+') }],
        "messages": [{ "id": wamid }],
    }))
}

/// `--fail-rate`: this request fails, as Graph sometimes does (a 500 or a 429).
fn fail_at_random(sim: &Simulator) -> Result<(), GraphError> {
    if !sim.fails_at_random() {
        return Ok(());
    }
    Err(if sim.coin() {
        graph_error(500, 131000, "Something went wrong", "simulated --fail-rate")
    } else {
        graph_error(429, 130429, "Rate limit hit", "simulated --fail-rate")
    })
}

/// The business marks an agent's message read (Cloud API, "Mark messages as read"): the
/// agent's phone shows blue ticks on it and on their earlier messages. Not a message: no
/// wamid, no status notifications; Graph answers `{"success": true}`.
fn mark_read(sim: &Simulator, line: &Line, mark: &MarkRead) -> Result<Value, GraphError> {
    let agent = sim.world().agents_message(&mark.message_id).map(|m| m.agent.clone());
    // Only a message this business number received can be marked: agents write to their
    // line's number (a stranger, to the first line's).
    let received_here = agent.filter(|agent| sim.line_of_agent(agent).is_some_and(|l| l.id == line.id));
    let Some(agent) = received_here else { return Err(not_a_received_message(&mark.message_id)) };
    fail_at_random(sim)?;
    sim.update(|world| world.mark_read_by_business(&mark.message_id));
    println!("WhatsApp {} → {agent}: [read mark on {}]", line.whatsapp_phone_number_id.as_str(), mark.message_id);
    Ok(json!({ "success": true }))
}

/// What the agent's phone shows for a message the business sent.
fn to_agent_record(wamid: &str, send: &GraphSend) -> WaRecord {
    let mut record = WaRecord {
        id: wamid.to_owned(),
        agent: send.to.trim_start_matches('+').to_owned(),
        direction: "to_agent",
        context: send.reply_to.clone(),
        at: now_string(),
        status: Some("accepted".into()),
        ..WaRecord::default()
    };
    match &send.content {
        GraphContent::Text { body, .. } => {
            record.kind = "text";
            record.text = Some(body.clone());
        }
        GraphContent::Template { name, language, parameters } => {
            record.kind = "template";
            record.template = Some(json!({ "name": name, "language": language, "parameters": parameters }));
        }
        GraphContent::Buttons { header, body, footer, buttons } => {
            record.kind = "buttons";
            record.text = Some(framed(header, body, footer));
            record.buttons = Some(buttons.iter().map(|b| json!({ "id": b.id, "title": b.title })).collect());
        }
        GraphContent::List { header, body, footer, button, sections } => {
            record.kind = "list";
            record.text = Some(framed(header, body, footer));
            let rows: Vec<Value> = sections
                .iter()
                .flat_map(|s| &s.rows)
                .map(|r| json!({ "id": r.id, "title": r.title, "description": r.description }))
                .collect();
            record.list = Some(json!({ "button": button, "rows": rows }));
        }
        GraphContent::Reaction { message_id, emoji } => {
            record.kind = "reaction";
            record.reaction_to = Some(message_id.clone());
            record.emoji = Some(emoji.clone());
        }
        GraphContent::Media { kind, caption, filename, .. } => {
            record.kind = kind.as_str();
            record.text = caption.clone();
            record.media = Some(MediaRef {
                content_type: String::new(),
                name: filename.clone(),
                preview_url: None,
                caption: caption.clone(),
            });
        }
    }
    record
}

fn framed(header: &Option<String>, body: &str, footer: &Option<String>) -> String {
    [header.as_deref(), Some(body), footer.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("\n")
}

/// One line for the console.
fn shown(record: &WaRecord) -> String {
    match record.kind {
        "template" => {
            format!("[template] {}", record.template.as_ref().map(|t| t["parameters"].to_string()).unwrap_or_default())
        }
        "reaction" => format!(
            "[reaction {} on {}]",
            record.emoji.as_deref().unwrap_or(""),
            record.reaction_to.as_deref().unwrap_or("")
        ),
        "buttons" => format!(
            "{} {}",
            record.text.as_deref().unwrap_or(""),
            record.buttons.as_ref().map(|b| b.to_string()).unwrap_or_default()
        ),
        "list" => format!("[list] {}", record.text.as_deref().unwrap_or("")),
        "text" => record.text.clone().unwrap_or_default(),
        kind => format!("[{kind}] {}", record.text.as_deref().unwrap_or("")),
    }
}

/// What WhatsApp does after accepting: enforce the 24-hour window for anything but a
/// template, fetch media by link, then report `sent` and `delivered` (or `failed`).
async fn deliver(sim: Simulator, line: Line, wamid: String, send: GraphSend) {
    let free_form = !matches!(send.content, GraphContent::Template { .. });
    let recipient = send.to.trim_start_matches('+').to_owned();
    if free_form && !sim.window_open(&recipient) {
        tokio::time::sleep(SENT_AFTER).await;
        let error = json!({
            "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        });
        println!("WhatsApp {wamid} → {recipient}: failed 131047 (window closed)");
        sim.report_whatsapp(&line, &wamid, &recipient, "failed", Some(error)).await;
        return;
    }
    if let GraphContent::Media { link, id, .. } = &send.content {
        let fetched = match (link, id) {
            (Some(link), _) => sim.fetch_media(link).await,
            (None, Some(id)) => sim.world().blob(id).cloned().ok_or_else(|| "no such media id".to_owned()),
            (None, None) => Err("no media".to_owned()),
        };
        match fetched {
            Ok(blob) => {
                let caption = send.content.caption();
                let media = sim.keep_blob(&wamid, blob, caption);
                sim.update(|world| {
                    if let Some(record) = world.whatsapp_mut(&wamid) {
                        record.media = Some(media);
                    }
                });
            }
            Err(reason) => {
                let error = json!({
                    "code": 131053, "title": "Media upload error", "message": "Media upload error",
                    "error_data": { "details": format!("Downloading media from the link failed: {reason}") },
                });
                println!("WhatsApp {wamid}: media not fetched ({reason}): failed 131053");
                sim.report_whatsapp(&line, &wamid, &recipient, "failed", Some(error)).await;
                return;
            }
        }
    }
    tokio::time::sleep(SENT_AFTER).await;
    sim.report_whatsapp(&line, &wamid, &recipient, "sent", None).await;
    tokio::time::sleep(DELIVERED_AFTER).await;
    sim.report_whatsapp(&line, &wamid, &recipient, "delivered", None).await;
}

impl Simulator {
    /// Records a status on the agent's phone and posts it to the bridge's webhook.
    async fn report_whatsapp(&self, line: &Line, wamid: &str, recipient: &str, status: &str, error: Option<Value>) {
        let (tracking, kind) = self
            .update(|world| {
                let record = world.whatsapp_mut(wamid)?;
                // Statuses only move forward, as WhatsApp reports them.
                if record.status.as_deref() != Some("read") {
                    record.status = Some(status.to_owned());
                }
                record.error.clone_from(&error);
                Some((record.tracking.clone(), record.kind))
            })
            .unwrap_or((None, ""));
        let mut report = json!({
            "id": wamid, "status": status, "timestamp": jiff::Timestamp::now().as_second().to_string(),
        });
        name_the_recipient(&mut report, recipient, self.world().number_hidden(recipient));
        // Meta echoes the send's `biz_opaque_callback_data` on its statuses.
        if let Some(tracking) = tracking {
            report["biz_opaque_callback_data"] = json!(tracking);
        }
        if status != "failed" {
            report["conversation"] = json!({ "id": format!("conv{}", &wamid[wamid.len().saturating_sub(12)..]), "origin": { "type": "service" } });
            // Per-message pricing: a template is a utility message, anything else the
            // agent's window allowed is a service message; both billed (`type: regular`).
            let category = if kind == "template" { "utility" } else { "service" };
            report["pricing"] =
                json!({ "billable": true, "pricing_model": "PMP", "category": category, "type": "regular" });
        }
        if let Some(error) = error {
            report["errors"] = json!([error]);
        }
        // Meta delivers a notification again, with growing pauses, until the webhook answers
        // 2xx (for days; here a few tries over half a minute).
        let notification = json!({ "statuses": [report] });
        let mut pause = std::time::Duration::from_secs(1);
        for attempt in 1..=5 {
            match self.post_notification(line, notification.clone()).await {
                Ok(status) if (200..300).contains(&status) => return,
                Ok(status) => println!("status notification for {wamid} answered {status} (try {attempt})"),
                Err(e) => println!("status notification for {wamid} failed: {e} (try {attempt})"),
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// Posts `value` (messages, statuses, contacts) as a Meta-signed webhook notification.
    async fn post_notification(&self, line: &Line, value: Value) -> Result<u16, String> {
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] = json!({
            "display_phone_number": line.sms_number.digits(),
            "phone_number_id": line.whatsapp_phone_number_id.as_str(),
        });
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": WABA_ID, "changes": [{ "value": value, "field": "messages" }] }],
        })
        .to_string();
        let signature = signing::meta_signature(&self.0.config.meta_app_secret, body.as_bytes());
        let response = self
            .0
            .http
            .post(format!("{}/whatsapp", self.0.config.bridge_url))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-hub-signature-256", signature)
            .header(header::USER_AGENT, "facebookexternalua")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}

/// Names the sender of `message` as Meta does since 2026 ("Business-scoped user IDs", updated
/// 2026-11-05): always by user id (`from_user_id`, the contact's `user_id`); by phone too
/// (`from`, the contact's `wa_id`) unless they hide their number behind a username, which
/// their contact then shows. Returns the `contacts[]` entry.
fn name_the_sender(message: &mut Value, wa_id: &str, name: &str, number_hidden: bool) -> Value {
    let user_id = business_scoped_user_id(wa_id);
    message["from_user_id"] = json!(user_id);
    let mut contact = json!({ "profile": { "name": name }, "user_id": user_id });
    if number_hidden {
        contact["profile"]["username"] = json!(username(name));
    } else {
        message["from"] = json!(wa_id);
        contact["wa_id"] = json!(wa_id);
    }
    contact
}

/// Names the recipient of a status report likewise: always `recipient_user_id`, and
/// `recipient_id` (the phone) unless they hide their number.
fn name_the_recipient(report: &mut Value, wa_id: &str, number_hidden: bool) {
    report["recipient_user_id"] = json!(business_scoped_user_id(wa_id));
    if !number_hidden {
        report["recipient_id"] = json!(wa_id);
    }
}

/// The agent's phone sends a message to the business number: `fields` is the message's
/// type-specific part (`{"type": "text", "text": {...}}`), `record` what the phone shows.
/// Returns the new wamid and what the bridge's webhook answered.
pub async fn agent_sends(
    sim: &Simulator,
    agent: &str,
    fields: Value,
    context: Option<&str>,
    mut record: WaRecord,
) -> Result<(String, u16), String> {
    let line = sim.line_of_agent(agent).ok_or_else(|| format!("{agent} is not an agent of any line"))?;
    let wamid = new_wamid();
    let number_hidden = sim.world().number_hidden(agent);
    let mut message = fields;
    let contact = name_the_sender(&mut message, agent, &sim.agent_name(agent), number_hidden);
    message["id"] = json!(wamid);
    message["timestamp"] = json!(jiff::Timestamp::now().as_second().to_string());
    if let Some(quoted) = context {
        message["context"] = json!({ "from": line.sms_number.digits(), "id": quoted });
    }
    record.id.clone_from(&wamid);
    record.agent = agent.to_owned();
    record.direction = "from_agent";
    record.context = context.map(str::to_owned);
    record.at = now_string();
    sim.update(|world| {
        world.agent_wrote(agent, jiff::Timestamp::now());
        world.add_whatsapp(record);
    });
    let value = json!({ "contacts": [contact], "messages": [message] });
    let outcome = sim.post_notification(&line, value).await;
    let status = outcome.as_ref().copied().unwrap_or(502);
    sim.update(|world| {
        if let Some(record) = world.whatsapp_mut(&wamid) {
            record.webhook_status = Some(status);
        }
    });
    let by_user_id = if number_hidden { ", by user id only" } else { "" };
    println!("agent {agent} → business: {}  ({wamid}{by_user_id}, webhook {status})", message["type"]);
    outcome.map(|status| (wamid, status)).map_err(|e| format!("the bridge's WhatsApp webhook did not answer: {e}"))
}

/// The agent's phone marks every message it shows as read.
pub async fn agent_reads(sim: &Simulator, agent: &str) -> Result<usize, String> {
    let line = sim.line_of_agent(agent).ok_or_else(|| format!("{agent} is not an agent of any line"))?;
    let unread: Vec<String> = sim
        .world()
        .whatsapp
        .iter()
        .filter(|m| {
            m.agent == agent
                && m.direction == "to_agent"
                && m.kind != "reaction"
                && matches!(m.status.as_deref(), Some("sent" | "delivered"))
        })
        .map(|m| m.id.clone())
        .collect();
    for wamid in &unread {
        sim.report_whatsapp(&line, wamid, agent, "read", None).await;
    }
    Ok(unread.len())
}

/// An agent's photo or file, uploaded to WhatsApp's media store: its media id.
pub fn agent_uploads(sim: &Simulator, blob: Blob) -> (String, String) {
    let id = (0..16).map(|_| char::from(b'0' + sim.digit())).collect::<String>();
    let sha256 = base64_sha256(&blob.bytes);
    sim.update(|world| world.put_blob(&id, blob));
    (id, sha256)
}

fn base64_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// `GET /{version}/{media_id}`: the media object, with a download URL on the simulator.
async fn media_object(
    State(sim): State<Simulator>,
    Path((_version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = sim.graph_authorized(&headers) {
        return error_response(&error);
    }
    // A line's phone number id: the read `bridge-ops redrive` checks the token with
    // (`GET /{version}/{phone-number-id}?fields=id`).
    if sim.0.config.lines.by_phone_number_id(&media_id).is_some() {
        return axum::Json(json!({ "id": media_id })).into_response();
    }
    let object = sim.world().blob(&media_id).map(|blob| {
        json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/media-download/{media_id}", sim.graph_base()),
            "mime_type": blob.content_type,
            "sha256": base64_sha256(&blob.bytes),
            "file_size": blob.bytes.len(),
            "id": media_id,
        })
    });
    match object {
        Some(object) => axum::Json(object).into_response(),
        None => error_response(&graph_error(
            400,
            100,
            &format!(
                "Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
            "",
        )),
    }
}

/// The media file itself: with the access token only, as Meta's download URLs are.
async fn download(State(sim): State<Simulator>, Path(media_id): Path<String>, headers: HeaderMap) -> Response {
    if sim.graph_authorized(&headers).is_err() {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    match sim.world().blob(&media_id) {
        Some(blob) => ([(header::CONTENT_TYPE, blob.content_type.clone())], blob.bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// A wamid shaped like WhatsApp's (`wamid.` and base64).
pub fn new_wamid() -> String {
    use base64::Engine;
    let id = uuid::Uuid::new_v4();
    format!("wamid.HBgL{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
}

impl GraphContent {
    fn caption(&self) -> Option<String> {
        match self {
            GraphContent::Media { caption, .. } => caption.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANA: &str = "14155550111";

    #[test]
    fn a_sender_is_named_by_user_id_and_by_phone_while_the_number_shows() {
        let mut message = json!({ "type": "text", "text": { "body": "hi" } });
        let contact = name_the_sender(&mut message, ANA, "Ana", false);
        let user_id = business_scoped_user_id(ANA);
        assert_eq!((&message["from"], &message["from_user_id"]), (&json!(ANA), &json!(user_id)));
        assert_eq!(contact, json!({ "profile": { "name": "Ana" }, "wa_id": ANA, "user_id": user_id }));
    }

    #[test]
    fn a_sender_with_a_username_is_named_by_user_id_only() {
        let mut message = json!({ "type": "text", "text": { "body": "hi" } });
        let contact = name_the_sender(&mut message, ANA, "Ana", true);
        let user_id = business_scoped_user_id(ANA);
        assert_eq!(message, json!({ "type": "text", "text": { "body": "hi" }, "from_user_id": user_id }));
        assert_eq!(contact, json!({ "profile": { "name": "Ana", "username": "@ana" }, "user_id": user_id }));
        assert!(!format!("{message}{contact}").contains(&ANA[1..]), "no trace of the number");
    }

    #[test]
    fn a_status_names_its_recipient_by_user_id_and_by_phone_unless_hidden() {
        let user_id = business_scoped_user_id(ANA);
        let mut shown = json!({ "id": "wamid.A", "status": "sent" });
        name_the_recipient(&mut shown, ANA, false);
        assert_eq!((&shown["recipient_id"], &shown["recipient_user_id"]), (&json!(ANA), &json!(user_id)));
        let mut hidden = json!({ "id": "wamid.A", "status": "sent" });
        name_the_recipient(&mut hidden, ANA, true);
        assert_eq!(hidden, json!({ "id": "wamid.A", "status": "sent", "recipient_user_id": user_id }));
    }
}
