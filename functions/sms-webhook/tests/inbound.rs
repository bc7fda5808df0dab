//! `POST /sms/inbound` handler tests: real requests through the deployed router, DynamoDB
//! and SQS on the moto emulator, signatures computed the way Twilio computes them.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use axum::Router;
use http_body_util::BodyExt;
use lambda_http::Body;
use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore};
use shared::adapters::sqs::SqsQueue;
use std::time::Duration;

use bridge_testkit::testing::{
    AGENTS, AwsCallCounter, CUSTOMER, TestAws, attr_s, lookup, message_sid, signed_twilio_form, test_env,
    twilio_inbound_params,
};
use shared::app::deliver_job::Deadline;
use shared::app::sweep_outbox::sweep_outbox;
use shared::config::SmsWebhookConfig;
use shared::domain::{ConversationKey, E164, Handle, Job, JobPayload, LineId, WaId, Wamid};
use shared::ports::{AgentEffect, AgentMessageRecord, Agents, Conversations, RecordOutcome};
use sms_webhook::{MAX_BODY_BYTES, SmsWebhook, router};
use tower::ServiceExt;

const PATH: &str = "/sms/inbound";

fn app(aws: &TestAws, extra_env: &[(&str, &str)]) -> Router {
    app_with(aws, extra_env, aws.store(), aws.queue())
}

fn app_with(aws: &TestAws, extra_env: &[(&str, &str)], store: DynamoStore, queue: SqsQueue) -> Router {
    let env = test_env(aws, extra_env);
    let config = SmsWebhookConfig::from_lookup(&lookup(&env)).expect("test config");
    router(Arc::new(SmsWebhook::new(config, store, queue)))
}

fn post(body: impl Into<Body>, signature: Option<&str>, content_type: Option<&str>) -> http::Request<Body> {
    let mut request = http::Request::builder().method("POST").uri(PATH);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(sig) = signature {
        request = request.header("x-twilio-signature", sig);
    }
    request.body(body.into()).unwrap()
}

fn signed(params: &[(&str, &str)]) -> http::Request<Body> {
    let (body, signature) = signed_twilio_form(PATH, params);
    post(body, Some(&signature), Some("application/x-www-form-urlencoded"))
}

async fn call(app: &Router, request: http::Request<Body>) -> (u16, String, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, content_type, body)
}

async fn queued_jobs(aws: &TestAws) -> Vec<Job> {
    let out = aws.sqs.receive_message().queue_url(&aws.queue_url).max_number_of_messages(10).send().await.unwrap();
    out.messages.unwrap_or_default().iter().map(|m| Job::decode(m.body().unwrap()).unwrap()).collect()
}

