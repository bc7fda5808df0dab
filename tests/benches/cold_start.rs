//! Cold start of each function's release binary, as Lambda runs it: the process starts, reads
//! its configuration, builds its clients, opens its connections (the warm-up), then asks the
//! Runtime API for events. A fake Runtime API here hands it two events and times:
//!
//! - init: process start → its first `GET /runtime/invocation/next` (Lambda's "Init Duration");
//! - first request: event handed over → response posted (a cold start's first invocation);
//! - second request: the same, warm.
//!
//! The AWS side is the moto emulator and the providers are HTTP fakes, all on loopback over
//! plain HTTP: no TLS and no network latency, which the warm-up exists to take off the first
//! request in AWS. What this measures is the binaries' own start and first-request work.
//!
//! ```text
//! cargo bench -p e2e-tests --bench cold_start            # 10 cold starts per function
//! cargo bench -p e2e-tests --bench cold_start -- 30
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is the bench failing

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Value, json};
use shared::domain::{ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LineId, MessageId, WaId};
use shared::ports::{ConversationStore, NewInboundMessage};
use shared::testing::{FakeProviders, TestAws, signed_twilio_form, twilio_inbound_params};

#[derive(Default)]
struct Invocations {
    pending: VecDeque<Value>,
    /// When the binary first asked for an event.
    first_poll: Option<Instant>,
    /// Per event: handed over, answered, and the answer.
    handed: Vec<Instant>,
    answered: Vec<(Instant, Value)>,
}

type Shared = Arc<Mutex<Invocations>>;

async fn next_event(State(state): State<Shared>) -> (HeaderMap, String) {
    loop {
        {
            let mut invocations = state.lock().unwrap();
            invocations.first_poll.get_or_insert_with(Instant::now);
            if let Some(event) = invocations.pending.pop_front() {
                invocations.handed.push(Instant::now());
                let id = format!("req-{}", invocations.handed.len());
                let mut headers = HeaderMap::new();
                headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                let deadline = Timestamp::now().as_millisecond() + 30_000;
                headers.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
                headers.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench".parse().unwrap(),
                );
                return (headers, event.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn response(State(state): State<Shared>, Path(_id): Path<String>, body: String) -> &'static str {
    let answer = serde_json::from_str(&body).unwrap_or(Value::String(body));
    state.lock().unwrap().answered.push((Instant::now(), answer));
    ""
}

async fn error(State(state): State<Shared>, body: String) -> &'static str {
    state.lock().unwrap().answered.push((Instant::now(), json!({ "error": body })));
    ""
}

/// One cold start of `binary` with `env`, handed `events`; returns (init, first, second).
async fn cold_start(binary: &PathBuf, env: &HashMap<String, String>, events: Vec<Value>) -> (f64, f64, f64) {
    let state: Shared = Arc::new(Mutex::new(Invocations { pending: events.into(), ..Default::default() }));
    let api = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_event))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, api).await });

    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.lock().unwrap().answered.len() < 2 {
        assert!(Instant::now() < deadline, "{} answered {:?}", binary.display(), state.lock().unwrap().answered);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    server.abort();

    let invocations = state.lock().unwrap();
    for (_, answer) in &invocations.answered {
        let ok = answer.get("error").is_none()
            && answer.get("statusCode").is_none_or(|s| s == 200)
            && answer.get("batchItemFailures").is_none_or(|f| f.as_array().is_some_and(Vec::is_empty));
        assert!(ok, "{}: {answer}", binary.display());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(invocations.first_poll.unwrap() - started),
        ms(invocations.answered[0].0 - invocations.handed[0]),
        ms(invocations.answered[1].0 - invocations.handed[1]),
    )
}

fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target"));
    target.join("release").join(name)
}

/// An API Gateway HTTP API (v2) event carrying a Twilio-signed inbound SMS.
fn inbound_sms_event(sid: &str, customer: &str) -> Value {
    let (body, signature) = signed_twilio_form("/sms/inbound", &twilio_inbound_params(sid, customer, "Is it ready?"));
    http_event("POST", "/sms/inbound", "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), &body)
}

/// An API Gateway HTTP API (v2) event carrying a Meta-signed notification of an agent's text.
fn agent_message_event(wamid: &str) -> Value {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "14155550100", "phone_number_id": shared::testing::PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": shared::testing::AGENTS[0] }],
            "messages": [{ "from": shared::testing::AGENTS[0], "id": wamid, "timestamp": "1", "type": "text",
                           "text": { "body": "Which one?" } }],
        }}]}],
    })
    .to_string();
    let signature =
        shared::adapters::whatsapp::signature::compute_signature(shared::testing::META_APP_SECRET, body.as_bytes());
    http_event("POST", "/whatsapp", "application/json", ("x-hub-signature-256", &signature), &body)
}

