//! Round-trip latency through the local stack (docs/local-stack.md), the way a user meets it:
//! the `local-stack` binary with its own moto emulator, SQS poller and worker, and the
//! providers at `GRAPH_API_BASE` / `TWILIO_API_BASE` (HTTP fakes that timestamp arrivals).
//!
//! - inbound: a Twilio-signed SMS is posted → both agents' WhatsApp copies have arrived;
//! - reply: an agent's Meta-signed swipe-reply is posted → the SMS to the customer arrived.
//!
//! `cargo bench -p local-stack --bench round_trip [-- MESSAGES]` (default 120), printing
//! p50/p95/p99/max for each path; `ROUND_TRIP_SAMPLES=file.csv` also writes every sample.
//!
//! The bridge's own share of each path (issue 17): the `local-stack` process's CPU time while
//! the path runs (its threads' `schedstat`, in nanoseconds), less what it burns idle (its SQS
//! poller; measured before and after the messages) over the same time, per message.
//! Everything else in a path's latency is waiting: for moto, for the providers' fakes, for the
//! next poll. The emulator runs in its own process.

#![allow(clippy::unwrap_used)] // a failed unwrap is the benchmark failing

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::adapters::twilio::{compute_signature, encode_form};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

type Arrivals = Arc<Mutex<Vec<(Instant, Value)>>>;

/// Answers like the provider and notes when each request arrived.
struct Stamp {
    arrivals: Arrivals,
    graph: bool,
}

impl Respond for Stamp {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut arrivals = self.arrivals.lock().unwrap();
        let n = arrivals.len();
        if self.graph {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            arrivals.push((now, json!({ "to": body["to"], "wamid": format!("wamid.bench{n}") })));
            ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": format!("wamid.bench{n}") }] }))
        } else {
            let params: Vec<(String, String)> = shared::adapters::twilio::parse_form(&request.body).unwrap();
            arrivals.push((now, json!(params.into_iter().collect::<std::collections::HashMap<_, _>>())));
            ResponseTemplate::new(201).set_body_json(json!({ "sid": format!("SM{n:032}"), "status": "queued" }))
        }
    }
}

async fn fake(graph: bool) -> (MockServer, Arrivals) {
    let server = MockServer::start().await;
    let arrivals: Arrivals = Arc::default();
    Mock::given(method("POST")).respond_with(Stamp { arrivals: arrivals.clone(), graph }).mount(&server).await;
    (server, arrivals)
}

async fn wait_for(arrivals: &Arrivals, count: usize) -> Vec<(Instant, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let seen = arrivals.lock().unwrap();
            if seen.len() >= count {
                return seen.clone();
            }
        }
        assert!(Instant::now() < deadline, "no arrival within 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Each thread's CPU time so far, to the nanosecond (`/proc/<pid>/task/*/schedstat`,
/// Linux; empty elsewhere). `/proc/<pid>/stat` counts 10 ms ticks, too coarse for a few
/// milliseconds a message: the idle rate it gave moved by a quarter between runs.
struct CpuSnapshot(HashMap<String, u64>);

impl CpuSnapshot {
    fn take(pid: u32) -> Self {
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
        Self(
            threads
                .filter_map(|task| {
                    let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
                    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
                    Some((task.file_name().to_string_lossy().into_owned(), nanos))
                })
                .collect(),
        )
    }

    /// CPU used since `earlier`, thread by thread: a thread that ended in between (a blocking
    /// pool's idle one) takes only its last moments with it, not its whole time.
    fn since(&self, earlier: &CpuSnapshot) -> Duration {
        let nanos = self.0.iter().map(|(tid, now)| now.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0))).sum();
        Duration::from_nanos(nanos)
    }
}

/// What the stack burns doing nothing (its SQS poller) over `window`, per second.
async fn idle_rate(pid: u32, window: Duration) -> f64 {
    let from = CpuSnapshot::take(pid);
    tokio::time::sleep(window).await;
    CpuSnapshot::take(pid).since(&from).as_secs_f64() / window.as_secs_f64()
}

/// CPU time a phase used beyond the idle rate, per message.
fn own_cpu_per_message(cpu: Duration, wall: Duration, idle_per_second: f64, messages: usize) -> f64 {
    let own = cpu.as_secs_f64() - idle_per_second * wall.as_secs_f64();
    own.max(0.0) * 1000.0 / messages.max(1) as f64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<36} n={:<4} p50={:>7.1} ms  p95={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.95)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap()),
    );
}