#[tokio::test]
async fn a_signed_sms_is_recorded_and_one_job_per_agent_is_queued() {
    let aws = TestAws::new().await;
    let app = app(&aws, &[]);
    let sid = message_sid();
    let (status, content_type, body) =
        call(&app, signed(&twilio_inbound_params(&sid, CUSTOMER, "Is my order ready?"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/xml");
    assert_eq!(body, r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#);

    let conv = aws.items_with_prefix("CONV#main#+14155550134").await;
    let meta = conv.iter().find(|i| attr_s(i, "SK") == "META").expect("conversation");
    let handle = attr_s(meta, "handle");
    assert_eq!(aws.items_with_prefix(&format!("HANDLE#main#{handle}")).await.len(), 1);
    let message = conv.iter().find(|i| attr_s(i, "SK").starts_with("MSG#")).expect("message");
    assert_eq!(attr_s(message, "body"), "Is my order ready?");
    assert_eq!(attr_s(message, "provider_message_id"), sid);
    assert_eq!(aws.items_with_prefix(&format!("SEEN#twilio#{sid}")).await.len(), 1);

    let jobs = queued_jobs(&aws).await;
    let mut agents: Vec<String> = jobs
        .iter()
        .map(|j| {
            let JobPayload::ForwardToAgent(f) = &j.payload else { panic!("a forward job") };
            assert_eq!(f.text, "Is my order ready?");
            f.agent.as_str().to_owned()
        })
        .collect();
    agents.sort();
    assert_eq!(agents, bridge_testkit::testing::AGENTS);
}

#[tokio::test]
async fn later_texts_join_the_same_conversation() {
    let aws = TestAws::new().await;
    let app = app(&aws, &[]);
    for text in ["one", "two", "three"] {
        let (status, _, body) = call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, text))).await;
        assert_eq!(status, 200, "{body}");
    }
    let conv = aws.items_with_prefix("CONV#").await;
    assert_eq!(conv.iter().filter(|i| attr_s(i, "SK") == "META").count(), 1);
    assert_eq!(conv.iter().filter(|i| attr_s(i, "SK").starts_with("MSG#")).count(), 3);
    assert_eq!(aws.items_with_prefix("HANDLE#").await.len(), 1);
    assert_eq!(aws.queue_depth().await, 6);
}

#[tokio::test]
async fn a_replayed_message_sid_writes_nothing_and_answers_200() {
    let aws = TestAws::new().await;
    let app = app(&aws, &[]);
    let params = twilio_inbound_params("SM0123456789abcdef0123456789abcdef", CUSTOMER, "hello");
    assert_eq!(call(&app, signed(&params)).await.0, 200);
    let items = aws.items().await;
    let first_jobs = queued_jobs(&aws).await;

    let (status, content_type, _) = call(&app, signed(&params)).await;
    assert_eq!((status, content_type.as_str()), (200, "text/xml"));
    assert_eq!(aws.items().await, items, "the store is unchanged");
    // The same jobs are offered again (a first attempt may have failed before enqueueing);
    // the FIFO queue drops them as duplicates of the jobs already there, by job id.
    assert!(queued_jobs(&aws).await.is_empty());
    assert_eq!(aws.queue_depth().await, first_jobs.len(), "still one message per job");
}

#[tokio::test]
async fn when_the_queue_fails_the_text_is_recorded_answered_200_and_swept_onto_the_queue() {
    let aws = TestAws::new().await;
    let broken_queue = SqsQueue::new(aws.sqs.clone(), format!("{}-missing", aws.queue_url));
    let failing = app_with(&aws, &[], aws.store(), broken_queue);
    let params = twilio_inbound_params("SMffffffffffffffffffffffffffffffff", CUSTOMER, "hello");
    let started = std::time::Instant::now();
    let (status, _, body) = call(&failing, signed(&params)).await;
    // Twilio doesn't send it again on its own: the text is recorded with its jobs in the
    // outbox, so 200 is the truth, after the webhook kept trying the queue for its budget.
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1900), "tried again for its budget (2 s here)");
    assert_eq!(aws.queue_depth().await, 0);
    let items = aws.items().await;
    assert_eq!(items.len(), 5, "conversation, handle, dedupe marker, message and outbox entry, together");
    assert_eq!(aws.items_with_prefix("OUTBOX#").await.len(), 1);

    // A replay (Twilio's retry, where its connection overrides ask for one) re-offers them.
    let (status, _, _) = call(&app(&aws, &[]), signed(&params)).await;
    assert_eq!(status, 200);
    assert_eq!(aws.items().await, items);
    assert_eq!(aws.queue_depth().await, 2);
    // The sweep offers them again: SQS drops what it already has (same job ids, five minutes).
    let swept =
        sweep_outbox(&aws.store(), &aws.queue(), jiff::Timestamp::now(), Duration::ZERO, Deadline::NONE).await.unwrap();
    assert_eq!((swept.entries, swept.jobs), (1, 2));
    assert_eq!(aws.queue_depth().await, 2, "no job twice on the queue");
    assert!(aws.items_with_prefix("OUTBOX#").await.is_empty(), "the entry is cleared");
}

#[tokio::test]
async fn when_the_queue_fails_and_nobody_replays_the_outbox_sweep_enqueues_the_jobs() {
    let aws = TestAws::new().await;
    let broken_queue = SqsQueue::new(aws.sqs.clone(), format!("{}-missing", aws.queue_url));
    let failing = app_with(&aws, &[], aws.store(), broken_queue);
    let sid = message_sid();
    let params = twilio_inbound_params(&sid, CUSTOMER, "hello");
    assert_eq!(call(&failing, signed(&params)).await.0, 200);
    // Not yet: the sweep waits for an entry's grace.
    let grace = Duration::from_secs(60);
    let now = jiff::Timestamp::now();
    let early = sweep_outbox(&aws.store(), &aws.queue(), now, grace, Deadline::NONE).await.unwrap();
    assert_eq!(early.entries, 0);
    let later = now + jiff::SignedDuration::from_secs(61);
    let swept = sweep_outbox(&aws.store(), &aws.queue(), later, grace, Deadline::NONE).await.unwrap();
    assert_eq!((swept.entries, swept.jobs), (1, 2));
    let jobs = aws.take_jobs().await;
    assert_eq!(jobs.len(), 2, "one copy per agent");
    assert!(jobs.iter().all(|j| matches!(j.payload, JobPayload::ForwardToAgent(_))));
}

#[tokio::test]
async fn a_store_failure_writes_nothing_and_answers_500() {
    let aws = TestAws::new().await;
    let missing_table = DynamoStore::new(aws.dynamodb.clone(), "no-such-table", DEFAULT_MESSAGE_RETENTION);
    let app = app_with(&aws, &[], missing_table, aws.queue());
    let (status, _, _) = call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, "hello"))).await;
    assert_eq!(status, 500);
    assert!(aws.items().await.is_empty());
    assert_eq!(aws.queue_depth().await, 0);
}

