//! The webhooks under load, and the inbound SMS path beside the implementation a user would
//! otherwise write: `python/inbound_handler.py` (boto3 + twilio's RequestValidator), given
//! the very same signed events against the same moto emulator, one request at a time as one
//! Lambda instance serves them.
//!
//! Printed: requests/s, latency p50/p95/p99, the handler process's own CPU time per request
//! (the emulator runs in another process and isn't counted), and AWS calls per request
//! (counted: an SDK interceptor for the bridge, botocore's `before-send` for Python).
//! Then the same comparison as Lambda runs each side: the sms-webhook's release binary and
//! the Python handler in a Runtime API loop (`python/lambda_runtime.py`), each a process
//! behind a fake Runtime API, CPU from `/proc`.
//! Then the bridge's webhooks alone at concurrency 1, 8 and 32, and the delivery worker
//! (batches of 10 jobs, the HTTP fakes answering at once) the same way.
//!
//! ```text
//! cargo bench -p e2e-tests --bench inbound_vs_python          # 300 requests
//! cargo bench -p e2e-tests --bench inbound_vs_python -- 1000
//! cargo bench -p e2e-tests --bench inbound_vs_python -- 300 bridge-only   # e.g. under callgrind
//! cargo bench -p e2e-tests --bench inbound_vs_python -- 300 inbound-only  # the comparison alone
//! ```
//!
//! moto takes one request at a time and slows as its table grows, so requests/s and latency
//! are mostly the emulator's; CPU per request and AWS calls per request are the handlers'.

#![allow(clippy::unwrap_used)] // a failed unwrap is the bench failing

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::SqsEvent;
use bridge_testkit::testing::{AwsCallCounter, FakeProviders, TestAws, lookup, test_env};
use delivery_worker::DeployedWorker;
use serde_json::Value;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use sms_webhook::SmsWebhook;
use support::{
    FakeRuntime, agent_message_event, cpu_seconds, customer, forward_event, inbound_sms_event, lambda_env, percentiles,
    release_binary, uuid_like,
};
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

const PYTHON_REQUIREMENTS: &str = include_str!("python/requirements.txt");
const WARMUP: usize = 20;
/// Customers the SMS come from: most requests are a known customer's, as in real traffic.
const CUSTOMERS: usize = 30;

struct Run {
    latencies_ms: Vec<f64>,
    cpu_seconds: f64,
    wall_seconds: f64,
    /// Counted on the one-at-a-time runs only.
    aws_calls: Option<usize>,
    /// The bridge's calls by operation: how many, and their request bodies' mean size.
    calls_by_operation: Vec<(String, usize, usize)>,
}

impl Run {
    fn requests(&self) -> usize {
        self.latencies_ms.len()
    }

    fn row(&self, name: &str) {
        let [p50, p95, p99, _] = percentiles(&self.latencies_ms);
        let calls = self.aws_calls.map_or("-".to_owned(), |c| format!("{:.2}", c as f64 / self.requests() as f64));
        println!(
            "{name:<34} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>12.3} {calls:>10}",
            self.requests() as f64 / self.wall_seconds,
            p50,
            p95,
            p99,
            self.cpu_seconds * 1000.0 / self.requests() as f64,
        );
    }
}

fn inbound_events(n: usize) -> Vec<Value> {
    (0..n).map(|i| inbound_sms_event(&format!("SM{}", uuid_like()), &customer(i % CUSTOMERS))).collect()
}

