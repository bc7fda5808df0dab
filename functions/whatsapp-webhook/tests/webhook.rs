//! `GET|POST /whatsapp` handler tests through the deployed router, signed like Meta signs.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use axum::Router;
use http_body_util::BodyExt;
use lambda_http::Body;
use secrecy::SecretString;
use shared::adapters::whatsapp::signature::compute_signature;
use shared::config::WhatsAppWebhookConfig;
use shared::testing::{META_APP_SECRET, META_VERIFY_TOKEN};
use tower::ServiceExt;
use whatsapp_webhook::{MAX_BODY_BYTES, WhatsAppWebhook, router};

const TEXT_MESSAGE: &str = include_str!("../../../tests/fixtures/meta/agent_text_message.json");
const DELIVERED: &str = include_str!("../../../tests/fixtures/meta/delivered_status.json");
const UNKNOWN_TYPE: &str = include_str!("../../../tests/fixtures/meta/unknown_message_type.json");

fn app() -> Router {
    let config = WhatsAppWebhookConfig {
        meta_app_secret: SecretString::from(META_APP_SECRET),
        meta_verify_token: SecretString::from(META_VERIFY_TOKEN),
    };
    router(Arc::new(WhatsAppWebhook::new(config)))
}

async fn call(request: http::Request<Body>) -> (u16, String) {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(query: &str) -> http::Request<Body> {
    http::Request::builder()
        .uri(format!("/whatsapp?{query}"))
        .body(Body::Empty)
        .unwrap()
}

fn post(body: impl Into<Vec<u8>>, signature: Option<String>) -> http::Request<Body> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/whatsapp")
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        request = request.header("x-hub-signature-256", sig);
    }
    request.body(Body::from(body.into())).unwrap()
}

fn signed(body: &str) -> http::Request<Body> {
    post(body, Some(compute_signature(META_APP_SECRET, body.as_bytes())))
}

#[tokio::test]
async fn subscription_check_echoes_the_challenge_only_for_our_token() {
    let ok = format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=1158201444");
    assert_eq!(call(get(&ok)).await, (200, "1158201444".into()));
    for bad in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}x&hub.challenge=1"),
        format!("hub.mode=unsubscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=1"),
        format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}"),
        "hub.challenge=1".to_owned(),
        String::new(),
    ] {
        assert_eq!(call(get(&bad)).await.0, 403, "{bad}");
    }
}

#[tokio::test]
async fn signed_notifications_are_acknowledged() {
    for fixture in [TEXT_MESSAGE, DELIVERED, UNKNOWN_TYPE] {
        assert_eq!(call(signed(fixture)).await.0, 200);
    }
}

#[tokio::test]
async fn unsigned_forged_or_altered_notifications_are_forbidden() {
    let good = compute_signature(META_APP_SECRET, TEXT_MESSAGE.as_bytes());
    let cases = [
        ("missing", post(TEXT_MESSAGE, None)),
        (
            "other secret",
            post(
                TEXT_MESSAGE,
                Some(compute_signature("not-the-secret", TEXT_MESSAGE.as_bytes())),
            ),
        ),
        (
            "altered body",
            post(
                TEXT_MESSAGE.replace("see you then", "send me money"),
                Some(good.clone()),
            ),
        ),
        (
            "no prefix",
            post(TEXT_MESSAGE, Some(good.trim_start_matches("sha256=").to_owned())),
        ),
        ("sha1", post(TEXT_MESSAGE, Some(good.replace("sha256=", "sha1=")))),
        ("truncated", post(TEXT_MESSAGE, Some(good[..good.len() - 2].to_owned()))),
    ];
    for (name, request) in cases {
        let (status, body) = call(request).await;
        assert_eq!(status, 403, "{name}");
        assert!(!body.contains(&good[7..]), "{name}: never echo the expected signature");
    }
}

#[tokio::test]
async fn signed_but_malformed_notifications_are_bad_requests() {
    for body in [
        "",
        "not json",
        "[]",
        r#"{"object":"page","entry":[]}"#,
        r#"{"entry":[]}"#,
        "{\"object\":\"whatsapp_business_account\",\"entry\":{}}",
    ] {
        assert_eq!(call(signed(body)).await.0, 400, "{body}");
    }
    let mut invalid_utf8 = br#"{"object":"whatsapp_business_account","entry":[],"x":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\"}");
    let signature = compute_signature(META_APP_SECRET, &invalid_utf8);
    assert_eq!(call(post(invalid_utf8, Some(signature))).await.0, 400);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        call(signed(&deep)).await.0,
        400,
        "deep nesting is refused, not a stack overflow"
    );
}

#[tokio::test]
async fn oversize_bodies_are_refused_before_verification() {
    let huge = "x".repeat(MAX_BODY_BYTES + 1);
    assert_eq!(call(signed(&huge)).await.0, 413);
}
