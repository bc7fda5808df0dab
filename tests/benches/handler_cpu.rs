//! Where a request's CPU goes, with no I/O at all.
//!
//! Each path runs twice over the same events. First against the moto emulator, recording
//! every AWS call's request and response (`AwsRecording`); then again with the SDK's HTTP
//! client answering from that recording, in memory, and the providers as in-memory ports.
//! The second pass is timed: the handlers' own CPU (parsing, signature checks, routing, the
//! SDK's serialization, SigV4 signing and parsing, JSON logs and EMF lines) per request, with
//! no socket, no emulator and no waiting. Then the parts: one SDK call, the signature checks.
//!
//! ```text
//! cargo bench -p e2e-tests --bench handler_cpu           # 200 requests per path
//! cargo bench -p e2e-tests --bench handler_cpu -- 1000
//! ```
//!
//! One thread, as the functions run (`current_thread` runtime); logs are formatted as in
//! Lambda (JSON) and written to a sink; EMF lines go to stdout as in Lambda, so run it with
//! `| grep -v _aws` to read the table alone.

#![allow(clippy::unwrap_used)] // a failed unwrap is the bench failing

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_lambda_events::sqs::SqsEvent;
use bridge_testkit::testing::{
    AGENTS, AwsCallCounter, AwsRecording, TestAws, lookup, record_agent_reply, signed_meta_notification,
    signed_status_callback, test_env, whatsapp_text,
};
use delivery_worker::DeliveryWorker;
use secrecy::SecretString;
use serde_json::Value;
use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore};
use shared::adapters::sqs::SqsQueue;
use shared::app::deliver_job::Deliverer;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use shared::domain::{E164, PhoneNumberId, ProviderFailure, SmsOrigin, Wamid, WhatsAppMessage, WhatsAppRecipient};
use shared::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking, WhatsAppClient};
use sms_webhook::SmsWebhook;
use support::{customer, forward_event, http_event, inbound_sms_event, uuid_like};
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

const WORKER_BATCH: usize = 10;

/// The AWS clients of one path: recorded against moto, then replayed from memory.
struct Clients {
    recording: AwsRecording,
    counter: AwsCallCounter,
}

impl Clients {
    fn new() -> Self {
        Self { recording: AwsRecording::default(), counter: AwsCallCounter::default() }
    }

    fn recorded(&self, aws: &TestAws) -> (DynamoStore, SqsQueue) {
        let dynamodb = self.counter.dynamodb(&self.recording.dynamodb(&aws.dynamodb));
        let sqs = self.counter.sqs(&self.recording.sqs(&aws.sqs));
        (DynamoStore::new(dynamodb, &aws.table, DEFAULT_MESSAGE_RETENTION), SqsQueue::new(sqs, &aws.queue_url))
    }

    fn replayed(&self, aws: &TestAws) -> (DynamoStore, SqsQueue) {
        let dynamodb = self.recording.replay_dynamodb(&aws.dynamodb);
        let sqs = self.recording.replay_sqs(&aws.sqs);
        (DynamoStore::new(dynamodb, &aws.table, DEFAULT_MESSAGE_RETENTION), SqsQueue::new(sqs, &aws.queue_url))
    }
}

/// WhatsApp that accepts every message at once, counting them in its static.
struct InMemoryWhatsApp(&'static AtomicUsize);

impl WhatsAppClient for InMemoryWhatsApp {
    async fn send(
        &self,
        _: &PhoneNumberId,
        _: &WhatsAppRecipient,
        _: &WhatsAppMessage,
        _: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Wamid::parse(&format!("wamid.inmemory{n}")).unwrap())
    }
}