#[tokio::main]
async fn main() {
    let asked = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(120);
    // `BENCH_SMOKE`: CI's run (`.ci/bench-smoke`), to prove the bench still runs.
    let messages: usize = if std::env::var_os("BENCH_SMOKE").is_some() { 3 } else { asked };
    let (graph, whatsapp_arrivals) = fake(true).await;
    let (twilio, sms_arrivals) = fake(false).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut stack = Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--port", &port.to_string()])
        .env("GRAPH_API_BASE", graph.uri())
        .env("TWILIO_API_BASE", twilio.uri())
        // Pacing is measured elsewhere: a US long code's 1 SMS/s would time the pacer here.
        .env("SMS_MESSAGES_PER_SECOND", "100")
        // One customer's copies follow each other within a second: the bridge's own path is
        // measured, not WhatsApp's pair limit (the digests bench measures that).
        .env("WHATSAPP_PAIR_SECONDS", "0")
        .env("RUST_LOG", std::env::var("ROUND_TRIP_STACK_LOG").unwrap_or_else(|_| "warn".into()))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("BRIDGE_LINES")
        .env_remove("BRIDGE_LINES_FILE")
        .stdout(Stdio::piped())
        .stderr(match std::env::var("ROUND_TRIP_STACK_STDERR") {
            Ok(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            Err(_) => Stdio::null(),
        })
        .spawn()
        .unwrap();
    let stdout = stack.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(180)).expect("local stack ready");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // What the stack burns doing nothing (its poller): subtracted from each phase's CPU.
    // Measured before and after the messages; the mean is subtracted.
    let idle_for = Duration::from_secs(if std::env::var_os("BENCH_SMOKE").is_some() { 1 } else { 10 });
    let idle_before = idle_rate(stack.id(), idle_for).await;
    let (mut inbound_cpu, mut inbound_wall, mut reply_cpu, mut reply_wall) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);

    let warm_up = 5;
    let (mut inbound, mut reply, mut webhook, mut first_copy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..warm_up + messages {
        // A customer texts.
        let sid = format!("SM{i:032}");
        let params = [
            ("MessageSid", sid.as_str()),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+14155550134"),
            ("To", "+14155550100"),
            ("Body", "Is my order ready?"),
            ("NumMedia", "0"),
        ];
        let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let url = format!("{base}/sms/inbound");
        let before = whatsapp_arrivals.lock().unwrap().len();
        let cpu_before = CpuSnapshot::take(stack.id());
        let started = Instant::now();
        let status = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", compute_signature("local-twilio-auth-token", &url, &owned))
            .body(encode_form(&params))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let answered = Instant::now();
        let copies = wait_for(&whatsapp_arrivals, before + 2).await;
        let (arrived, _) = copies[before + 1];
        let (inbound_done, cpu_inbound_done) = (Instant::now(), CpuSnapshot::take(stack.id()));
        let copy_wamid = copies[before..].iter().find(|(_, c)| c["to"] == "14155550111").unwrap().1["wamid"].clone();
        // The copy reached the fake Graph API; the worker records its reply route just after
        // WhatsApp answers. A swipe within those milliseconds (no person is that quick) found
        // no route and was asked "which conversation?", and the bench waited for an SMS that
        // never came (1 run in 5). Not timed: the reply's clock starts after this.
        tokio::time::sleep(Duration::from_millis(100)).await;

        // The agent swipe-replies to their copy.
        let notification = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "14155550100", "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "Agent" }, "wa_id": "14155550111" }],
                "messages": [{ "from": "14155550111", "id": format!("wamid.agent{i}"), "timestamp": "1", "type": "text",
                               "text": { "body": "Yes, ready at 9" }, "context": { "from": "14155550100", "id": copy_wamid } }],
            }}]}],
        })
        .to_string();
        let signature =
            shared::adapters::whatsapp::signature::compute_signature("local-meta-app-secret", notification.as_bytes());
        let sms_before = sms_arrivals.lock().unwrap().len();
        let replied = Instant::now();
        let status = http
            .post(format!("{base}/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(notification)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let sms = wait_for(&sms_arrivals, sms_before + 1).await;
        let (reply_done, cpu_reply_done) = (Instant::now(), CpuSnapshot::take(stack.id()));
        if i >= warm_up {
            inbound_cpu += cpu_inbound_done.since(&cpu_before);
            inbound_wall += inbound_done - started;
            reply_cpu += cpu_reply_done.since(&cpu_inbound_done);
            reply_wall += reply_done - inbound_done;
            inbound.push(arrived - started);
            webhook.push(answered - started);
            first_copy.push(copies[before].0 - started);
            reply.push(sms[sms_before].0 - replied);
        }
    }
    if let Ok(path) = std::env::var("ROUND_TRIP_SAMPLES") {
        let rows: Vec<String> = (0..inbound.len())
            .map(|i| {
                format!(
                    "{i},{},{},{},{}",
                    webhook[i].as_millis(),
                    first_copy[i].as_millis(),
                    inbound[i].as_millis(),
                    reply[i].as_millis()
                )
            })
            .collect();
        std::fs::write(&path, format!("message,webhook_ms,first_copy_ms,inbound_ms,reply_ms\n{}\n", rows.join("\n")))
            .unwrap();
    }
    let idle_after = idle_rate(stack.id(), idle_for).await;
    let idle_per_second = (idle_before + idle_after) / 2.0;
    println!("local stack round trip ({messages} messages, after {warm_up} warm-up)");
    report("inbound SMS webhook answered (200)", webhook);
    report("inbound SMS -> first agent's copy", first_copy);
    report("inbound SMS -> both agents' copies", inbound);
    report("agent reply -> SMS to the customer", reply);
    println!(
        "the bridge's own CPU per message (the local-stack process, less its idle {:.1} ms/s: {:.1} before, {:.1} after): \
         inbound SMS -> both copies {:.2} ms, agent reply -> SMS {:.2} ms",
        idle_per_second * 1000.0,
        idle_before * 1000.0,
        idle_after * 1000.0,
        own_cpu_per_message(inbound_cpu, inbound_wall, idle_per_second, messages),
        own_cpu_per_message(reply_cpu, reply_wall, idle_per_second, messages),
    );
    let _ = Command::new("kill").args(["-INT", &stack.id().to_string()]).status();
    let _ = stack.wait();
}
