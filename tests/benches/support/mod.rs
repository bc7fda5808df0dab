//! What the Lambda benches share: a fake Lambda Runtime API that runs a function's release
//! binary as Lambda does (one event at a time) and times each invocation, the environment
//! pointing the binaries at the emulator and the provider fakes, and real-shaped events.

#![allow(dead_code, clippy::unwrap_used)] // each bench uses part of it; a failed unwrap fails the bench

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use bridge_testkit::testing::{FakeProviders, TestAws, signed_twilio_form, twilio_inbound_params};
use jiff::Timestamp;
use serde_json::{Value, json};
use shared::domain::{ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LineId, MessageId, WaId};
use shared::ports::{InboundLog, NewInboundMessage};

pub const FUNCTIONS: [&str; 3] = ["sms-webhook", "whatsapp-webhook", "delivery-worker"];

#[derive(Default)]
struct Invocations {
    pending: VecDeque<Value>,
    first_poll: Option<Instant>,
    handed: Vec<Instant>,
    answered: Vec<(Instant, Value)>,
}

/// A fake Runtime API on loopback, feeding one binary the events it is given.
pub struct FakeRuntime {
    state: Arc<Mutex<Invocations>>,
    address: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

/// One run of a binary: when it started, its init, and each invocation's duration.
pub struct Timings {
    pub init_ms: f64,
    pub invocations_ms: Vec<f64>,
}

impl FakeRuntime {
    pub async fn start(events: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(Invocations { pending: events.into(), ..Default::default() }));
        let api = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, api).await;
        });
        Self { state, address, server }
    }

    /// Starts `binary` against this runtime, with `env` and Lambda's own variables.
    pub fn spawn(&self, binary: &PathBuf, env: &HashMap<String, String>) -> (Child, Instant) {
        self.spawn_logging_to(binary, env, Stdio::null())
    }

    /// [`Self::spawn`], the function's log lines (JSON) going to `stdout`.
    pub fn spawn_logging_to(&self, binary: &PathBuf, env: &HashMap<String, String>, stdout: Stdio) -> (Child, Instant) {
        self.spawn_command(Command::new(binary), env, stdout)
    }

    /// [`Self::spawn_logging_to`] for any program: another language's runtime loop.
    pub fn spawn_command(
        &self,
        mut command: Command,
        env: &HashMap<String, String>,
        stdout: Stdio,
    ) -> (Child, Instant) {
        let started = Instant::now();
        let child = command
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", self.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (child, started)
    }

    /// Waits until `count` events are answered; every answer must be a success.
    pub async fn wait_answers(&self, count: usize, what: &str) {
        // moto slows as its table grows: allow it two seconds an invocation.
        let deadline = Instant::now() + Duration::from_secs(30 + 2 * count as u64);
        while self.state.lock().unwrap().answered.len() < count {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {count} answered",
                self.state.lock().unwrap().answered.len()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for (_, answer) in &self.state.lock().unwrap().answered {
            let ok = answer.get("error").is_none()
                && answer.get("statusCode").is_none_or(|s| s == 200)
                && answer.get("batchItemFailures").is_none_or(|f| f.as_array().is_some_and(Vec::is_empty));
            assert!(ok, "{what}: {answer}");
        }
    }

    pub fn timings(&self, started: Instant) -> Timings {
        let invocations = self.state.lock().unwrap();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Timings {
            init_ms: ms(invocations.first_poll.unwrap() - started),
            invocations_ms: invocations
                .answered
                .iter()
                .zip(&invocations.handed)
                .map(|((a, _), h)| ms(*a - *h))
                .collect(),
        }
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next_event(State(state): State<Arc<Mutex<Invocations>>>) -> (HeaderMap, String) {
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

async fn response(State(state): State<Arc<Mutex<Invocations>>>, Path(_id): Path<String>, body: String) -> &'static str {
    let answer = serde_json::from_str(&body).unwrap_or(Value::String(body));
    state.lock().unwrap().answered.push((Instant::now(), answer));
    ""
}

async fn error(State(state): State<Arc<Mutex<Invocations>>>, body: String) -> &'static str {
    state.lock().unwrap().answered.push((Instant::now(), json!({ "error": body })));
    ""
}

/// `BENCH_SMOKE` set: CI's run (`.ci/bench-smoke`), a few requests each, to prove the
/// benches still run; the figures mean nothing then.
pub fn smoke() -> bool {
    std::env::var_os("BENCH_SMOKE").is_some()
}

/// `n`, or `small` in a smoke run: the size a bench takes from its first numeric argument.
pub fn size_arg(default: usize, small: usize) -> usize {
    let asked = std::env::args().skip(1).find_map(|a| a.parse().ok());
    if smoke() { small } else { asked.unwrap_or(default) }
}

/// Builds the three functions' binaries (the bench profile doesn't build them): release, or
/// the debug ones in a smoke run.
pub fn build_release_binaries() {
    // Smoke: the binaries as `cargo test --workspace` builds them (nothing to do after the
    // tests ran; `cargo build` leaves out the dev-dependencies' features and rebuilds).
    let args = if smoke() {
        vec!["test", "--workspace", "--no-run", "--quiet"]
    } else {
        vec!["build", "-p", "sms-webhook", "-p", "whatsapp-webhook", "-p", "delivery-worker", "--release"]
    };
    println!("building the functions' binaries (cargo {})...", args.join(" "));
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(&args).status().unwrap();
    assert!(built.success());
}

pub fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target"));
    target.join(if smoke() { "debug" } else { "release" }).join(name)
}

