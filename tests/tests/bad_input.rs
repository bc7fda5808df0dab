//! The bad-input suite (issue 8): every kind of bad input (docs/guarantees.md), thrown at the
//! deployed handlers: the webhooks' routers with real HTTP requests, the worker with SQS
//! records, over moto and the provider fakes. Each case checks the answer (its status, a short
//! reason, no stack trace, no secret and no expected signature echoed) and what changed: for
//! most, nothing at all in the table, the queue, the dead-letter queue or at the providers.
//!
//! One table holds the cases that stand alone; the tests after it need a sequence (replays,
//! callbacks out of order, a stranger writing again).

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use bridge_testkit::testing::{
    AGENTS, Item, META_ACCESS_TOKEN, META_APP_SECRET, META_VERIFY_TOKEN, PHONE_NUMBER_ID, PUBLIC_BASE_URL,
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, attr_s, message_sid, record_agent_reply, signed_meta_notification,
    signed_status_callback, signed_twilio_form, twilio_inbound_params, whatsapp_text,
};
use common::{Bridge, key};
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use lambda_http::Body;
use serde_json::{Value, json};
use shared::adapters::twilio::{compute_signature as twilio_signature, encode_form, parse_form};
use shared::adapters::whatsapp::signature::compute_signature as meta_signature;
use shared::domain::compliance::AutoReplyReason;
use shared::domain::media::{MediaSource, MediaUrlKey};
use shared::domain::{DeliveryStatus, Job};
use tower::ServiceExt;

const FORM: &str = "application/x-www-form-urlencoded";
const INBOUND: &str = "/sms/inbound";
const STATUS: &str = "/sms/status";
/// An SMS the bridge never sent.
const UNKNOWN_SID: &str = "SM99999999999999999999999999999999";
/// The reason every refused signature gives, whatever was wrong with it.
const MISMATCH: &str = "does not match";

/// Open, with copies at both agents.
const OPEN_CUSTOMER: &str = "+14155550134";
/// Closed by an agent.
const CLOSED_CUSTOMER: &str = "+14155550155";
/// Erased by an operator after it texted; its jobs were still queued.
const ERASED_CUSTOMER: &str = "+14155550177";
/// Texts only in bad requests: a conversation for it means one got through.
const NEW_CUSTOMER: &str = "+14155550188";
const STRANGER: &str = "14155550999";

// ---- requests ------------------------------------------------------------------------------

/// One HTTP request, kept as parts so the check can compute the signatures it must not echo.
#[derive(Clone)]
struct Call {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Call {
    fn post(uri: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST",
            uri: uri.into(),
            headers: vec![("content-type", content_type.into())],
            body: body.into(),
        }
    }

