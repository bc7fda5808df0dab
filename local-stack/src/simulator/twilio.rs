//! Twilio, simulated: the Messages API the worker sends SMS through (auth, parameters and
//! opt-outs checked like Twilio, real-shaped answers), the status callbacks that follow
//! (queued → sent → delivered, or undelivered/failed with a code), the MMS media URLs
//! (Basic auth), and the customer's phone: texts posted to the bridge's inbound webhook,
//! signed as Twilio signs them, with Twilio's own STOP/START/HELP handling.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::twilio_rules::{TwilioError, validate_create};
use super::world::{Blob, SmsRecord, now_string};
use super::{Simulator, signing};

/// Twilio's Advanced Opt-Out defaults (keywords and its answers), applied before the
/// message reaches the bridge's webhook, which still receives it.
const OPT_OUT_KEYWORDS: [&str; 8] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"];
const OPT_IN_KEYWORDS: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP_KEYWORDS: [&str; 2] = ["HELP", "INFO"];
const OPT_OUT_ANSWER: &str = "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe.";
const OPT_IN_ANSWER: &str = "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.";
const HELP_ANSWER: &str = "Reply STOP to unsubscribe. Msg&Data Rates May Apply.";

/// What an MMS may carry in all (Twilio's limit for incoming media is 5 MB).
pub const MAX_INBOUND_MEDIA_BYTES: usize = 5 * 1024 * 1024;

/// How long after the API call each status is reported.
const SENT_AFTER: Duration = Duration::from_millis(300);
const DELIVERED_AFTER: Duration = Duration::from_millis(700);

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/2010-04-01/Accounts/{account_json}", get(fetch_account))
        .route("/2010-04-01/Accounts/{account}/Messages.json", post(create_message).get(list_messages))
        .route("/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}", get(media))
}

fn error_response(error: &TwilioError) -> Response {
    let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(error.body())).into_response()
}

fn twilio_error(http_status: u16, code: i64, message: impl Into<String>) -> TwilioError {
    TwilioError { http_status, code, message: message.into() }
}