#[tokio::test]
async fn aws_calls_per_inbound_sms() {
    let aws = TestAws::new().await;
    let counter = AwsCallCounter::default();
    let store = DynamoStore::new(counter.dynamodb(&aws.dynamodb), &aws.table, DEFAULT_MESSAGE_RETENTION);
    let queue = SqsQueue::new(counter.sqs(&aws.sqs), &aws.queue_url);
    let app = app_with(&aws, &[], store, queue);
    let first = twilio_inbound_params("SM00000000000000000000000000000001", CUSTOMER, "first");

    assert_eq!(call(&app, signed(&first)).await.0, 200);
    let first_contact = counter.take();
    call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, "again"))).await;
    let existing = counter.take();
    call(&app, signed(&first)).await;
    let replay = counter.take();
    // An agent claims the conversation (the WhatsApp webhook's write), unseen by this instance.
    let conversation =
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(CUSTOMER).unwrap() };
    let claim = AgentMessageRecord {
        line: conversation.line.clone(),
        agent: WaId::parse(AGENTS[1]).unwrap(),
        wamid: Wamid::parse("wamid.claim0001").unwrap(),
        received_at: jiff::Timestamp::now(),
        profile_name: Some("Ben".into()),
        effect: AgentEffect::Claim {
            conversation: conversation.clone(),
            handle: handle_of(&aws).await,
            name: "Ben".into(),
        },
        notices: vec![],
    };
    assert_eq!(aws.store().record_agent_message(&claim).await.unwrap(), RecordOutcome::Recorded);
    counter.take();
    call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, "claimed"))).await;
    let claim_unseen = counter.take();
    call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, "claimed again"))).await;
    let claim_seen = counter.take();
    println!(
        "AWS calls: first contact {first_contact:?}; existing conversation {existing:?}; replay {replay:?}; \
         claimed elsewhere {claim_unseen:?}, then {claim_seen:?}"
    );

    // A cold instance reads who holds the conversation and who is away (docs/using.md, "Fewer
    // copies"); a warm one decides from what it saw, and the append checks the claim.
    assert_eq!(
        first_contact,
        ["DynamoDB.BatchGetItem", "DynamoDB.TransactWriteItems", "DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"]
    );
    assert_eq!(existing, ["DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"]);
    assert_eq!(replay, ["DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"]);
    assert_eq!(
        claim_unseen,
        ["DynamoDB.TransactWriteItems", "DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"],
        "the first append is refused: the claim changed"
    );
    assert_eq!(claim_seen, ["DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"]);
    let thread = aws.store().thread(&conversation).await.unwrap();
    let copies_of = |text: &str| {
        let message = thread.iter().find(|m| m.body == text).unwrap();
        message.legs.iter().map(|leg| leg.to.clone()).collect::<Vec<_>>()
    };
    assert_eq!(copies_of("again").len(), 2);
    assert_eq!(copies_of("claimed"), [AGENTS[1]]);
}

async fn handle_of(aws: &TestAws) -> Handle {
    let conversation =
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(CUSTOMER).unwrap() };
    aws.store().conversation(&conversation).await.unwrap().unwrap().handle
}