    fn get(uri: &str) -> Self {
        Self { method: "GET", uri: uri.into(), headers: vec![], body: vec![] }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    fn request(&self) -> http::Request<Body> {
        let mut request = http::Request::builder().method(self.method).uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request.body(Body::from(self.body.clone())).unwrap()
    }
}

/// Twilio posting `params` to `path_and_query`, signed as Twilio signs.
fn twilio(path_and_query: &str, params: &[(&str, &str)]) -> Call {
    let (body, signature) = signed_twilio_form(path_and_query, params);
    Call::post(path_and_query, FORM, body).header("x-twilio-signature", signature)
}

/// Meta posting `body`, signed as Meta signs.
fn meta(body: impl Into<Vec<u8>>) -> Call {
    let body = body.into();
    let signature = meta_signature(META_APP_SECRET, &body);
    Call::post("/whatsapp", "application/json", body).header("x-hub-signature-256", signature)
}

/// A Meta notification whose one change carries `value`.
fn notification(value: Value) -> String {
    let change = json!({ "field": "messages", "value": value });
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398", "changes": [change] }] })
        .to_string()
}

/// `value` as Meta sends it for the test line's number.
fn on_the_line(mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({ "display_phone_number": "14155550100", "phone_number_id": PHONE_NUMBER_ID });
    value
}

/// `from`'s message of `kind`, with `content` under that kind's key.
fn message(from: &str, kind: &str, content: Value) -> Value {
    let mut message = json!({
        "from": from,
        "id": format!("wamid.bad.{}", fastrand::u64(..)),
        "timestamp": "1764072000",
        "type": kind,
    });
    message[kind] = content;
    message
}

fn button(from: &str, id: &str) -> Value {
    message(from, "interactive", json!({ "type": "button_reply", "button_reply": { "id": id, "title": "?" } }))
}

/// A signed notification carrying `message` for the test line.
fn meta_message(message: Value) -> Call {
    let (body, _) = signed_meta_notification(&[message], &[]);
    meta(body)
}

/// A signed delivery report on `wamid`.
fn meta_status(wamid: &str, status: &str) -> Call {
    let status = json!({ "id": wamid, "status": status, "timestamp": "1764072000", "recipient_id": AGENTS[0] });
    let (body, _) = signed_meta_notification(&[], &[status]);
    meta(body)
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.body = Some(body.into());
    record
}

fn without_body(id: &str) -> SqsMessage {
    let mut record = record(id, "");
    record.body = None;
    record
}

fn job_record(id: &str, job: &Job) -> SqsMessage {
    let mut record = record(id, &job.encode());
    record.attributes.insert("MessageGroupId".into(), job.order_group());
    record
}

// ---- the table -----------------------------------------------------------------------------

enum Input {
    Http(Call),
    Sqs(SqsMessage),
}

enum Answer {
    /// The HTTP status, and a few words the reason must contain ("" for any).
    Status(u16, &'static str),
    /// The worker lists no batch item failure: the record is done with, not retried forever.
    Acknowledged,
}

enum Effect {
    /// Nothing stored, queued, dead-lettered or requested from a provider.
    Unchanged,
    /// Recorded once (the dedupe marker, the sender's window), no conversation touched; once
    /// the worker has run, no SMS went out and WhatsApp answered only the sender: one message
    /// per entry of `told`, each containing it.
    AnsweredSenderOnly { sender: &'static str, told: &'static [&'static str] },
    /// The record is parked in the dead-letter queue; nothing else changed.
    DeadLettered,
}

struct Case {
    name: &'static str,
    input: Input,
    answer: Answer,
    effect: Effect,
}

fn http(name: &'static str, call: Call, status: u16, reason: &'static str, effect: Effect) -> Case {
    Case { name, input: Input::Http(call), answer: Answer::Status(status, reason), effect }
}

/// A request refused, or acknowledged and ignored: either way nothing changes.
fn no_effect(name: &'static str, call: Call, status: u16, reason: &'static str) -> Case {
    http(name, call, status, reason, Effect::Unchanged)
}

fn worker(name: &'static str, record: SqsMessage, effect: Effect) -> Case {
    Case { name, input: Input::Sqs(record), answer: Answer::Acknowledged, effect }
}

/// What the table's cases act on: an open, a closed and an erased conversation.
struct World {
    open_handle: String,
    closed_handle: String,
    erased_handle: String,
    /// Agent 0's copy of the open conversation's text.
    open_copy: String,
    /// Jobs of the erased conversation that were still queued when it was erased.
    erased_forward: Job,
    erased_reply: Job,
    erased_auto_reply: Job,
}

impl World {
    async fn set_up(bridge: &Bridge) -> Self {
        bridge.sms_from(OPEN_CUSTOMER, &message_sid(), "Hi from the open one").await;
        bridge.sms_from(CLOSED_CUSTOMER, &message_sid(), "Hi from the closed one").await;
        bridge.run_worker().await;
        let open_handle = bridge.conversation(OPEN_CUSTOMER).await.handle.as_str().to_owned();
        let closed_handle = bridge.conversation(CLOSED_CUSTOMER).await.handle.as_str().to_owned();
        bridge.agent_writes(whatsapp_text(AGENTS[1], &format!("/close #{closed_handle}"), None)).await;
        bridge.run_worker().await;
        assert!(!bridge.conversation(CLOSED_CUSTOMER).await.open);
        let open_copy = bridge.copy_for(AGENTS[0], "Hi from the open one").await;

        bridge.sms_from(ERASED_CUSTOMER, &message_sid(), "Please forget me").await;
        let erased_handle = bridge.conversation(ERASED_CUSTOMER).await.handle.as_str().to_owned();
        let erased_forward = bridge.aws.take_jobs().await.remove(0);
        let erased_reply = record_agent_reply(&bridge.aws, ERASED_CUSTOMER, "Done").await;
        let erased_auto_reply =
            Job::auto_reply(key(ERASED_CUSTOMER), AutoReplyReason::FirstContact, "Thanks".into(), "first");
        erase(bridge, ERASED_CUSTOMER).await;
        Self { open_handle, closed_handle, erased_handle, open_copy, erased_forward, erased_reply, erased_auto_reply }
    }
}

/// What an operator does today to erase a conversation (there is no erase command): delete
/// every item that names the customer (`CONV#`, `HANDLE#`, `SEEN#` with their jobs, `SMS#`...).
async fn erase(bridge: &Bridge, customer: &str) {
    for item in bridge.aws.items().await {
        if format!("{item:?}").contains(&customer[1..]) {
            bridge
                .aws
                .dynamodb
                .delete_item()
                .table_name(&bridge.aws.table)
                .key("PK", item["PK"].clone())
                .key("SK", item["SK"].clone())
                .send()
                .await
                .unwrap();
        }
    }
    assert!(!format!("{:?}", bridge.aws.items().await).contains(&customer[1..]));
}

fn cases(world: &World) -> Vec<Case> {
    let sid = message_sid();
    let genuine = twilio_inbound_params(&sid, NEW_CUSTOMER, "hello");
    let with = |name: &str, value: &'static str| -> Vec<(&str, &str)> {
        genuine.iter().map(|&(k, v)| if k == name { (k, value) } else { (k, v) }).collect()
    };
    let without = |name: &str| -> Vec<(&str, &str)> { genuine.iter().copied().filter(|(k, _)| *k != name).collect() };
    let signed = twilio(INBOUND, &genuine);
    let twilio_signed = |signature: &str| signed.clone().header("x-twilio-signature", signature);
    let genuine_signature = signed.headers.iter().find(|(n, _)| *n == "x-twilio-signature").unwrap().1.clone();
    // A valid signature of the genuine parameters, on other parameters.
    let altered = |params: &[(&str, &str)]| {
        Call::post(INBOUND, FORM, encode_form(params)).header("x-twilio-signature", genuine_signature.clone())
    };
    let mut with_extra = genuine.clone();
    with_extra.push(("Body", "and send money"));
    let owned: Vec<(String, String)> = genuine.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let signed_over = |url: &str| twilio_signature(TWILIO_AUTH_TOKEN, url, &owned);
    let ten_thousand_params = vec!["a=1"; 10_000].join("&");

    let status_params = |status: &'static str| {
        vec![("MessageSid", UNKNOWN_SID), ("MessageStatus", status), ("AccountSid", TWILIO_ACCOUNT_SID)]
    };
    let signed_callback = signed_status_callback(STATUS, UNKNOWN_SID, "delivered", None, OPEN_CUSTOMER);
    let status_call =
        Call::post(STATUS, FORM, signed_callback.0.clone()).header("x-twilio-signature", signed_callback.1);

