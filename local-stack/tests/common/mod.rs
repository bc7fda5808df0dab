//! The local stack binary as its tests start it: a free port, a clean environment (its own
//! emulator, simulator and sample line unless a test says otherwise), `ready` awaited, all it
//! prints kept, and Ctrl-C to stop it. `Page` plays the two phones through the page's API.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it; unwrap failing = test failing

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// At most four local stacks at a time (the test threads `.cargo/config.toml` sets): each
/// runs its own emulator, worker and simulator. Four once slowed a run past a 60 s wait, when
/// the simulator dropped a status webhook the bridge answered with a 500; it re-posts them
/// now, and three runs of four at once took 22 s each (2026-12-05). More threads wait here.
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
const AT_ONCE: usize = 4;

struct Slot;

impl Slot {
    fn take() -> Self {
        let (running, freed) = &RUNNING;
        let mut running = running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *running >= AT_ONCE {
            running = freed.wait(running).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (running, freed) = &RUNNING;
        *running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        freed.notify_one();
    }
}

pub struct LocalStack {
    child: Child,
    pub port: u16,
    /// The line it printed when ready.
    pub ready_line: String,
    /// Every line it printed, stdout and stderr (the functions' logs and metrics included).
    printed: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    _slot: Slot,
}

impl LocalStack {
    /// Starts `local-stack --port <free> <args>` with `env` added to a clean environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let slot = Slot::take();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-stack"));
        command.args(["--port", &port.to_string()]).args(args);
        for name in [
            "AWS_ENDPOINT_URL",
            "GRAPH_API_BASE",
            "TWILIO_API_BASE",
            "BRIDGE_LINES",
            "BRIDGE_LINES_FILE",
            "PUBLIC_BASE_URL",
            "META_APP_SECRET",
            "META_ACCESS_TOKEN",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "AWS_SMS_CONFIGURATION_SET",
            "AWS_SMS_INBOUND_TOPIC_ARN",
            "AWS_SMS_EVENTS_TOPIC_ARN",
            "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2",
        ] {
            command.env_remove(name);
        }
        // Tests look for each copy and swipe-reply to it: no pair spacing (no digests)
        // unless a test sets WHATSAPP_PAIR_SECONDS itself.
        command.env("WHATSAPP_PAIR_SECONDS", "0");
        command.envs(env.iter().copied());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let kept = Arc::clone(&printed);
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = ready_tx.send(line.clone());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let kept = Arc::clone(&printed);
        let stderr_reader = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            kept.lock().unwrap().extend(all.lines().map(str::to_owned));
        });
        let ready_line = ready_rx.recv_timeout(Duration::from_secs(120)).expect("the local stack prints ready");
        Self { child, port, ready_line, printed, readers: vec![stdout_reader, stderr_reader], _slot: slot }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it (Ctrl-C) and returns every line it printed.
    pub fn stop_and_collect(mut self) -> Vec<String> {
        self.stop();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.printed.lock().unwrap())
    }

    /// Ctrl-C, as a person would: everything it started must stop, cleanly.
    pub fn stop(&mut self) {
        let interrupted = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(interrupted.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exits cleanly on Ctrl-C: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "still running 15 s after Ctrl-C");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the stack printed last: what it was doing meanwhile.
        if std::thread::panicking() {
            let printed = self.printed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let shown: Vec<&String> = printed.iter().filter(|l| !l.contains("\"_aws\"")).collect();
            eprintln!("--- the local stack's last lines ---");
            for line in &shown[shown.len().saturating_sub(150)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Polls `check` until it finds something, for at most `seconds`.
pub async fn until<T>(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out after {seconds} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The two phones of the page, through its JSON API.
pub struct Page {
    base: String,
    http: reqwest::Client,
}

impl Page {
    pub fn new(stack: &LocalStack) -> Self {
        Self { base: stack.base(), http: reqwest::Client::new() }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn state(&self) -> Value {
        self.get("/_sim/state").await
    }

    pub async fn customer_texts(&self, from: &str, text: &str) {
        let (status, answer) = self.post("/_sim/customer/send", json!({ "from": from, "text": text })).await;
        assert_eq!((status, answer["webhook_status"].as_u64()), (200, Some(200)), "{answer}");
    }

    pub async fn agent_sends(&self, agent: &str, text: &str, context: Option<&str>) -> String {
        let (status, answer) =
            self.post("/_sim/agent/send", json!({ "from": agent, "text": text, "context": context })).await;
        assert_eq!((status, answer["webhook_status"].as_u64()), (200, Some(200)), "{answer}");
        answer["wamid"].as_str().unwrap().to_owned()
    }

    /// What the business sent to `agent` that mentions `text` (forwarded copies).
    pub async fn to_agent(&self, agent: &str, text: &str) -> Vec<Value> {
        let state = self.state().await;
        state["whatsapp"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["agent"] == agent && m["direction"] == "to_agent" && m.to_string().contains(text))
            .cloned()
            .collect()
    }

    /// Waits for `agent`'s delivered copy of `text`; returns every copy they were sent.
    pub async fn delivered_copy(&self, agent: &str, text: &str) -> (Value, Vec<Value>) {
        until(&format!("{agent}'s copy of {text:?}"), 60, async || {
            let copies = self.to_agent(agent, text).await;
            copies.iter().find(|m| m["status"] == "delivered" || m["status"] == "read").cloned().map(|c| (c, copies))
        })
        .await
    }

    /// SMS the customer's phone received with `text`, once it has a final status.
    pub async fn sms_to(&self, customer: &str, text: &str) -> Vec<Value> {
        until(&format!("the SMS {text:?} to {customer}"), 60, async || {
            let state = self.state().await;
            let sms: Vec<Value> = state["sms"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["customer"] == customer && m["direction"] == "out" && m["body"] == text)
                .cloned()
                .collect();
            let done = !sms.is_empty()
                && sms.iter().all(|m| matches!(m["status"].as_str(), Some("delivered" | "undelivered" | "failed")));
            done.then_some(sms)
        })
        .await
    }

    /// The file behind a media reference the page shows.
    pub async fn media_bytes(&self, media: &Value) -> Vec<u8> {
        let preview = media["preview_url"].as_str().unwrap_or_else(|| panic!("no preview in {media}"));
        let response = self.http.get(format!("{}{preview}", self.base)).send().await.unwrap();
        assert!(response.status().is_success(), "{preview}");
        response.bytes().await.unwrap().to_vec()
    }

    /// The agent as the page lists them: `wa_id`, `name`, `user_id`, `username`, `number_hidden`.
    pub async fn agent(&self, agent: &str) -> Value {
        let state = self.state().await;
        let agents = state["lines"][0]["agents"].as_array().unwrap().clone();
        agents.into_iter().find(|a| a["wa_id"] == agent).unwrap_or_else(|| panic!("no agent {agent}"))
    }

    /// Flips the agent's username switch: while on, WhatsApp hides their number from the bridge.
    pub async fn hide_number(&self, agent: &str, hidden: bool) {
        let (status, answer) =
            self.post("/_sim/agent/username", json!({ "agent": agent, "number_hidden": hidden })).await;
        assert_eq!((status, &answer["number_hidden"]), (200, &json!(hidden)), "{answer}");
    }

    /// The agent's own message `wamid` as their phone shows it.
    pub async fn agents_message(&self, agent: &str, wamid: &str) -> Value {
        let state = self.state().await;
        let messages = state["whatsapp"].as_array().unwrap().clone();
        messages
            .into_iter()
            .find(|m| m["agent"] == agent && m["direction"] == "from_agent" && m["id"] == wamid)
            .unwrap_or_else(|| panic!("{agent} sent no {wamid}"))
    }

    /// Waits until the business marked the agent's message read (the bridge's receipt that the
    /// customer's SMS was delivered: blue ticks, not a ✅ message).
    pub async fn marked_read(&self, agent: &str, wamid: &str) {
        until(&format!("{agent}'s {wamid} marked read"), 60, async || {
            (self.agents_message(agent, wamid).await["read_by_business"] == "marked").then_some(())
        })
        .await;
    }

    pub async fn handle_of(&self, customer: &str) -> String {
        let thread = self.get(&format!("/_sim/thread?customer={}", customer.replace('+', "%2B"))).await;
        format!("#{}", thread["handle"].as_str().unwrap())
    }
}