/// The bridge's sms-webhook, in this process, one request at a time.
async fn rust_inbound(aws: &TestAws, events: &[Value]) -> Run {
    let counter = AwsCallCounter::default();
    let env = test_env(aws, &[]);
    let config = SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap();
    let store = shared::adapters::dynamodb::DynamoStore::new(
        counter.dynamodb(&aws.dynamodb),
        &aws.table,
        shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION,
    );
    let queue = shared::adapters::sqs::SqsQueue::new(counter.sqs(&aws.sqs), &aws.queue_url);
    let router = sms_webhook::router(Arc::new(SmsWebhook::new(config, store, queue)));
    let call = |event: &Value| {
        let router = router.clone();
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        async move {
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    for event in &events[..WARMUP] {
        call(event).await;
    }
    counter.take();
    let mut latencies_ms = Vec::new();
    let (cpu_started, wall_started) = (cpu_seconds(std::process::id()), Instant::now());
    for event in &events[WARMUP..] {
        let started = Instant::now();
        call(event).await;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let calls = counter.take_with_sizes();
    let mut calls_by_operation: Vec<(String, usize, usize)> = Vec::new();
    for (operation, size) in &calls {
        match calls_by_operation.iter_mut().find(|(o, _, _)| o == operation) {
            Some((_, count, bytes)) => {
                *count += 1;
                *bytes += size;
            }
            None => calls_by_operation.push((operation.clone(), 1, *size)),
        }
    }
    for (_, count, bytes) in &mut calls_by_operation {
        *bytes /= *count;
    }
    Run {
        cpu_seconds: cpu_seconds(std::process::id()) - cpu_started,
        wall_seconds: wall_started.elapsed().as_secs_f64(),
        aws_calls: Some(calls.len()),
        calls_by_operation,
        latencies_ms,
    }
}

fn print_calls(run: &Run) {
    for (operation, count, bytes) in &run.calls_by_operation {
        println!(
            "  {operation}: {:.2} per request, request body {bytes} B on average",
            *count as f64 / run.requests() as f64
        );
    }
}

/// The Python handler, in its own interpreter, over the same events.
fn python_inbound(aws: &TestAws, events: &[Value]) -> Run {
    let site = bridge_emulator::install_pinned("python-baseline", PYTHON_REQUIREMENTS).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python");
    let events_file = bridge_emulator::tools_dir().join(format!("inbound-events-{}.json", std::process::id()));
    std::fs::create_dir_all(bridge_emulator::tools_dir()).unwrap();
    std::fs::write(&events_file, serde_json::to_string(events).unwrap()).unwrap();
    let env: HashMap<String, String> = test_env(aws, &[]);
    let output = std::process::Command::new(bridge_emulator::python())
        .arg(dir.join("run_inbound.py"))
        .arg(&events_file)
        .arg(WARMUP.to_string())
        .envs(&env)
        .env("PYTHONPATH", format!("{}:{}", dir.display(), site.display()))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_ENDPOINT_URL", aws.endpoint)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&events_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    Run {
        latencies_ms: result["latencies_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
        cpu_seconds: result["cpu_seconds"].as_f64().unwrap(),
        wall_seconds: result["wall_seconds"].as_f64().unwrap(),
        aws_calls: result["aws_calls"].as_u64().map(|c| c as usize),
        calls_by_operation: Vec::new(),
    }
}

/// One process behind a fake Runtime API, handed `events` one at a time as Lambda hands
/// them; the figures are for the events after the first [`WARMUP`]. CPU is the process's
/// own (`/proc`): its runtime loop's share counts, as Lambda bills it.
async fn through_runtime_api(command: std::process::Command, env: &HashMap<String, String>, events: &[Value]) -> Run {
    let runtime = FakeRuntime::start(events.to_vec()).await;
    let what = format!("{:?}", command.get_program());
    let (mut child, started) = runtime.spawn_command(command, env, std::process::Stdio::null());
    runtime.wait_answers(WARMUP, &what).await;
    let (cpu_started, wall_started) = (cpu_seconds(child.id()), Instant::now());
    runtime.wait_answers(events.len(), &what).await;
    let (cpu, wall) = (cpu_seconds(child.id()) - cpu_started, wall_started.elapsed().as_secs_f64());
    let _ = child.kill();
    let _ = child.wait();
    Run {
        latencies_ms: runtime.timings(started).invocations_ms[WARMUP..].to_vec(),
        cpu_seconds: cpu,
        wall_seconds: wall,
        aws_calls: None,
        calls_by_operation: Vec::new(),
    }
}

/// The comparison as Lambda runs each side: the sms-webhook's release binary, and the
/// Python handler inside `python/lambda_runtime.py` (the managed runtime's loop, lean).
async fn runtime_api_comparison(events: &[Value]) {
    support::build_release_binaries();
    let providers = FakeProviders::start().await;
    let aws = TestAws::new().await;
    let rust = through_runtime_api(
        std::process::Command::new(release_binary("sms-webhook")),
        &lambda_env(&aws, &providers),
        events,
    )
    .await;

    let site = bridge_emulator::install_pinned("python-baseline", PYTHON_REQUIREMENTS).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python");
    let aws = TestAws::new().await;
    let mut env = lambda_env(&aws, &providers);
    env.extend(test_env(&aws, &[]));
    env.insert("PYTHONPATH".into(), format!("{}:{}", dir.display(), site.display()));
    // No __pycache__ left in the source tree.
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.insert("AWS_DEFAULT_REGION".into(), "us-east-1".into());
    let mut python = std::process::Command::new(bridge_emulator::python());
    python.arg(dir.join("lambda_runtime.py")).arg("inbound_handler.handler");
    let python = through_runtime_api(python, &env, events).await;

    header(&format!(
        "Inbound SMS through the Runtime API, {} events one at a time, one process each, same moto",
        events.len() - WARMUP
    ));
    rust.row("bridge (sms-webhook release binary)");
    python.row("Python, lean, in a runtime loop");
    println!(
        "{:<34} {:>9} {:>29.2}x {:>11.1}x",
        "Python / bridge",
        "",
        percentiles(&python.latencies_ms)[2] / percentiles(&rust.latencies_ms)[2],
        (python.cpu_seconds / python.requests() as f64) / (rust.cpu_seconds / rust.requests() as f64),
    );
    println!("  (p99 and CPU: Python / bridge; CPU is each whole process's, its runtime loop's included)");
}

/// `call` over `items`, `concurrency` calls in flight (task `c` takes every `concurrency`-th
/// item from the `c`-th). Each call's latency counts `weight` times: the jobs of a batch each
/// waited for the whole batch.
async fn concurrently<T, F, Fut>(items: Vec<T>, concurrency: usize, weight: usize, call: F) -> Run
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let chunks: Vec<Vec<T>> =
        (0..concurrency).map(|c| items.iter().skip(c).step_by(concurrency).cloned().collect()).collect();
    let (cpu_started, wall_started) = (cpu_seconds(std::process::id()), Instant::now());
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for item in chunk {
                    let started = Instant::now();
                    call(item).await;
                    latencies.extend(std::iter::repeat_n(started.elapsed().as_secs_f64() * 1000.0, weight));
                }
                latencies
            })
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for task in tasks {
        latencies_ms.extend(task.await.unwrap());
    }
    Run {
        cpu_seconds: cpu_seconds(std::process::id()) - cpu_started,
        wall_seconds: wall_started.elapsed().as_secs_f64(),
        aws_calls: None,
        calls_by_operation: Vec::new(),
        latencies_ms,
    }
}