/// An SMS provider that accepts every message at once.
struct InMemorySms(&'static AtomicUsize);

impl SmsProvider for InMemorySms {
    async fn send(
        &self,
        _: SmsOrigin<'_>,
        _: &E164,
        _: &str,
        _: &[String],
        _: Option<SmsTracking<'_>>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(AcceptedSms { id: format!("SM{n:032}"), status: None })
    }

    async fn find_sent(
        &self,
        _: SmsOrigin<'_>,
        _: &E164,
        _: &str,
        _: jiff::Timestamp,
    ) -> Result<SentLookup, ProviderFailure> {
        Ok(SentLookup::Listed(Vec::new()))
    }
}

/// One path's figures: the replayed pass's CPU per request and the recorded pass's calls.
struct PathFigures {
    name: &'static str,
    requests: usize,
    cpu_seconds: f64,
    calls: Vec<String>,
}

impl PathFigures {
    fn row(&self) {
        let per_request = |count: usize| count as f64 / self.requests as f64;
        eprintln!(
            "{:<44} {:>10.1} {:>10.2}   {}",
            self.name,
            self.cpu_seconds * 1e6 / self.requests as f64,
            per_request(self.calls.len()),
            summarize(&self.calls, self.requests)
        );
    }
}

/// `DynamoDB.GetItem ×2, …` per request.
fn summarize(calls: &[String], requests: usize) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for call in calls {
        match counts.iter_mut().find(|(c, _)| c == call) {
            Some((_, n)) => *n += 1,
            None => counts.push((call, 1)),
        }
    }
    counts.iter().map(|(c, n)| format!("{c} ×{:.1}", *n as f64 / requests as f64)).collect::<Vec<_>>().join(", ")
}

fn cpu_now() -> f64 {
    support::live_threads_cpu_seconds()
}

/// Posts every event to `router`, each answered 200.
async fn post_all(router: &axum::Router, events: &[Value]) {
    for event in events {
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "{event}");
    }
}

/// Records `events` on `record`, then times them on `replay`.
async fn webhook_path(
    name: &'static str,
    clients: &Clients,
    record: axum::Router,
    replay: axum::Router,
    events: &[Value],
) -> PathFigures {
    post_all(&record, events).await;
    let calls = clients.counter.take();
    post_all(&replay, &events[..events.len().min(10)]).await; // warm the replayed clients
    let started = cpu_now();
    post_all(&replay, events).await;
    PathFigures { name, requests: events.len(), cpu_seconds: cpu_now() - started, calls }
}

/// The SMS webhook twice: on the recorded clients and on the replayed ones.
fn sms_routers(aws: &TestAws, clients: &Clients) -> (axum::Router, axum::Router) {
    let env = test_env(aws, &[]);
    let build = |(store, queue)| {
        sms_webhook::router(Arc::new(SmsWebhook::new(
            SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap(),
            store,
            queue,
        )))
    };
    (build(clients.recorded(aws)), build(clients.replayed(aws)))
}

/// The WhatsApp webhook twice: on the recorded clients and on the replayed ones.
fn whatsapp_routers(aws: &TestAws, clients: &Clients) -> (axum::Router, axum::Router) {
    let env = test_env(aws, &[]);
    let build = |(store, queue)| {
        let config = WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap();
        whatsapp_webhook::router(Arc::new(WhatsAppWebhook::new(config, store, queue)))
    };
    (build(clients.recorded(aws)), build(clients.replayed(aws)))
}

async fn inbound_sms(n: usize) -> PathFigures {
    let aws = TestAws::new().await;
    let clients = Clients::new();
    let (record, replay) = sms_routers(&aws, &clients);
    // Known customers, as most traffic is: each texted once before.
    let customers = 20;
    post_all(
        &record,
        &(0..customers).map(|i| inbound_sms_event(&format!("SM{}", uuid_like()), &customer(i))).collect::<Vec<_>>(),
    )
    .await;
    clients.counter.take();
    let events: Vec<Value> =
        (0..n).map(|i| inbound_sms_event(&format!("SM{}", uuid_like()), &customer(i % customers))).collect();
    webhook_path("inbound SMS (known customer)", &clients, record, replay, &events).await
}