fn http_event(method: &str, path: &str, content_type: &str, signature: (&str, &str), body: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": { "host": "bridge.example.com", "content-type": content_type, signature.0: signature.1 },
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bridge.example.com",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "03/Dec/2026:10:00:00 +0000", "timeEpoch": 1_796_292_000_000u64,
        },
        "body": body, "isBase64Encoded": false,
    })
}

/// An SQS event with one job forwarding a customer's text to an agent, whose message is
/// recorded first as the SMS webhook would have.
async fn forward_event(aws: &TestAws, customer: &str) -> Value {
    let conversation =
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(customer).unwrap() };
    let message_id = MessageId::new_v7();
    let job = Job {
        job_id: JobId::for_leg(&message_id, 0),
        attempt: 0,
        payload: JobPayload::ForwardToAgent(ForwardToAgent {
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            agent: WaId::parse(shared::testing::AGENTS[0]).unwrap(),
            text: "Is it ready?".into(),
            attachments: vec![],
            media: vec![],
            received_at: Timestamp::now(),
            keyword: None,
        }),
    };
    let message = NewInboundMessage {
        conversation,
        message_id,
        provider: "twilio",
        provider_message_id: format!("SM{}", uuid_like()),
        body: "Is it ready?".into(),
        attachments: vec![],
        received_at: Timestamp::now(),
        keyword: None,
        jobs: vec![job.clone()],
    };
    let handle = Handle::random(6, &mut fastrand::Rng::new());
    aws.store().start_conversation(&message, &handle).await.unwrap();
    json!({ "Records": [{
        "messageId": uuid_like(), "receiptHandle": "bench", "body": job.encode(),
        "attributes": { "ApproximateReceiveCount": "1", "MessageGroupId": job.order_group() },
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench.fifo", "awsRegion": "us-east-1",
    }]})
}

fn uuid_like() -> String {
    (0..32).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap()).collect()
}

fn customer(n: usize) -> String {
    format!("+1415556{n:04}")
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    println!("building the release binaries (cargo build --release)...");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "sms-webhook", "-p", "whatsapp-webhook", "-p", "delivery-worker"])
        .status()
        .unwrap();
    assert!(built.success());

    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let endpoint = shared::testing::emulator_endpoint();
    let mut env = providers.test_env(&aws);
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("PATH", "/usr/bin:/bin"),
    ] {
        env.insert(k.into(), v.into());
    }

    println!("\n{runs} cold starts per function, release binaries, moto + HTTP fakes on loopback");
    println!("{:<18} {:>22} {:>22} {:>22}", "function", "init ms (p50 / max)", "1st request ms", "2nd request ms");
    let mut n = 0;
    for function in ["sms-webhook", "whatsapp-webhook", "delivery-worker"] {
        let mut samples = Vec::new();
        for _ in 0..runs {
            n += 1;
            let events = match function {
                "sms-webhook" => vec![
                    inbound_sms_event(&format!("SM{}", uuid_like()), &customer(2 * n)),
                    inbound_sms_event(&format!("SM{}", uuid_like()), &customer(2 * n + 1)),
                ],
                "whatsapp-webhook" => vec![
                    agent_message_event(&format!("wamid.bench{}", uuid_like())),
                    agent_message_event(&format!("wamid.bench{}", uuid_like())),
                ],
                _ => vec![forward_event(&aws, &customer(2 * n)).await, forward_event(&aws, &customer(2 * n + 1)).await],
            };
            samples.push(cold_start(&release_binary(function), &env, events).await);
        }
        let stat = |pick: fn(&(f64, f64, f64)) -> f64| {
            let mut values: Vec<f64> = samples.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            format!("{:.1} / {:.1}", values[values.len() / 2], values[values.len() - 1])
        };
        println!("{function:<18} {:>22} {:>22} {:>22}", stat(|s| s.0), stat(|s| s.1), stat(|s| s.2));
    }
}