/// The environment of every function: the emulator, the provider fakes, the test secrets.
pub fn lambda_env(aws: &TestAws, providers: &FakeProviders) -> HashMap<String, String> {
    let mut env = providers.test_env(aws);
    for (k, v) in [
        ("AWS_ENDPOINT_URL", aws.endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("PATH", "/usr/bin:/bin"),
    ] {
        env.insert(k.into(), v.into());
    }
    env
}

/// `n` events for `function`, each a different customer (or agent message) so none is a
/// replay; the worker's carry `batch` jobs each.
pub async fn events_for(function: &str, aws: &TestAws, first: usize, n: usize, batch: usize) -> Vec<Value> {
    let mut events = Vec::with_capacity(n);
    for i in first..first + n {
        events.push(match function {
            "sms-webhook" => inbound_sms_event(&format!("SM{}", uuid_like()), &customer(i)),
            "whatsapp-webhook" => agent_message_event(&format!("wamid.bench{}", uuid_like())),
            _ => {
                let customers: Vec<String> = (0..batch).map(|b| customer(i * batch + b)).collect();
                forward_event(aws, &customers).await
            }
        });
    }
    events
}

/// An API Gateway HTTP API (v2) event carrying a Twilio-signed inbound SMS.
pub fn inbound_sms_event(sid: &str, customer: &str) -> Value {
    let (body, signature) = signed_twilio_form("/sms/inbound", &twilio_inbound_params(sid, customer, "Is it ready?"));
    http_event("POST", "/sms/inbound", "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), &body)
}

/// An API Gateway HTTP API (v2) event carrying a Meta-signed notification of an agent's text.
pub fn agent_message_event(wamid: &str) -> Value {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "14155550100", "phone_number_id": bridge_testkit::testing::PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": bridge_testkit::testing::AGENTS[0] }],
            "messages": [{ "from": bridge_testkit::testing::AGENTS[0], "id": wamid, "timestamp": "1", "type": "text",
                           "text": { "body": "Which one?" } }],
        }}]}],
    })
    .to_string();
    let signature = shared::adapters::whatsapp::signature::compute_signature(
        bridge_testkit::testing::META_APP_SECRET,
        body.as_bytes(),
    );
    http_event("POST", "/whatsapp", "application/json", ("x-hub-signature-256", &signature), &body)
}

pub fn http_event(method: &str, path: &str, content_type: &str, signature: (&str, &str), body: &str) -> Value {
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

/// An SQS event (a batch, as the event source mapping delivers) of jobs forwarding one text
/// of each customer to an agent, whose messages are recorded first as the SMS webhook would.
pub async fn forward_event(aws: &TestAws, customers: &[String]) -> Value {
    let mut records = Vec::new();
    for customer in customers {
        let job = recorded_forward_job(aws, customer).await;
        records.push(json!({
            "messageId": uuid_like(), "receiptHandle": "bench", "body": job.encode(),
            "attributes": { "ApproximateReceiveCount": "1", "MessageGroupId": job.order_group() },
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench.fifo", "awsRegion": "us-east-1",
        }));
    }
    json!({ "Records": records })
}

async fn recorded_forward_job(aws: &TestAws, customer: &str) -> Job {
    let conversation =
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(customer).unwrap() };
    let message_id = MessageId::new_v7();
    let job = Job {
        job_id: JobId::for_leg(&message_id, 0),
        attempt: 0,
        payload: JobPayload::ForwardToAgent(ForwardToAgent {
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            agent: WaId::parse(bridge_testkit::testing::AGENTS[0]).unwrap(),
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
        claim_assumed: Default::default(),
    };
    let handle = Handle::random(6, &mut fastrand::Rng::new());
    aws.store().start_conversation(&message, &handle).await.unwrap();
    job
}

pub fn uuid_like() -> String {
    (0..32).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap()).collect()
}

pub fn customer(n: usize) -> String {
    format!("+141555{n:05}")
}

/// p50 / p95 / p99 / max of `values`, in their unit.
pub fn percentiles(values: &[f64]) -> [f64; 4] {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    [at(0.50), at(0.95), at(0.99), sorted[sorted.len() - 1]]
}

/// A process's CPU time so far (user + system), from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// This process's live threads' CPU time so far, to the nanosecond (`cpu_seconds` counts
/// 10 ms ticks): for timing microseconds of work in-process.
pub fn live_threads_cpu_seconds() -> f64 {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        nanos += schedstat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    nanos as f64 / 1e9
}

/// A process's peak resident memory (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