#[tokio::test]
async fn the_account_sid_must_match_when_configured() {
    let aws = TestAws::new().await;
    let app = app(&aws, &[("TWILIO_ACCOUNT_SID", "AC11111111111111111111111111111111")]);
    let (status, _, body) = call(&app, signed(&twilio_inbound_params(&message_sid(), CUSTOMER, "hi"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(aws.items().await.is_empty());
}

/// Every bad request: the status, a word of the reason, and nothing stored or queued.
#[tokio::test]
async fn bad_requests_are_refused_and_leave_no_trace() {
    let aws = TestAws::new().await;
    let app = app(&aws, &[]);
    let sid = message_sid();
    let good = twilio_inbound_params(&sid, CUSTOMER, "hello");
    let (good_body, good_signature) = signed_twilio_form(PATH, &good);
    let without = |name: &str| good.iter().copied().filter(|(k, _)| *k != name).collect::<Vec<_>>();
    let with = |name: &'static str, value: &'static str| {
        good.iter().map(|&(k, v)| if k == name { (k, value) } else { (k, v) }).collect::<Vec<_>>()
    };
    let form = Some("application/x-www-form-urlencoded");
    let evil_host_signature = shared::adapters::twilio::compute_signature(
        bridge_testkit::testing::TWILIO_AUTH_TOKEN,
        &format!("https://evil.example{PATH}"),
        &good.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
    );
    let mut spoofed_host = post(good_body.clone(), Some(&evil_host_signature), form);
    spoofed_host.headers_mut().insert("host", "evil.example".parse().unwrap());
    let mut wrong_method = post("", None, None);
    *wrong_method.method_mut() = http::Method::GET;

    let cases: Vec<(&str, http::Request<Body>, u16, &str)> = vec![
        ("no signature", post(good_body.clone(), None, form), 403, "missing X-Twilio-Signature"),
        ("forged signature", post(good_body.clone(), Some("bm90IGEgc2lnbmF0dXJl"), form), 403, "does not match"),
        ("not base64", post(good_body.clone(), Some("%%%"), form), 403, "does not match"),
        (
            "valid signature, altered body",
            post(good_body.replace("hello", "send+money"), Some(&good_signature), form),
            403,
            "does not match",
        ),
        ("signature for the Host header's URL", spoofed_host, 403, "does not match"),
        ("missing From", signed(&without("From")), 400, "From"),
        ("missing To", signed(&without("To")), 400, "To"),
        ("missing MessageSid", signed(&without("MessageSid")), 400, "MessageSid"),
        ("From not a phone number", signed(&with("From", "hello")), 400, "From"),
        ("short code From", signed(&with("From", "12345")), 400, "From"),
        ("MessageSid with a separator", signed(&with("MessageSid", "SM#1")), 400, "MessageSid"),
        ("NumMedia not a number", signed(&with("NumMedia", "many")), 400, "NumMedia"),
        ("unknown line", signed(&with("To", "+14155550999")), 404, "no line"),
        ("json body", post("{}", Some(&good_signature), Some("application/json")), 415, "Content-Type"),
        ("no content type", post(good_body.clone(), Some(&good_signature), None), 415, "Content-Type"),
        ("invalid UTF-8", post(b"Body=%FF%FE&From=x".to_vec(), Some(&good_signature), form), 400, "UTF-8"),
        ("raw invalid UTF-8", post(b"Body=\xff".to_vec(), Some(&good_signature), form), 400, "UTF-8"),
        ("over 64 KiB", post("a".repeat(MAX_BODY_BYTES + 1), Some(&good_signature), form), 413, "larger than"),
        ("GET", wrong_method, 405, ""),
    ];
    for (name, request, expected_status, reason) in cases {
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, expected_status, "{name}: {body}");
        assert!(body.contains(reason), "{name}: `{body}` lacks `{reason}`");
        assert!(!body.contains(&good_signature), "{name}: the answer must not echo signatures");
    }
    assert!(aws.items().await.is_empty(), "nothing stored");
    assert_eq!(aws.queue_depth().await, 0, "nothing queued");
    // The genuine request still works afterwards.
    assert_eq!(call(&app, signed(&good)).await.0, 200);
}

/// Twilio's Webhook Settings can sign with a shared key instead of the auth token
/// (HMAC-SHA256, named in `X-Twilio-Webhooks-Signature-Settings`): verified with
/// `TWILIO_WEBHOOK_SHARED_KEY`, or refused with a 403 and a log line naming that variable,
/// never silently.
#[tokio::test]
async fn a_shared_key_signature_is_verified_or_refused_naming_the_setting() {
    use shared::adapters::twilio::{SignatureAlgorithm, compute_signature_with, encode_form};
    bridge_testkit::testing::logs::capture_logs();
    let aws = TestAws::new().await;
    let sid = message_sid();
    let params = twilio_inbound_params(&sid, CUSTOMER, "Signed with a shared key");
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let url = format!("{}{PATH}", bridge_testkit::testing::PUBLIC_BASE_URL);
    let signature = compute_signature_with(SignatureAlgorithm::HmacSha256, "shared-key-secret", &url, &owned);
    let request = || {
        let mut request = post(encode_form(&params), Some(&signature), Some("application/x-www-form-urlencoded"));
        let settings = http::HeaderValue::from_static("key=webhooks_sharedkey_01example,algorithm=HMAC_SHA256");
        request.headers_mut().insert("x-twilio-webhooks-signature-settings", settings);
        request
    };

    let (status, _, body) = call(&app(&aws, &[]), request()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("TWILIO_WEBHOOK_SHARED_KEY"), "{body}");
    let logged = bridge_testkit::testing::logs::logged_lines();
    assert!(
        logged.iter().any(|line| line.contains("signature_rejected") && line.contains("TWILIO_WEBHOOK_SHARED_KEY")),
        "the refusal is logged with the setting to change"
    );
    assert!(aws.items().await.is_empty(), "nothing recorded");

    let keyed = app(&aws, &[("TWILIO_WEBHOOK_SHARED_KEY", "shared-key-secret")]);
    let (status, _, body) = call(&keyed, request()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(aws.queue_depth().await, bridge_testkit::testing::AGENTS.len(), "one copy per agent");
    bridge_testkit::testing::logs::assert_no_number_logged(&[CUSTOMER]);
}