impl Simulator {
    fn twilio_authorized(&self, account: &str, headers: &HeaderMap) -> Result<(), TwilioError> {
        let config = &self.0.config;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", config.twilio_account_sid, config.twilio_auth_token))
        );
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Err(twilio_error(401, 20003, "Authenticate"));
        }
        if account != config.twilio_account_sid {
            return Err(twilio_error(
                404,
                20404,
                format!("The requested resource /2010-04-01/Accounts/{account} was not found"),
            ));
        }
        Ok(())
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account, always active here (the read
/// `bridge-ops redrive` checks the credentials with).
async fn fetch_account(State(sim): State<Simulator>, Path(account_json): Path<String>, headers: HeaderMap) -> Response {
    let Some(account) = account_json.strip_suffix(".json") else {
        return error_response(&twilio_error(
            404,
            20404,
            format!("The requested resource {account_json} was not found"),
        ));
    };
    if let Err(error) = sim.twilio_authorized(account, &headers) {
        return error_response(&error);
    }
    axum::Json(serde_json::json!({ "sid": account, "status": "active", "type": "Full" })).into_response()
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
async fn create_message(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept_message(&sim, &account, &headers, &body) {
        Ok(resource) => {
            // --late-answer-rate: created and delivered, but answered past the bridge's timeout.
            if sim.answers_late() {
                println!("SMS {}: created, answering after {:?}", resource["sid"], super::failures::LATE_ANSWER);
                tokio::time::sleep(super::failures::LATE_ANSWER).await;
            }
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        Err(error) => {
            println!("SMS refused: {} {} ({})", error.http_status, error.message, error.code);
            let mut response = error_response(&error);
            if error.http_status == 429 {
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json?To=&From=&PageSize=`: the messages
/// the business sent, newest first, filtered by `To` and `From` (Twilio API reference,
/// "Message resource", Read multiple).
async fn list_messages(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(error) = sim.twilio_authorized(&account, &headers) {
        return error_response(&error);
    }
    let page_size = query.get("PageSize").and_then(|n| n.parse::<usize>().ok()).unwrap_or(50).clamp(1, 1000);
    let messages: Vec<Value> = sim
        .world()
        .sms
        .iter()
        .rev()
        .filter(|sms| sms.direction == "out")
        .filter(|sms| query.get("To").is_none_or(|to| *to == sms.customer))
        .filter(|sms| query.get("From").is_none_or(|from| *from == sms.line))
        .take(page_size)
        .map(|sms| {
            json!({
                "sid": sms.id, "account_sid": account, "to": sms.customer, "from": sms.line, "body": sms.body,
                "status": sms.status, "direction": "outbound-api", "date_created": rfc2822(&sms.at),
            })
        })
        .collect();
    axum::Json(json!({ "messages": messages, "page": 0, "page_size": page_size })).into_response()
}

/// Twilio's date format (`Sat, 05 Dec 2026 10:00:00 +0000`) for a record's time.
fn rfc2822(at: &str) -> String {
    at.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_string(&t).ok())
        .unwrap_or_default()
}

fn accept_message(sim: &Simulator, account: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, TwilioError> {
    sim.twilio_authorized(account, headers)?;
    let params = shared::adapters::twilio::parse_form(body)
        .map_err(|e| twilio_error(400, 20001, format!("Invalid form body: {e}")))?;
    let create = validate_create(&params)?;
    let from_twilio_line =
        sim.line_by_sms_number(&create.from).is_some_and(|l| l.sms_provider == shared::domain::SmsProviderKind::Twilio);
    if !from_twilio_line {
        return Err(twilio_error(
            400,
            21606,
            format!(
                "The 'From' phone number provided ({}) is not a valid message-capable Twilio phone number for this destination.",
                create.from
            ),
        ));
    }
    if sim.fails_at_random() {
        return Err(if sim.coin() {
            twilio_error(503, 20503, "Service Unavailable (simulated --fail-rate)")
        } else {
            twilio_error(429, 20429, "Too Many Requests (simulated --fail-rate)")
        });
    }
    if sim.world().is_opted_out(&create.from, &create.to) {
        return Err(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"));
    }

    let sid = new_sid("SM");
    let cost = shared::domain::sms_text::cost(&create.body);
    let segments = if create.body.is_empty() { 1 } else { cost.segments };
    sim.update(|world| {
        world.add_sms(SmsRecord {
            id: sid.clone(),
            line: create.from.clone(),
            customer: create.to.clone(),
            direction: "out",
            body: create.body.clone(),
            media: Vec::new(),
            at: now_string(),
            status: Some("queued".into()),
            error_code: None,
            webhook_status: None,
            sender: "bridge",
            segments: Some(segments),
            ..SmsRecord::default()
        })
    });
    let media_note =
        if create.media_urls.is_empty() { String::new() } else { format!(" [+{} media]", create.media_urls.len()) };
    println!("SMS {} → {}: {}{media_note}  ({sid})", create.from, create.to, create.body.replace('\n', "\n    "));
    let resource = json!({
        "sid": sid, "account_sid": account, "messaging_service_sid": null,
        "from": create.from, "to": create.to, "body": create.body,
        "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
        "num_segments": segments.to_string(), "num_media": create.media_urls.len().to_string(),
        "price": null, "price_unit": "USD", "error_code": null, "error_message": null,
        "date_created": jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_string(&jiff::Timestamp::now()).unwrap_or_default(),
        "date_sent": null, "date_updated": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        "subresource_uris": { "media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json") },
    });
    tokio::spawn(deliver(sim.clone(), sid, create));
    Ok(resource)
}

/// What Twilio does after accepting: fetch the media, then report `sent` and the outcome.
async fn deliver(sim: Simulator, sid: String, create: super::twilio_rules::SmsCreate) {
    let mut media = Vec::new();
    for (n, url) in create.media_urls.iter().enumerate() {
        match sim.fetch_media(url).await {
            Ok(blob) => {
                let id = format!("{sid}-{n}");
                media.push(sim.keep_blob(&id, blob, None));
            }
            Err(reason) => {
                println!("SMS {sid}: media {n} could not be fetched ({reason}): failed 11200");
                sim.report_sms(&sid, &create, "failed", Some(11200)).await;
                return;
            }
        }
    }
    if !media.is_empty() {
        sim.update(|world| {
            if let Some(record) = world.sms_mut(&sid) {
                record.media = media;
            }
        });
    }
    tokio::time::sleep(SENT_AFTER).await;
    sim.report_sms(&sid, &create, "sent", None).await;
    tokio::time::sleep(DELIVERED_AFTER).await;
    match sim.0.config.failures.failing_code(&create.to) {
        // Carrier-side codes (30xxx) end as undelivered, others as failed (Twilio's usage).
        Some(code) if (30_000..31_000).contains(&code) => {
            sim.report_sms(&sid, &create, "undelivered", Some(code)).await
        }
        Some(code) => sim.report_sms(&sid, &create, "failed", Some(code)).await,
        None => sim.report_sms(&sid, &create, "delivered", None).await,
    }
}

impl Simulator {
    /// Records the status on the customer's phone and posts it to the `StatusCallback`,
    /// signed over that URL.
    async fn report_sms(
        &self,
        sid: &str,
        create: &super::twilio_rules::SmsCreate,
        status: &str,
        error_code: Option<i64>,
    ) {
        self.update(|world| {
            if let Some(record) = world.sms_mut(sid) {
                record.status = Some(status.to_owned());
                record.error_code = error_code;
            }
        });
        let Some(callback) = &create.status_callback else { return };
        let account = self.0.config.twilio_account_sid.clone();
        let code = error_code.map(|c| c.to_string());
        let mut params = vec![
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("AccountSid", account.as_str()),
            ("From", create.from.as_str()),
            ("To", create.to.as_str()),
            ("ApiVersion", "2010-04-01"),
        ];
        if let Some(code) = &code {
            params.push(("ErrorCode", code));
        }
        if let Err(e) = self.post_twilio_form(callback, &params).await {
            println!("status callback for {sid} failed: {e}");
        }
    }

    /// Posts a Twilio-signed form to `url`: signed over `url` as given, sent to where the
    /// bridge listens when `url` is under `PUBLIC_BASE_URL`.
    async fn post_twilio_form(&self, url: &str, params: &[(&str, &str)]) -> Result<u16, String> {
        let signature = signing::twilio_signature(&self.0.config.twilio_auth_token, url, params);
        let response = self
            .0
            .http
            .post(self.bridge_target(url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .header(header::USER_AGENT, "TwilioProxy/1.1")
            .body(shared::adapters::twilio::encode_form(params))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}

/// A part of a customer's MMS, as the page uploads it.
pub struct UploadedMedia {
    pub content_type: String,
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

/// The customer's phone sends a text (and media) to the line's number: Twilio applies its
/// opt-out keywords, then posts the message to the bridge's inbound webhook. Returns the
/// message sid and what the webhook answered.
pub async fn customer_texts(
    sim: &Simulator,
    from: &str,
    to: &str,
    text: &str,
    uploads: Vec<UploadedMedia>,
) -> Result<(String, u16), String> {
    let sid = new_sid(if uploads.is_empty() { "SM" } else { "MM" });
    let account = sim.0.config.twilio_account_sid.clone();
    let mut media_refs = Vec::new();
    let mut media_params = Vec::new();
    for (n, upload) in uploads.into_iter().enumerate() {
        let media_sid = new_sid("ME");
        let content_type = upload.content_type.clone();
        media_refs.push(sim.keep_blob(
            &media_sid,
            Blob { content_type: upload.content_type, name: upload.name, bytes: upload.bytes },
            None,
        ));
        let url = format!("{}/2010-04-01/Accounts/{account}/Messages/{sid}/Media/{media_sid}", sim.twilio_base());
        media_params.push((format!("MediaUrl{n}"), url));
        media_params.push((format!("MediaContentType{n}"), content_type));
    }
    let num_media = media_refs.len().to_string();
    let segments = shared::domain::sms_text::cost(text).segments.max(1).to_string();
    sim.update(|world| {
        world.add_sms(SmsRecord {
            id: sid.clone(),
            line: to.to_owned(),
            customer: from.to_owned(),
            direction: "in",
            body: text.to_owned(),
            media: media_refs,
            at: now_string(),
            status: Some("received".into()),
            error_code: None,
            webhook_status: None,
            sender: "customer",
            segments: None,
            ..SmsRecord::default()
        })
    });

    // Twilio's own keyword handling comes first; the bridge still gets the message.
    let keyword: String =
        text.trim().trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace()).to_uppercase();
    let answer = if OPT_OUT_KEYWORDS.contains(&keyword.as_str()) {
        sim.update(|world| world.set_opted_out(to, from, true));
        Some(OPT_OUT_ANSWER)
    } else if OPT_IN_KEYWORDS.contains(&keyword.as_str()) {
        sim.update(|world| world.set_opted_out(to, from, false));
        Some(OPT_IN_ANSWER)
    } else if HELP_KEYWORDS.contains(&keyword.as_str()) {
        Some(HELP_ANSWER)
    } else {
        None
    };

    let mut params: Vec<(&str, &str)> = vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", &sid),
        ("NumMedia", &num_media),
        ("SmsSid", &sid),
        ("SmsStatus", "received"),
        ("Body", text),
        ("To", to),
        ("NumSegments", &segments),
        ("MessageSid", &sid),
        ("AccountSid", &account),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ];
    params.extend(media_params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let url = format!("{}/sms/inbound", sim.0.config.public_base_url.trim_end_matches('/'));
    let outcome = sim.post_twilio_form(&url, &params).await;
    let webhook_status = outcome.as_ref().copied().unwrap_or(502);
    sim.update(|world| {
        if let Some(record) = world.sms_mut(&sid) {
            record.webhook_status = Some(webhook_status);
        }
    });
    println!("customer {from} → {to}: {}  ({sid}, webhook {webhook_status})", text.replace('\n', "\n    "));
    if let Some(answer) = answer {
        sim.update(|world| {
            world.add_sms(SmsRecord {
                id: new_sid("SM"),
                line: to.to_owned(),
                customer: from.to_owned(),
                direction: "out",
                body: answer.to_owned(),
                media: Vec::new(),
                at: now_string(),
                status: Some("delivered".into()),
                error_code: None,
                webhook_status: None,
                sender: "twilio",
                segments: Some(shared::domain::sms_text::cost(answer).segments),
                ..SmsRecord::default()
            })
        });
    }
    outcome.map(|status| (sid, status)).map_err(|e| format!("the bridge's SMS webhook did not answer: {e}"))
}

/// `GET .../Messages/{sid}/Media/{media sid}`: the file, to the account's Basic auth only.
async fn media(
    State(sim): State<Simulator>,
    Path((account, _message, media)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = sim.twilio_authorized(&account, &headers) {
        return error_response(&error);
    }
    let world = sim.world();
    match world.blob(&media) {
        Some(blob) => ([(header::CONTENT_TYPE, blob.content_type.clone())], blob.bytes.clone()).into_response(),
        None => error_response(&twilio_error(
            404,
            20404,
            format!("The requested resource /2010-04-01/Accounts/{account}/Messages/Media/{media} was not found"),
        )),
    }
}

/// A Twilio-style sid: two letters and 32 hex digits.
pub fn new_sid(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}