async fn agent_reply(n: usize) -> PathFigures {
    let aws = TestAws::new().await;
    let clients = Clients::new();
    let (record, replay) = whatsapp_routers(&aws, &clients);
    // Agent 0 replied to this customer before, so the conversation is its focus.
    record_agent_reply(&aws, &customer(0), "Hello!").await;
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let (body, signature) =
                signed_meta_notification(&[whatsapp_text(AGENTS[0], &format!("It's ready, number {i}"), None)], &[]);
            http_event("POST", "/whatsapp", "application/json", ("x-hub-signature-256", &signature), &body)
        })
        .collect();
    let figures = webhook_path("agent reply (by focus)", &clients, record, replay, &events).await;
    assert!(figures.calls.iter().any(|c| c == "SQS.SendMessageBatch"), "relayed: {:?}", &figures.calls[..4]);
    figures
}

async fn status_callback(n: usize) -> PathFigures {
    let aws = TestAws::new().await;
    let clients = Clients::new();
    let (record, replay) = sms_routers(&aws, &clients);
    let mut events = Vec::new();
    for i in 0..n {
        let job = record_agent_reply(&aws, &customer(i), "It's ready").await;
        let path = format!("/sms/status?job={}", job.job_id);
        let (body, signature) =
            signed_status_callback(&path, &format!("SM{}", uuid_like()), "delivered", None, &customer(i));
        let mut event = http_event(
            "POST",
            "/sms/status",
            "application/x-www-form-urlencoded",
            ("x-twilio-signature", &signature),
            &body,
        );
        event["rawQueryString"] = Value::String(format!("job={}", job.job_id));
        event["queryStringParameters"] = serde_json::json!({ "job": job.job_id.to_string() });
        events.push(event);
    }
    webhook_path("SMS status callback (delivered)", &clients, record, replay, &events).await
}

type BenchWorker = DeliveryWorker<DynamoStore, InMemoryWhatsApp, InMemorySms, SqsQueue>;

async fn handle_all(worker: &BenchWorker, events: Vec<SqsEvent>) {
    for event in events {
        let response = worker.handle_batch(event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "every job delivered: {} failed",
            response.batch_item_failures.len()
        );
    }
}

async fn worker(n: usize) -> PathFigures {
    let aws = TestAws::new().await;
    let env = test_env(&aws, &[]);
    let clients = Clients::new();
    static RECORDED_SENDS: AtomicUsize = AtomicUsize::new(0);
    static REPLAYED_SENDS: AtomicUsize = AtomicUsize::new(0);
    static SMS_SENDS: AtomicUsize = AtomicUsize::new(0);
    let build = |(store, queue): (DynamoStore, SqsQueue), sends: &'static AtomicUsize| -> BenchWorker {
        let config = DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap();
        let deliverer = Deliverer::new(
            config.lines,
            store,
            InMemoryWhatsApp(sends),
            InMemorySms(&SMS_SENDS),
            queue,
            "https://bridge.example.com/sms/status".into(),
            // Unpaced: the pacer's waits aren't CPU, and would only slow the bench.
            shared::app::deliver_job::SendRates {
                whatsapp_per_second: 1e9,
                sms_per_second: 1e9,
                whatsapp_pair_seconds: 0.0,
            },
        );
        DeliveryWorker::new(deliverer, config.retry)
    };
    let record = build(clients.recorded(&aws), &RECORDED_SENDS);
    let replay = build(clients.replayed(&aws), &REPLAYED_SENDS);
    let batches = (n / WORKER_BATCH).max(2);
    let mut events = Vec::new();
    for b in 0..batches {
        let customers: Vec<String> = (0..WORKER_BATCH).map(|j| customer(b * WORKER_BATCH + j)).collect();
        events.push(serde_json::from_value::<SqsEvent>(forward_event(&aws, &customers).await).unwrap());
    }
    clients.counter.take();
    handle_all(&record, events.clone()).await;
    let calls = clients.counter.take();
    handle_all(&replay, events[..1].to_vec()).await;
    let started = cpu_now();
    handle_all(&replay, events.clone()).await;
    let cpu_seconds = cpu_now() - started;
    assert_eq!(RECORDED_SENDS.load(Ordering::Relaxed), batches * WORKER_BATCH, "one WhatsApp message per job");
    assert_eq!(REPLAYED_SENDS.load(Ordering::Relaxed), (batches + 1) * WORKER_BATCH, "the same, replayed");
    PathFigures {
        name: "delivery worker, per job (batches of 10)",
        requests: batches * WORKER_BATCH,
        cpu_seconds,
        calls,
    }
}