    let agent_text = signed_meta_notification(&[whatsapp_text(AGENTS[0], "hello", None)], &[]).0;
    let good_meta_signature = meta_signature(META_APP_SECRET, agent_text.as_bytes());
    let unsigned = || Call::post("/whatsapp", "application/json", agent_text.clone());
    let unknown_status = meta_status("wamid.never-sent", "delivered");
    let mut invalid_utf8_json = br#"{"object":"whatsapp_business_account","entry":[],"x":""#.to_vec();
    invalid_utf8_json.extend_from_slice(b"\xff\xfe\"}");
    let huge_entry = format!(r#"{{"object":"whatsapp_business_account","entry":[{}]}}"#, vec!["{}"; 100_000].join(","));
    let huge_changes = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{}]}}]}}"#,
        vec![r#"{"value":{}}"#; 50_000].join(",")
    );
    let huge_ignored = notification(on_the_line(json!({ "statuses": [], "x": vec![1; 100_000] })));
    let deep_in_ignored =
        format!(r#"{{"object":"whatsapp_business_account","entry":[],"x":{}}}"#, nested_arrays(10_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let mut deep_in_message = message(AGENTS[0], "text", json!({ "body": "hi" }));
    deep_in_message["extra"] = json!("DEEP");
    let deep_in_message =
        signed_meta_notification(&[deep_in_message], &[]).0.replace(r#""DEEP""#, &nested_arrays(10_000));

    let media_key = MediaUrlKey::derive(&TWILIO_AUTH_TOKEN.to_owned().into());
    let in_an_hour = Timestamp::now() + SignedDuration::from_hours(1);
    let media_url = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1";
    let link = local(&media_key.sign(PUBLIC_BASE_URL, MediaSource::Sms, media_url, in_an_hour));
    let (link_path, link_query) = link.split_once('?').unwrap();
    let link_sig = link_query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap().to_owned();
    let link_exp = link_query.split('&').find_map(|p| p.strip_prefix("exp=")).unwrap().to_owned();
    let flipped_sig = format!("{}{}", if link_sig.starts_with('0') { "1" } else { "0" }, &link_sig[1..]);
    let other_reference =
        local(&media_key.sign(PUBLIC_BASE_URL, MediaSource::Sms, "https://api.twilio.com/other", in_an_hour));
    let other_reference_path = other_reference.split_once('?').unwrap().0;
    let expired = local(&media_key.sign(
        PUBLIC_BASE_URL,
        MediaSource::Sms,
        media_url,
        Timestamp::now() - SignedDuration::from_mins(1),
    ));
    let other_key = local(&MediaUrlKey::derive(&"another-token".to_owned().into()).sign(
        PUBLIC_BASE_URL,
        MediaSource::Sms,
        media_url,
        in_an_hour,
    ));
    let verify = |query: &str| Call::get(&format!("/whatsapp?{query}"));
    let token = META_VERIFY_TOKEN;

    let unknown_job = json!({
        "job_id": "01a2123e-cba6-756b-9183-530bf8f7743a.0", "attempt": 0, "kind": "launch_rockets", "payload": {}
    });
    let unconfigured_line = json!({
        "job_id": "01a2123e-cba6-756b-9183-530bf8f7743a.1", "attempt": 0, "kind": "forward_to_agent",
        "payload": { "conversation": { "line": "gone", "customer": OPEN_CUSTOMER },
                     "message_id": "01a2123e-cba6-756b-9183-530bf8f7743a", "agent": AGENTS[0], "text": "hi",
                     "received_at": "2026-11-25T10:00:00Z" }
    });
    let agent_told = |told| Effect::AnsweredSenderOnly { sender: AGENTS[0], told };
    const UNKNOWN_BUTTON: &[&str] = &["That button isn't one the bridge knows, so nothing was done."];
    const GONE: &[&str] = &["no longer exists, so nothing was sent."];
    let (open, closed, erased) = (&world.open_handle, &world.closed_handle, &world.erased_handle);

    vec![
        // ---- POST /sms/inbound: signature and account (docs/using.md) --------------------------
        no_effect("sms: forged signature", twilio_signed("bm90IGEgc2lnbmF0dXJl"), 403, MISMATCH),
        no_effect(
            "sms: missing signature",
            signed.clone().without("x-twilio-signature"),
            403,
            "missing X-Twilio-Signature",
        ),
        no_effect("sms: empty signature", twilio_signed(""), 403, MISMATCH),
        no_effect("sms: signature not base64", twilio_signed("%%%"), 403, MISMATCH),
        no_effect("sms: Body changed after signing", altered(&with("Body", "send money")), 403, MISMATCH),
        no_effect("sms: To changed after signing", altered(&with("To", "+14155550999")), 403, MISMATCH),
        no_effect("sms: From changed after signing", altered(&with("From", "+14155550111")), 403, MISMATCH),
        no_effect("sms: a parameter added after signing", altered(&with_extra), 403, MISMATCH),
        no_effect("sms: a parameter removed after signing", altered(&without("ToZip")), 403, MISMATCH),
        no_effect(
            "sms: signed over the Host header's URL",
            signed
                .clone()
                .header("host", "evil.example")
                .header("x-twilio-signature", signed_over("https://evil.example/sms/inbound")),
            403,
            MISMATCH,
        ),
        no_effect(
            "sms: signed over an absolute URI's host",
            Call { uri: "https://evil.example/sms/inbound".into(), ..signed.clone() }
                .header("x-twilio-signature", signed_over("https://evil.example/sms/inbound")),
            403,
            MISMATCH,
        ),
        no_effect(
            "sms: signed over http instead of https",
            twilio_signed(&signed_over(&format!("{PUBLIC_BASE_URL}{INBOUND}").replace("https:", "http:"))),
            403,
            MISMATCH,
        ),
        no_effect(
            "sms: signed for the status path",
            twilio_signed(&signed_over(&format!("{PUBLIC_BASE_URL}{STATUS}"))),
            403,
            MISMATCH,
        ),
        no_effect(
            "sms: another account's AccountSid",
            twilio(INBOUND, &with("AccountSid", "AC11111111111111111111111111111111")),
            403,
            "AccountSid",
        ),
        no_effect("sms: no AccountSid", twilio(INBOUND, &without("AccountSid")), 403, "AccountSid"),
        // ---- POST /sms/inbound: the body ----------------------------------------------------
        no_effect(
            "sms: over 64 KiB",
            Call::post(INBOUND, FORM, "a".repeat(64 * 1024 + 1))
                .header("x-twilio-signature", genuine_signature.clone()),
            413,
            "larger than",
        ),
        no_effect("sms: JSON", signed.clone().header("content-type", "application/json"), 415, "Content-Type"),
        no_effect("sms: text/plain", signed.clone().header("content-type", "text/plain"), 415, "Content-Type"),
        no_effect(
            "sms: multipart",
            signed.clone().header("content-type", "multipart/form-data; boundary=x"),
            415,
            "Content-Type",
        ),
        no_effect("sms: no content type", signed.clone().without("content-type"), 415, "Content-Type"),
        no_effect(
            "sms: percent-encoded invalid UTF-8",
            Call { body: b"From=%2B14155550188&Body=%FF%FE".to_vec(), ..signed.clone() },
            400,
            "UTF-8",
        ),
        no_effect(
            "sms: raw invalid UTF-8",
            Call { body: b"From=%2B14155550188&Body=\xff".to_vec(), ..signed.clone() },
            400,
            "UTF-8",
        ),
        no_effect(
            "sms: invalid percent-encoding",
            Call { body: b"From=%2B14155550188&Body=100%ZZ".to_vec(), ..signed.clone() },
            400,
            "percent-encoding",
        ),
        no_effect(
            "sms: truncated percent-encoding",
            Call { body: b"From=%2B14155550188&Body=%4".to_vec(), ..signed.clone() },
            400,
            "percent-encoding",
        ),
        no_effect(
            "sms: empty body, unsigned",
            Call { body: vec![], ..signed.clone() }.without("x-twilio-signature"),
            403,
            "missing X-Twilio-Signature",
        ),
        // The account is checked first: without AccountSid an empty form is another account's.
        no_effect("sms: empty body, signed", twilio(INBOUND, &[]), 403, "AccountSid"),
        no_effect(
            "sms: nothing but AccountSid, signed",
            twilio(INBOUND, &[("AccountSid", TWILIO_ACCOUNT_SID)]),
            400,
            "missing parameter MessageSid",
        ),
        no_effect(
            "sms: 10,000 parameters",
            Call { body: ten_thousand_params.into_bytes(), ..signed.clone() },
            400,
            "too many parameters",
        ),
        // ---- POST /sms/inbound: the parameters (docs/using.md) ----------------------------------
        no_effect("sms: no From", twilio(INBOUND, &without("From")), 400, "missing parameter From"),
        no_effect("sms: no To", twilio(INBOUND, &without("To")), 400, "missing parameter To"),
        no_effect("sms: no MessageSid", twilio(INBOUND, &without("MessageSid")), 400, "missing parameter MessageSid"),
        no_effect("sms: empty From", twilio(INBOUND, &with("From", "")), 400, "missing parameter From"),
        no_effect("sms: From is a word", twilio(INBOUND, &with("From", "hello")), 400, "parameter From"),
        no_effect("sms: From without +", twilio(INBOUND, &with("From", "14155550188")), 400, "parameter From"),
        no_effect("sms: From with spaces", twilio(INBOUND, &with("From", "+1 415 555 0188")), 400, "parameter From"),
        no_effect("sms: From is a short code", twilio(INBOUND, &with("From", "12345")), 400, "parameter From"),
        no_effect("sms: To is not E.164", twilio(INBOUND, &with("To", "4155550100")), 400, "parameter To"),
        no_effect(
            "sms: MessageSid with a key separator",
            twilio(INBOUND, &with("MessageSid", "SM#1")),
            400,
            "parameter MessageSid",
        ),
        no_effect("sms: NumMedia over 10", twilio(INBOUND, &with("NumMedia", "11")), 400, "parameter NumMedia"),
        no_effect("sms: NumMedia is a word", twilio(INBOUND, &with("NumMedia", "many")), 400, "parameter NumMedia"),
        no_effect("sms: a To no line owns", twilio(INBOUND, &with("To", "+14155550999")), 404, "no line is configured"),
        no_effect("sms: GET", Call::get(INBOUND), 405, ""),
        // ---- POST /sms/status (docs/using.md) -----------------------------------------------------
        no_effect(
            "status: forged signature",
            status_call.clone().header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl"),
            403,
            MISMATCH,
        ),
        no_effect(
            "status: missing signature",
            status_call.clone().without("x-twilio-signature"),
            403,
            "missing X-Twilio-Signature",
        ),
        no_effect(
            "status: signed for another leg",
            Call { uri: format!("{STATUS}?job=01a2123e-cba6-756b-9183-530bf8f7743a.0"), ..status_call.clone() },
            403,
            MISMATCH,
        ),
        no_effect(
            "status: MessageStatus changed after signing",
            Call { body: signed_callback.0.replace("delivered", "failed").into_bytes(), ..status_call.clone() },
            403,
            MISMATCH,
        ),
        no_effect(
            "status: no MessageStatus",
            twilio(STATUS, &[("MessageSid", UNKNOWN_SID), ("AccountSid", TWILIO_ACCOUNT_SID)]),
            400,
            "missing parameter MessageStatus",
        ),
        no_effect(
            "status: no MessageSid",
            twilio(STATUS, &status_params("delivered")[1..]),
            400,
            "missing parameter MessageSid",
        ),
        no_effect(
            "status: ErrorCode is a word",
            twilio(STATUS, &[status_params("failed"), vec![("ErrorCode", "oops")]].concat()),
            200,
            "",
        ),
        no_effect(
            "status: another account's AccountSid",
            twilio(
                STATUS,
                &[
                    ("MessageSid", "SM1"),
                    ("MessageStatus", "sent"),
                    ("AccountSid", "AC11111111111111111111111111111111"),
                ],
            ),
            403,
            "AccountSid",
        ),
        no_effect(
            "status: over 64 KiB",
            Call { body: vec![b'a'; 64 * 1024 + 1], ..status_call.clone() },
            413,
            "larger than",
        ),
        no_effect("status: an SMS the bridge never sent", status_call.clone(), 200, ""),
        no_effect(
            "status: a job id that isn't one",
            twilio(&format!("{STATUS}?job=..%2F..%2Fetc"), &status_params("delivered")),
            200,
            "",
        ),
        no_effect("status: a status that isn't one", twilio(STATUS, &status_params("exploded")), 200, ""),
        // ---- POST /whatsapp: signature (docs/using.md) ------------------------------------------
        no_effect("whatsapp: missing signature", unsigned(), 403, "missing X-Hub-Signature-256"),
        no_effect(
            "whatsapp: forged signature",
            unsigned().header("x-hub-signature-256", meta_signature("not-the-secret", agent_text.as_bytes())),
            403,
            MISMATCH,
        ),
        no_effect(
            "whatsapp: valid signature over another body",
            Call { body: agent_text.replace("hello", "send money").into_bytes(), ..meta(agent_text.clone()) },
            403,
            MISMATCH,
        ),
        no_effect(
            "whatsapp: sha256= with bad hex",
            unsigned().header("x-hub-signature-256", format!("sha256={}", "zz".repeat(32))),
            403,
            MISMATCH,
        ),
        no_effect("whatsapp: sha256= and nothing", unsigned().header("x-hub-signature-256", "sha256="), 403, MISMATCH),
        no_effect(
            "whatsapp: sha1= prefix",
            unsigned().header("x-hub-signature-256", good_meta_signature.replace("sha256=", "sha1=")),
            403,
            MISMATCH,
        ),
        no_effect(
            "whatsapp: no prefix",
            unsigned().header("x-hub-signature-256", &good_meta_signature[7..]),
            403,
            MISMATCH,
        ),
        no_effect(
            "whatsapp: truncated signature",
            unsigned().header("x-hub-signature-256", &good_meta_signature[..good_meta_signature.len() - 2]),
            403,
            MISMATCH,
        ),
        // ---- POST /whatsapp: the body -------------------------------------------------------
        no_effect("whatsapp: over 1 MiB, signed", meta(vec![b' '; 1024 * 1024 + 1]), 413, "larger than"),
        no_effect(
            "whatsapp: over 1 MiB, unsigned",
            Call::post("/whatsapp", "application/json", vec![b' '; 1024 * 1024 + 1]),
            413,
            "larger than",
        ),
        // The signature is the gate, not the content type: Meta's signed body is read as JSON.
        no_effect("whatsapp: text/plain, signed", unknown_status.clone().header("content-type", "text/plain"), 200, ""),
        no_effect("whatsapp: form content type, signed", unknown_status.clone().header("content-type", FORM), 200, ""),
        no_effect(
            "whatsapp: text/plain, unsigned",
            unsigned().header("content-type", "text/plain"),
            403,
            "missing X-Hub-Signature-256",
        ),
        no_effect("whatsapp: empty body, signed", meta(""), 400, "not a WhatsApp Business notification"),
        no_effect(
            "whatsapp: empty body, unsigned",
            Call::post("/whatsapp", "application/json", ""),
            403,
            "missing X-Hub-Signature-256",
        ),
        no_effect("whatsapp: invalid UTF-8 in a JSON string", meta(invalid_utf8_json), 400, "UTF-8"),
        no_effect("whatsapp: binary garbage", meta(b"\xff\xfe{".to_vec()), 400, "UTF-8"),
        no_effect("whatsapp: not JSON", meta("object=whatsapp_business_account"), 400, "expected value"),
        no_effect("whatsapp: 10,000 nested arrays", meta(nested_arrays(10_000)), 400, "invalid type"),
        // serde_json skips an unknown field's value without recursing, and stops at 128 levels
        // where it builds one (a message's extra fields): deep nesting never overflows the stack.
        no_effect("whatsapp: 10,000 nested objects", meta(deep_objects), 400, "missing field `object`"),
        no_effect("whatsapp: 10,000 nested arrays in an unknown field", meta(deep_in_ignored), 200, ""),
        // One message nested too deep to read is skipped (and counted); the notification is
        // acknowledged, so the rest of it would be handled.
        no_effect("whatsapp: 10,000 nested arrays in a message", meta(deep_in_message), 200, ""),
        no_effect("whatsapp: 100,000 empty entries", meta(huge_entry), 200, ""),
        no_effect("whatsapp: 50,000 empty changes", meta(huge_changes), 200, ""),
        no_effect("whatsapp: 100,000 numbers in an unknown field", meta(huge_ignored), 200, ""),
        no_effect("whatsapp: another object", meta(r#"{"object":"page","entry":[]}"#), 400, "unexpected object"),
        no_effect(
            "whatsapp: entry is not a list",
            meta(r#"{"object":"whatsapp_business_account","entry":{}}"#),
            400,
            "invalid type",
        ),
        no_effect("whatsapp: object is a number", meta(r#"{"object":5,"entry":[]}"#), 400, "invalid type"),
        no_effect(
            "whatsapp: from is a number",
            meta(notification(on_the_line(
                json!({ "messages": [{ "from": 14155550111_u64, "id": "wamid.n1", "type": "text", "text": { "body": "hi" } }] }),
            ))),
            200,
            "",
        ),
        no_effect(
            "whatsapp: message id is a number",
            meta(notification(on_the_line(
                json!({ "messages": [{ "from": AGENTS[0], "id": 1, "type": "text", "text": { "body": "hi" } }] }),
            ))),
            200,
            "",
        ),
        no_effect(
            "whatsapp: text body is a number",
            meta_message(message(AGENTS[0], "text", json!({ "body": 5 }))),
            200,
            "",
        ),
        no_effect(
            "whatsapp: status id is a number",
            meta(notification(on_the_line(json!({ "statuses": [{ "id": 7, "status": "read" }] })))),
            200,
            "",
        ),
        no_effect(
            "whatsapp: from with a +",
            meta_message(json!({ "from": "+14155550111", "id": "wamid.p1", "type": "text", "text": { "body": "hi" } })),
            200,
            "",
        ),
        no_effect(
            "whatsapp: wamid of 300 characters",
            meta_message(json!({ "from": AGENTS[0], "id": "w".repeat(300), "type": "text", "text": { "body": "hi" } })),
            200,
            "",
        ),
        no_effect(
            "whatsapp: message without a type",
            meta_message(json!({ "from": AGENTS[0], "id": "wamid.t1", "text": { "body": "hi" } })),
            200,
            "",
        ),
        no_effect(
            "whatsapp: unknown fields everywhere",
            meta(notification(on_the_line(
                json!({ "surprise": { "a": [1, 2] }, "statuses": [{ "id": "wamid.never-sent", "status": "read", "new_field": true }] }),
            ))),
            200,
            "",
        ),
        no_effect(
            "whatsapp: an unknown phone_number_id",
            meta(
                signed_meta_notification(&[whatsapp_text(AGENTS[0], &format!("#{open} hi"), None)], &[])
                    .0
                    .replace(PHONE_NUMBER_ID, "999999999999999"),
            ),
            200,
            "",
        ),
        no_effect(
            "whatsapp: no metadata",
            meta(notification(json!({ "messages": [whatsapp_text(AGENTS[0], &format!("#{open} hi"), None)] }))),
            200,
            "",
        ),
        no_effect("whatsapp: a status for a message never sent", unknown_status, 200, ""),
        no_effect(
            "whatsapp: a status that isn't one, on a real copy",
            meta_status(&world.open_copy, "exploded"),
            200,
            "",
        ),
        // ---- POST /whatsapp: what agents send that can't be relayed (docs/using.md) ---------
        http(
            "whatsapp: an unknown message type",
            meta_message(message(AGENTS[0], "order", json!({ "catalog_id": "1" }))),
            200,
            "",
            agent_told(&["That message (order) can't be sent by SMS"]),
        ),
        http(
            "whatsapp: an unknown interactive type",
            meta_message(message(AGENTS[0], "interactive", json!({ "type": "nfm_reply", "nfm_reply": {} }))),
            200,
            "",
            agent_told(&["That message (interactive/nfm_reply) can't be sent by SMS"]),
        ),
        http(
            "whatsapp: a reaction",
            meta_message(message(AGENTS[0], "reaction", json!({ "message_id": world.open_copy, "emoji": "👍" }))),
            200,
            "",
            agent_told(&[]),
        ),
        http(
            "whatsapp: a sticker",
            meta_message(message(AGENTS[0], "sticker", json!({ "id": "2", "mime_type": "image/webp" }))),
            200,
            "",
            agent_told(&["A sticker can't be sent by SMS"]),
        ),
        http(
            "whatsapp: media whose id isn't one",
            meta_message(message(AGENTS[0], "image", json!({ "id": "../../secret", "mime_type": "image/jpeg" }))),
            200,
            "",
            agent_told(&["An image can't be sent by SMS"]),
        ),
        http(
            "whatsapp: a button that isn't act:*",
            meta_message(button(AGENTS[0], "weird")),
            200,
            "",
            agent_told(UNKNOWN_BUTTON),
        ),
        http(
            "whatsapp: an act: button with an unknown action",
            meta_message(button(AGENTS[0], &format!("act:fly:{open}"))),
            200,
            "",
            agent_told(UNKNOWN_BUTTON),
        ),
        http(
            "whatsapp: a button naming an unknown conversation",
            meta_message(button(AGENTS[0], "act:claim:ZZZZZZ")),
            200,
            "",
            agent_told(GONE),
        ),
        http(
            "whatsapp: a button naming a closed conversation",
            meta_message(button(AGENTS[0], &format!("act:claim:{closed}"))),
            200,
            "",
            agent_told(&["is already closed, so nothing changed."]),
        ),
        http(
            "whatsapp: a button naming an erased conversation",
            meta_message(button(AGENTS[0], &format!("act:close:{erased}"))),
            200,
            "",
            agent_told(GONE),
        ),
        http(
            "whatsapp: a list reply naming an unknown conversation",
            meta_message(message(
                AGENTS[0],
                "interactive",
                json!({ "type": "list_reply", "list_reply": { "id": "conv:ZZZZZZ", "title": "?" } }),
            )),
            200,
            "",
            agent_told(GONE),
        ),
        http(
            "whatsapp: a list reply that isn't ours",
            meta_message(message(
                AGENTS[0],
                "interactive",
                json!({ "type": "list_reply", "list_reply": { "id": "elsewhere", "title": "?" } }),
            )),
            200,
            "",
            agent_told(&[]),
        ),
        http(
            "whatsapp: /to where the line doesn't allow it",
            meta_message(whatsapp_text(AGENTS[0], "/to +14155550188 Hello stranger", None)),
            200,
            "",
            agent_told(&["doesn't allow texting customers who haven't written first"]),
        ),
        http(
            "whatsapp: a handle that was erased",
            meta_message(whatsapp_text(AGENTS[0], &format!("#{erased} are you there?"), None)),
            200,
            "",
            agent_told(&["There is no conversation #"]),
        ),
        // ---- GET /whatsapp (docs/using.md) ------------------------------------------------------
        no_effect(
            "verify: wrong token",
            verify("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"),
            403,
            "verification failed",
        ),
        no_effect(
            "verify: token with a suffix",
            verify(&format!("hub.mode=subscribe&hub.verify_token={token}x&hub.challenge=1")),
            403,
            "verification failed",
        ),
        no_effect(
            "verify: a prefix of the token",
            verify(&format!("hub.mode=subscribe&hub.verify_token={}&hub.challenge=1", &token[..4])),
            403,
            "verification failed",
        ),
        no_effect(
            "verify: wrong hub.mode",
            verify(&format!("hub.mode=unsubscribe&hub.verify_token={token}&hub.challenge=1")),
            403,
            "verification failed",
        ),
        no_effect(
            "verify: no hub.mode",
            verify(&format!("hub.verify_token={token}&hub.challenge=1")),
            403,
            "verification failed",
        ),
        no_effect(
            "verify: no challenge",
            verify(&format!("hub.mode=subscribe&hub.verify_token={token}")),
            403,
            "verification failed",
        ),
        no_effect("verify: no query", Call::get("/whatsapp"), 403, "verification failed"),
        no_effect(
            "verify: token not UTF-8",
            verify("hub.mode=subscribe&hub.verify_token=%FF&hub.challenge=1"),
            403,
            "verification failed",
        ),
        // ---- GET /media/... (docs/media.md) ------------------------------------------------
        no_effect(
            "media: signature flipped",
            Call::get(&format!("{link_path}?exp={link_exp}&sig={flipped_sig}")),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: expiry pushed back",
            Call::get(&format!("{link_path}?exp={}&sig={link_sig}", link_exp.parse::<i64>().unwrap() + 3600)),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: another reference, same signature",
            Call::get(&format!("{other_reference_path}?exp={link_exp}&sig={link_sig}")),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: the other source",
            Call::get(&format!("{}?{link_query}", link_path.replace("/media/sms/", "/media/wa/"))),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: an unknown source",
            Call::get(&format!("{}?{link_query}", link_path.replace("/media/sms/", "/media/ftp/"))),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: no signature",
            Call::get(&format!("{link_path}?exp={link_exp}")),
            403,
            "not a valid media link",
        ),
        no_effect("media: no query", Call::get(link_path), 403, "not a valid media link"),
        no_effect(
            "media: signature not hex",
            Call::get(&format!("{link_path}?exp={link_exp}&sig=zz")),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: expiry not a number",
            Call::get(&format!("{link_path}?exp=soon&sig={link_sig}")),
            403,
            "not a valid media link",
        ),
        no_effect(
            "media: reference not base64url",
            Call::get(&format!("/media/sms/%2F%2F?{link_query}")),
            403,
            "not a valid media link",
        ),
        no_effect("media: signed with another key", Call::get(&other_key), 403, "not a valid media link"),
        no_effect("media: expired", Call::get(&expired), 410, "expired"),
        no_effect("media: POST", Call::post(&link, FORM, ""), 405, ""),
        // ---- the delivery worker (docs/guarantees.md) ---------------------------------------------------
        worker("worker: an empty object", record("bad-1", "{}"), Effect::DeadLettered),
        worker("worker: not JSON", record("bad-2", "<xml/>"), Effect::DeadLettered),
        worker("worker: a JSON list", record("bad-3", "[1,2,3]"), Effect::DeadLettered),
        worker("worker: an unknown kind", record("bad-4", &unknown_job.to_string()), Effect::DeadLettered),
        worker(
            "worker: a job id that is a number",
            record("bad-5", &unknown_job.to_string().replace(r#""01a2123e-cba6-756b-9183-530bf8f7743a.0""#, "7")),
            Effect::DeadLettered,
        ),
        worker(
            "worker: a line that isn't configured",
            record("bad-6", &unconfigured_line.to_string()),
            Effect::DeadLettered,
        ),
        worker("worker: no body", without_body("bad-7"), Effect::DeadLettered),
        worker(
            "worker: a copy for an erased conversation",
            job_record("erased-1", &world.erased_forward),
            Effect::Unchanged,
        ),
        worker(
            "worker: a reply to an erased conversation",
            job_record("erased-2", &world.erased_reply),
            Effect::Unchanged,
        ),
        worker(
            "worker: an automated reply to an erased conversation",
            job_record("erased-3", &world.erased_auto_reply),
            Effect::Unchanged,
        ),
    ]
}

/// The deployment's secrets, in the forms an answer could leak them.
fn secrets() -> Vec<String> {
    [TWILIO_AUTH_TOKEN, META_APP_SECRET, META_VERIFY_TOKEN, META_ACCESS_TOKEN].iter().map(|s| s.to_string()).collect()
}

/// The signatures that would have made `call` valid: an answer must never teach them.
fn expected_signatures(call: &Call) -> Vec<String> {
    let mut expected = Vec::new();
    if let Ok(params) = parse_form(&call.body) {
        let url = format!("{PUBLIC_BASE_URL}{}", call.uri);
        expected.push(twilio_signature(TWILIO_AUTH_TOKEN, &url, &params));
    }
    let meta = meta_signature(META_APP_SECRET, &call.body);
    expected.push(meta[7..].to_owned());
    expected.push(meta);
    expected
}

/// A link of the bridge's, as the path and query the router sees.
fn local(link: &str) -> String {
    link.strip_prefix(PUBLIC_BASE_URL).unwrap().to_owned()
}

/// The answer: a status, and a short plain reason that leaks nothing.
fn check_answer(name: &str, call: &Call, (status, content_type, body): (u16, String, String), answer: &Answer) {
    let Answer::Status(expected, reason) = answer else { panic!("{name}: an HTTP case expects a status") };
    assert_eq!(status, *expected, "{name}: {body}");
    assert!(body.contains(reason), "{name}: `{body}` lacks `{reason}`");
    assert!(status < 500, "{name}: bad input is never a server error");
    if status >= 400 && status != 405 {
        assert!(content_type.starts_with("text/plain"), "{name}: {content_type}");
        assert!(!body.trim().is_empty() && body.len() < 300, "{name}: a short reason, not `{body}`");
    }
    for trace in ["panicked", "backtrace", ".rs:", "RUST_BACKTRACE"] {
        assert!(!body.contains(trace), "{name}: a stack trace in `{body}`");
    }
    for secret in secrets().into_iter().chain(expected_signatures(call)) {
        assert!(!body.contains(&secret), "{name}: the answer echoes `{secret}`");
    }
    // Meta's and the media links' signatures are 64 hex digits: no answer carries a digest.
    let longest_hex_run = body.split(|c: char| !c.is_ascii_hexdigit()).map(str::len).max().unwrap_or(0);
    assert!(longest_hex_run < 40, "{name}: a digest in `{body}`");
}

/// Everything a case could change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// By `PK` and `SK`.
    items: BTreeMap<(String, String), Item>,
    queued: usize,
    dead_letters: usize,
    graph_requests: usize,
    twilio_requests: usize,
}

impl Snapshot {
    async fn take(bridge: &Bridge) -> Self {
        let (items, queued, dead_letters, graph_requests, twilio_requests) = tokio::join!(
            bridge.aws.items(),
            bridge.aws.queue_depth(),
            bridge.aws.dlq_depth(),
            bridge.providers.graph.received_requests(),
            bridge.providers.twilio.received_requests(),
        );
        Self {
            items: items
                .into_iter()
                .map(|item| ((attr_s(&item, "PK").to_owned(), attr_s(&item, "SK").to_owned()), item))
                .collect(),
            queued,
            dead_letters,
            graph_requests: graph_requests.unwrap_or_default().len(),
            twilio_requests: twilio_requests.unwrap_or_default().len(),
        }
    }

    /// Keys of the items added, removed or changed since `before`, among those `keep` selects.
    fn changed_items(&self, before: &Self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let keys: BTreeSet<_> = before.items.keys().chain(self.items.keys()).filter(|(pk, _)| keep(pk)).collect();
        keys.into_iter()
            .filter(|key| before.items.get(*key) != self.items.get(*key))
            .map(|(pk, sk)| format!("{pk} {sk}"))
            .collect()
    }
}

/// Conversation data: what a relay, a claim or a close would write.
fn is_conversation_data(pk: &str) -> bool {
    ["CONV#", "HANDLE#", "WAMID#", "SMS#"].iter().any(|prefix| pk.starts_with(prefix))
}

async fn send(bridge: &Bridge, call: &Call) -> (u16, String, String) {
    let response = bridge.webhooks.clone().oneshot(call.request()).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8_lossy(&body).into_owned())
}

/// Runs `case` from the state `before`; returns the state after it.
async fn run(bridge: &Bridge, case: Case, before: Snapshot) -> Snapshot {
    let name = case.name;
    match &case.input {
        Input::Http(call) => check_answer(name, call, send(bridge, call).await, &case.answer),
        Input::Sqs(record) => {
            let mut event = SqsEvent::default();
            event.records = vec![record.clone()];
            let response = bridge.worker.handle_batch(event).await;
            assert!(matches!(case.answer, Answer::Acknowledged), "{name}: a worker case is acknowledged or not");
            assert!(response.batch_item_failures.is_empty(), "{name}: never retried forever");
        }
    }
    let after = match case.effect {
        Effect::Unchanged | Effect::DeadLettered => Snapshot::take(bridge).await,
        Effect::AnsweredSenderOnly { .. } => {
            bridge.run_worker().await;
            Snapshot::take(bridge).await
        }
    };
    match case.effect {
        Effect::Unchanged => {
            assert_eq!(after.changed_items(&before, |_| true), Vec::<String>::new(), "{name}: the store is unchanged");
            assert_eq!(after, before, "{name}: nothing queued, dead-lettered or requested");
        }
        Effect::DeadLettered => {
            assert_eq!(after.dead_letters, before.dead_letters + 1, "{name}: parked for an operator");
            assert_eq!(after.changed_items(&before, |_| true), Vec::<String>::new(), "{name}: the store is unchanged");
            assert_eq!(
                (after.queued, after.graph_requests, after.twilio_requests),
                (before.queued, before.graph_requests, before.twilio_requests),
                "{name}: nothing else"
            );
        }
        Effect::AnsweredSenderOnly { sender, told } => {
            assert_eq!(
                after.changed_items(&before, is_conversation_data),
                Vec::<String>::new(),
                "{name}: no conversation touched"
            );
            assert_eq!(after.twilio_requests, before.twilio_requests, "{name}: no SMS");
            assert_eq!((after.queued, after.dead_letters), (0, before.dead_letters), "{name}: every job done");
            let sent = bridge.providers.whatsapp_sent().await;
            let new = &sent[before.graph_requests..];
            assert!(new.iter().all(|m| m["to"] == sender), "{name}: only the sender hears back: {new:?}");
            let texts: Vec<String> = new.iter().map(common::readable).collect();
            assert_eq!(texts.len(), told.len(), "{name}: {texts:?}");
            for (text, expected) in texts.iter().zip(told) {
                assert!(text.contains(expected), "{name}: `{text}` lacks `{expected}`");
            }
        }
    }
    after
}

/// Every case of the table against one deployment; afterwards the genuine requests the bad
/// ones were made from still work, so no case passed for a reason of the harness's own.
#[tokio::test]
async fn every_bad_input_gets_a_clear_answer_and_changes_nothing_it_should_not() {
    let bridge = Bridge::start().await;
    let world = World::set_up(&bridge).await;
    assert_eq!(bridge.aws.queue_depth().await, 0);
    let cases = cases(&world);
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    // Each case in its own task, so one failure doesn't hide the others.
    let bridge = std::sync::Arc::new(bridge);
    let mut failures = Vec::new();
    // The state after one case is the state before the next.
    let mut state = None;
    for case in cases {
        let (name, shared) = (case.name, bridge.clone());
        let before = match state.take() {
            Some(before) => before,
            None => Snapshot::take(&bridge).await,
        };
        match tokio::spawn(async move { run(&shared, case, before).await }).await {
            Ok(after) => state = Some(after),
            Err(failed) => {
                let panic = failed.into_panic();
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                failures.push(format!("{name}: {}", message.unwrap_or_default()));
            }
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));

    let genuine = twilio(INBOUND, &twilio_inbound_params(&message_sid(), NEW_CUSTOMER, "hello"));
    assert_eq!(send(&bridge, &genuine).await.0, 200);
    let verify = format!("/whatsapp?hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=42");
    assert_eq!(send(&bridge, &Call::get(&verify)).await, (200, "text/plain".into(), "42".into()));
}

// ---- sequences -----------------------------------------------------------------------------

/// Twilio's reports arrive late, twice and backwards (docs/using.md): the status stays at the
/// furthest, a repeat changes nothing, and the agent sees one ✅.
#[tokio::test]
async fn sms_status_callbacks_out_of_order_or_repeated_never_move_back() {
    let bridge = Bridge::start().await;
    let wamid = agent_reply_sent(&bridge, "See you at 9").await;
    let sms = bridge.providers.sms_sent().await;
    let callback_path = sms[0]["StatusCallback"].strip_prefix(PUBLIC_BASE_URL).unwrap().to_owned();
    let sid = bridge.aws.items_with_prefix("SMS#").await[0]["PK"].as_s().unwrap().trim_start_matches("SMS#").to_owned();
    let report = |status: &str, code: Option<&str>| {
        let (body, signature) = signed_status_callback(&callback_path, &sid, status, code, OPEN_CUSTOMER);
        Call::post(&callback_path, FORM, body).header("x-twilio-signature", signature)
    };

    assert_eq!(send(&bridge, &report("delivered", None)).await.0, 200);
    let delivered = Snapshot::take(&bridge).await;
    for (status, code) in [("sent", None), ("queued", None), ("undelivered", Some("30006")), ("delivered", None)] {
        assert_eq!(send(&bridge, &report(status, code)).await.0, 200, "{status}");
        let after = Snapshot::take(&bridge).await;
        assert_eq!(after.changed_items(&delivered, |_| true), Vec::<String>::new(), "{status} after delivered");
        assert_eq!(after.queued, delivered.queued, "{status}: no second notice");
    }
    let thread = bridge.thread(OPEN_CUSTOMER).await;
    let reply = thread.iter().find(|m| m.body == "See you at 9").unwrap();
    assert_eq!(reply.legs[0].status, Some(DeliveryStatus::Delivered));
    bridge.run_worker().await;
    let reactions: Vec<Value> =
        bridge.sent_to(AGENTS[0]).await.into_iter().filter(|m| m["type"] == "reaction").collect();
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    assert_eq!(reactions[0]["reaction"]["message_id"], wamid.as_str());
    assert_eq!(reactions[0]["reaction"]["emoji"], "✅");
}

/// Twilio retries an inbound SMS it thinks failed: every replay answers 200, stores
/// nothing, and each agent still gets one copy.
#[tokio::test]
async fn a_replayed_inbound_sms_is_acknowledged_and_forwarded_once() {
    let bridge = Bridge::start().await;
    let sid = message_sid();
    let text = twilio(INBOUND, &twilio_inbound_params(&sid, OPEN_CUSTOMER, "Only once, please"));
    assert_eq!(send(&bridge, &text).await.0, 200);
    let first = Snapshot::take(&bridge).await;
    for _ in 0..3 {
        let (status, content_type, _) = send(&bridge, &text).await;
        assert_eq!((status, content_type.as_str()), (200, "text/xml"));
        let after = Snapshot::take(&bridge).await;
        assert_eq!(after, first, "the store and the queue are unchanged");
    }
    bridge.run_worker().await;
    for agent in AGENTS {
        assert_eq!(common::copies(&bridge.sent_to(agent).await).len(), 1, "{agent} got one copy");
    }
    // After the worker, a replay (within the dedupe marker's 7 days) still sends nothing.
    assert_eq!(send(&bridge, &text).await.0, 200);
    bridge.run_worker().await;
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), AGENTS.len());
}

/// Meta redelivers a notification: the same wamid twice has one effect, before and after
/// the worker sent the reply.
#[tokio::test]
async fn a_replayed_whatsapp_notification_relays_once() {
    let bridge = Bridge::start().await;
    bridge.sms_from(OPEN_CUSTOMER, &message_sid(), "Are you open?").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(OPEN_CUSTOMER).await.handle;
    let (body, _) =
        signed_meta_notification(&[whatsapp_text(AGENTS[0], &format!("#{} Yes!", handle.as_str()), None)], &[]);
    let reply = meta(body);
    assert_eq!(send(&bridge, &reply).await.0, 200);
    let first = Snapshot::take(&bridge).await;
    assert_eq!(send(&bridge, &reply).await.0, 200);
    assert_eq!(Snapshot::take(&bridge).await, first, "the replay changes nothing");
    bridge.run_worker().await;
    assert_eq!(send(&bridge, &reply).await.0, 200);
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(OPEN_CUSTOMER).await, ["Yes!"], "one SMS");
}

/// Someone who isn't an agent writes to the business number, however they phrase it: at
/// most one polite reply a day, and nothing reaches a customer or changes a conversation.
#[tokio::test]
async fn a_stranger_gets_one_polite_reply_a_day_and_reaches_nobody() {
    let bridge = Bridge::start().await;
    bridge.sms_from(OPEN_CUSTOMER, &message_sid(), "Hi").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(OPEN_CUSTOMER).await.handle.as_str().to_owned();
    let copy = bridge.copy_for(AGENTS[0], "Hi").await;
    let before = Snapshot::take(&bridge).await;

    let first = whatsapp_text(STRANGER, "hello?", None);
    for message in [
        first.clone(),
        whatsapp_text(STRANGER, &format!("#{handle} send this to the customer"), None),
        whatsapp_text(STRANGER, "swiping a copy I shouldn't have", Some(&copy)),
        whatsapp_text(STRANGER, "/to +14155550188 hello", None),
        whatsapp_text(STRANGER, "/close", None),
        button(STRANGER, &format!("act:claim:{handle}")),
        first,
    ] {
        assert_eq!(send(&bridge, &meta_message(message)).await.0, 200);
    }
    bridge.run_worker().await;
    let after = Snapshot::take(&bridge).await;
    assert_eq!(after.changed_items(&before, is_conversation_data), Vec::<String>::new());
    assert_eq!(after.twilio_requests, before.twilio_requests, "no SMS");
    let sent = bridge.providers.whatsapp_sent().await;
    let new = &sent[before.graph_requests..];
    assert_eq!(new.len(), 1, "one polite reply: {new:?}");
    assert_eq!(new[0]["to"], STRANGER);
    assert!(common::readable(&new[0]).contains("+1 415-555-0100"), "{:?}", new[0]);
    assert!(bridge.aws.items_with_prefix(&format!("AGENT#main#{STRANGER}")).await.is_empty(), "no agent record");
}

/// A customer texts, agent 0 answers by handle, and the worker sends the SMS; returns the
/// agent's wamid.
async fn agent_reply_sent(bridge: &Bridge, text: &str) -> String {
    bridge.sms_from(OPEN_CUSTOMER, &message_sid(), "Hello?").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(OPEN_CUSTOMER).await.handle;
    let wamid = bridge.agent_writes(whatsapp_text(AGENTS[0], &format!("#{} {text}", handle.as_str()), None)).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(OPEN_CUSTOMER).await, [text]);
    assert_eq!(bridge.aws.queue_depth().await, 0);
    wamid
}
