//! A stand-in for the Graph API until the provider simulator exists: it accepts the sends
//! the worker makes, prints each on the console, and answers like the Cloud API.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const PREFIX: &str = "/_local/graph";

pub fn router(access_token: String) -> Router {
    Router::new()
        .route(
            &format!("{PREFIX}/{{version}}/{{phone_number_id}}/messages"),
            post(send),
        )
        .with_state(access_token)
}

async fn send(
    State(access_token): State<String>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {access_token}"));
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
            format!(
                "[template {}] {}",
                body["template"]["name"].as_str().unwrap_or("?"),
                params.join(" | ")
            )
        }
        other => format!("[{}]", other.unwrap_or("?")),
    };
    let wamid = format!("wamid.local.{}", uuid::Uuid::new_v4().simple());
    println!("WhatsApp {phone_number_id} → {to}: {}", shown.replace('\n', "\n    "));
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": wamid }],
    }))
    .into_response()
}
