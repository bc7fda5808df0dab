//! Stand-ins for the providers until the simulator exists (SPEC §11): the Graph API and
//! Twilio's Messages API accept the sends the worker makes, print each on the console and
//! answer like the real ones. The Twilio stand-in also reports `sent` then `delivered` to
//! the message's `StatusCallback`, signed the way Twilio signs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use shared::adapters::twilio::{compute_signature, encode_form, parse_form};

pub const GRAPH_PREFIX: &str = "/_local/graph";
pub const TWILIO_PREFIX: &str = "/_local/twilio";

#[derive(Clone)]
pub struct Credentials {
    pub meta_access_token: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
}

pub fn router(credentials: Credentials) -> Router {
    Router::new()
        .route(&format!("{GRAPH_PREFIX}/{{version}}/{{phone_number_id}}/messages"), post(whatsapp_send))
        .route(&format!("{TWILIO_PREFIX}/2010-04-01/Accounts/{{sid}}/Messages.json"), post(sms_send))
        .with_state(Arc::new(credentials))
}

async fn whatsapp_send(
    State(credentials): State<Arc<Credentials>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {}", credentials.meta_access_token));
    if !authorized {
        let error =
            json!({ "error": { "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190 } });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let to = body["to"].as_str().unwrap_or("?").to_owned();
    let shown = match body["type"].as_str() {
        Some("text") => body["text"]["body"].as_str().unwrap_or_default().to_owned(),
        Some("template") => {
            let params: Vec<&str> = body["template"]["components"][0]["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
                .unwrap_or_default();
            format!("[template {}] {}", body["template"]["name"].as_str().unwrap_or("?"), params.join(" | "))
        }
        Some("reaction") => format!(
            "[reaction {} on {}]",
            body["reaction"]["emoji"].as_str().unwrap_or("?"),
            body["reaction"]["message_id"].as_str().unwrap_or("?")
        ),
        Some("interactive") if body["interactive"]["type"] == "button" => {
            let buttons: Vec<String> = body["interactive"]["action"]["buttons"]
                .as_array()
                .map(|bs| {
                    bs.iter()
                        .map(|b| {
                            format!(
                                "[{}] ({})",
                                b["reply"]["title"].as_str().unwrap_or("?"),
                                b["reply"]["id"].as_str().unwrap_or("?")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{}\n{}", body["interactive"]["body"]["text"].as_str().unwrap_or_default(), buttons.join(" "))
        }
        Some("interactive") => {
            let rows: Vec<&str> = body["interactive"]["action"]["sections"][0]["rows"]
                .as_array()
                .map(|rows| rows.iter().filter_map(|r| r["id"].as_str()).collect())
                .unwrap_or_default();
            format!("[list] {} {rows:?}", body["interactive"]["body"]["text"].as_str().unwrap_or_default())
        }
        Some(kind @ ("image" | "video" | "audio" | "document")) => format!(
            "[{kind} {}] {}",
            body[kind]["link"].as_str().unwrap_or("?"),
            body[kind]["caption"].as_str().unwrap_or_default()
        ),
        other => format!("[{}]", other.unwrap_or("?")),
    };
    let wamid = format!("wamid.local.{}", uuid::Uuid::new_v4().simple());
    println!("WhatsApp {phone_number_id} → {to}: {}  ({wamid})", shown.replace('\n', "\n    "));
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": wamid }],
    }))
    .into_response()
}

async fn sms_send(
    State(credentials): State<Arc<Credentials>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(params) = parse_form(&body) else {
        let error = json!({ "code": 20001, "message": "Invalid form body", "status": 400 });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.twilio_account_sid, credentials.twilio_auth_token))
    );
    if account_sid != credentials.twilio_account_sid
        || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
    {
        let error = json!({ "code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401 });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (from, to, body, callback) = (get("From"), get("To"), get("Body"), get("StatusCallback"));
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    let media: Vec<&str> = params.iter().filter(|(k, _)| k == "MediaUrl").map(|(_, v)| v.as_str()).collect();
    let media = if media.is_empty() { String::new() } else { format!("\n    [media {}]", media.join(" ")) };
    println!("SMS {from} → {to}: {}{media}  ({sid})", body.replace('\n', "\n    "));
    if !callback.is_empty() {
        tokio::spawn(report_delivery(credentials, callback, sid.clone(), from.clone(), to.clone()));
    }
    let resource = json!({
        "sid": sid, "account_sid": account_sid, "from": from, "to": to, "body": body,
        "status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
    });
    (StatusCode::CREATED, Json(resource)).into_response()
}

/// `sent`, then `delivered`, signed over the callback URL as Twilio signs it.
async fn report_delivery(credentials: Arc<Credentials>, callback: String, sid: String, from: String, to: String) {
    let client = reqwest::Client::new();
    for status in ["sent", "delivered"] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let params = [
            ("MessageSid", sid.as_str()),
            ("SmsSid", sid.as_str()),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("AccountSid", credentials.twilio_account_sid.as_str()),
            ("From", from.as_str()),
            ("To", to.as_str()),
            ("ApiVersion", "2010-04-01"),
        ];
        let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let signature = compute_signature(&credentials.twilio_auth_token, &callback, &owned);
        let result = client
            .post(&callback)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(encode_form(&params))
            .send()
            .await;
        if let Err(e) = result {
            eprintln!("status callback to {callback} failed: {e}");
            return;
        }
    }
}