/// One replayed `GetItem` through the SDK: what every AWS call costs before any I/O.
async fn sdk_call_micros(aws: &TestAws) -> f64 {
    let recording = AwsRecording::default();
    let key =
        |name: &str| (name.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("CONV#main#+14155550000".into()));
    let get = |client: aws_sdk_dynamodb::Client| {
        let (pk, pk_value) = key("PK");
        let (sk, sk_value) = key("SK");
        async move { client.get_item().table_name(&aws.table).key(pk, pk_value).key(sk, sk_value).send().await.unwrap() }
    };
    get(recording.dynamodb(&aws.dynamodb)).await;
    let replay = recording.replay_dynamodb(&aws.dynamodb);
    let calls = 2000;
    get(replay.clone()).await;
    let started = cpu_now();
    for _ in 0..calls {
        get(replay.clone()).await;
    }
    (cpu_now() - started) * 1e6 / calls as f64
}

/// Verifying one Twilio signature (HMAC-SHA1) and one Meta signature (HMAC-SHA256) of
/// real-sized requests.
fn signature_micros() -> (f64, f64) {
    let twilio = shared::adapters::twilio::signature::TwilioSignatureVerifier::new(
        SecretString::from(bridge_testkit::testing::TWILIO_AUTH_TOKEN),
        bridge_testkit::testing::PUBLIC_BASE_URL,
    );
    let sid = format!("SM{}", uuid_like());
    let (body, signature) = bridge_testkit::testing::signed_twilio_form(
        "/sms/inbound",
        &bridge_testkit::testing::twilio_inbound_params(&sid, &customer(1), "Is it ready?"),
    );
    let params = shared::adapters::twilio::form::parse_form(body.as_bytes()).unwrap();
    let meta = shared::adapters::whatsapp::signature::MetaSignatureVerifier::new(SecretString::from(
        bridge_testkit::testing::META_APP_SECRET,
    ));
    let (meta_body, meta_signature) = signed_meta_notification(&[whatsapp_text(AGENTS[0], "It's ready", None)], &[]);
    let rounds = 20_000;
    let time = |f: &dyn Fn()| {
        let started = Instant::now();
        for _ in 0..rounds {
            f();
        }
        started.elapsed().as_secs_f64() * 1e6 / rounds as f64
    };
    let twilio_micros = time(&|| {
        twilio.verify("/sms/inbound", Some(&signature), None, params.clone()).unwrap();
    });
    let meta_micros = time(&|| {
        meta.verify(Some(&meta_signature), meta_body.as_bytes()).unwrap();
    });
    (twilio_micros, meta_micros)
}

fn main() {
    // As Lambda's JSON logs, formatted in full, written nowhere.
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::sink)
        .init();
    let n: usize = support::size_arg(200, 3);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let paths = [inbound_sms(n).await, agent_reply(n).await, status_callback(n).await, worker(n).await];
        let sdk_call = sdk_call_micros(&TestAws::new().await).await;
        let (twilio, meta) = signature_micros();
        eprintln!();
        eprintln!("Handler CPU per request with in-memory AWS and providers ({n} requests per path, one thread)");
        eprintln!("{:<44} {:>10} {:>10}   calls per request", "path", "CPU µs", "AWS calls");
        // The table goes to stderr: stdout carries the handlers' EMF lines, as in Lambda.
        for path in &paths {
            path.row();
        }
        eprintln!("\nparts:");
        eprintln!("  one AWS SDK call (GetItem: serialize, endpoint, SigV4, parse): {sdk_call:.1} µs");
        eprintln!("  Twilio signature check (HMAC-SHA1, inbound form):           {twilio:.1} µs");
        eprintln!("  Meta signature check (HMAC-SHA256, one-message notification): {meta:.1} µs");
    });
}