/// A webhook's router under `concurrency` requests at a time.
async fn concurrent(router: axum::Router, events: Vec<Value>, concurrency: usize) -> Run {
    concurrently(events, concurrency, 1, move |event: Value| {
        let router = router.clone();
        async move {
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    })
    .await
}

const WORKER_BATCH: usize = 10;

/// The delivery worker under `concurrency` batches at a time; the figures are per job.
async fn concurrent_worker(worker: Arc<DeployedWorker>, batches: Vec<SqsEvent>, concurrency: usize) -> Run {
    concurrently(batches, concurrency, WORKER_BATCH, move |batch: SqsEvent| {
        let worker = worker.clone();
        async move {
            let response = worker.handle_batch(batch).await;
            assert!(response.batch_item_failures.is_empty(), "every job delivered");
        }
    })
    .await
}

fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<34} {:>8} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "", "req/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req", "AWS calls"
    );
}

// One thread, as the functions run (their `main`s use a current-thread runtime).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = support::size_arg(300, 3);
    let events = inbound_events(n + WARMUP);
    // `-- N bridge-only`: the bridge's inbound path alone, e.g. under a profiler.
    if std::env::args().any(|a| a == "bridge-only") {
        let rust = rust_inbound(&TestAws::new().await, &events).await;
        header(&format!("Inbound SMS webhook, {n} requests one at a time"));
        rust.row("bridge (Rust, sms-webhook)");
        print_calls(&rust);
        return;
    }

    let rust = rust_inbound(&TestAws::new().await, &events).await;
    let python = python_inbound(&TestAws::new().await, &events);
    header(&format!("Inbound SMS webhook, {n} requests one at a time ({CUSTOMERS} customers), same events, same moto"));
    rust.row("bridge (Rust, sms-webhook)");
    python.row("Python, lean (boto3 + twilio validator)");
    let [rust_p99, python_p99] = [percentiles(&rust.latencies_ms)[2], percentiles(&python.latencies_ms)[2]];
    println!(
        "{:<34} {:>8.2}x {:>29.2}x {:>11.1}x {:>9.2}x",
        "Python / bridge",
        (rust.requests() as f64 / rust.wall_seconds) / (python.requests() as f64 / python.wall_seconds),
        python_p99 / rust_p99,
        (python.cpu_seconds / python.requests() as f64) / (rust.cpu_seconds / rust.requests() as f64),
        python.aws_calls.unwrap() as f64 / rust.aws_calls.unwrap() as f64
    );
    println!("  (req/s: bridge / Python; p99, CPU and AWS calls: Python / bridge)");
    println!("the bridge's calls:");
    print_calls(&rust);
    runtime_api_comparison(&events).await;
    if std::env::args().any(|a| a == "inbound-only") {
        return;
    }

    for (name, concurrency_levels) in [("sms-webhook", [1, 8, 32]), ("whatsapp-webhook", [1, 8, 32])] {
        header(&format!("{name}, {n} requests at each concurrency"));
        for concurrency in concurrency_levels {
            let aws = TestAws::new().await;
            let env = test_env(&aws, &[]);
            let (router, events) = if name == "sms-webhook" {
                let config = SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap();
                (sms_webhook::router(Arc::new(SmsWebhook::new(config, aws.store(), aws.queue()))), inbound_events(n))
            } else {
                let config = WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap();
                let events = (0..n).map(|_| agent_message_event(&format!("wamid.bench{}", uuid_like()))).collect();
                (whatsapp_webhook::router(Arc::new(WhatsAppWebhook::new(config, aws.store(), aws.queue()))), events)
            };
            concurrent(router, events, concurrency).await.row(&format!("concurrency {concurrency}"));
        }
    }

    header(&format!(
        "delivery-worker, {n} jobs in batches of {WORKER_BATCH} at each concurrency (per job; p = the batch's duration)"
    ));
    let providers = FakeProviders::start().await;
    for concurrency in [1, 8, 32] {
        let aws = TestAws::new().await;
        let sdk = aws.sdk_config().await;
        let config = DeliveryWorkerConfig::from_lookup(&lookup(&providers.test_env(&aws))).unwrap();
        let worker = Arc::new(DeployedWorker::from_config(config, &sdk));
        let mut batches = Vec::new();
        for b in 0..(n / WORKER_BATCH).max(1) {
            let customers: Vec<String> = (0..WORKER_BATCH).map(|j| customer(b * WORKER_BATCH + j)).collect();
            batches.push(serde_json::from_value(forward_event(&aws, &customers).await).unwrap());
        }
        concurrent_worker(worker, batches, concurrency).await.row(&format!("concurrency {concurrency}"));
    }
}
