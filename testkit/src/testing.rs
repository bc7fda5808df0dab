//! Test helpers: one moto server per test process, a fresh table and
//! queue per test, and providers' signatures computed the documented way.

pub mod aws_sms;
pub mod logs;

use shared::app::copy_facts_cache::CopyFactsCache;
use std::collections::HashMap;
use std::sync::OnceLock;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;

use bridge_emulator::MotoServer;
use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore, create_table};
use shared::adapters::sqs::{SqsQueue, create_queues};

pub type Item = HashMap<String, AttributeValue>;

/// Test auth tokens: fixed so failures are reproducible, never real.
pub const TWILIO_AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const META_APP_SECRET: &str = "test-meta-app-secret";
pub const META_VERIFY_TOKEN: &str = "test-meta-verify-token";
pub const META_ACCESS_TOKEN: &str = "test-meta-access-token";
pub const PUBLIC_BASE_URL: &str = "https://bridge.example.com";
pub const TWILIO_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

pub const LINE_SMS_NUMBER: &str = "+14155550100";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const AGENTS: [&str; 2] = ["14155550111", "14155550112"];
pub const CUSTOMER: &str = "+14155550134";
/// The numbers the test line and its usual customer use: no log line may hold them.
pub const KNOWN_NUMBERS: [&str; 4] = [CUSTOMER, LINE_SMS_NUMBER, AGENTS[0], AGENTS[1]];

/// The `BRIDGE_LINES` document the tests run with: one line, two agents.
pub fn lines_json() -> String {
    format!(
        r#"[{{ "id": "main", "sms_number": "{LINE_SMS_NUMBER}", "sms_provider": "twilio",
            "whatsapp_phone_number_id": "{PHONE_NUMBER_ID}", "agents": ["{}", "{}"],
            "template": {{ "name": "new_customer_message", "language": "en" }},
            "delivery_receipts": "reaction" }}]"#,
        AGENTS[0], AGENTS[1]
    )
}

pub fn lines() -> shared::domain::Lines {
    shared::domain::Lines::from_json("test", &lines_json()).expect("test lines are valid")
}

/// The emulator endpoint for what isn't a [`TestAws`]'s (SSM, a child process's
/// environment): `AWS_ENDPOINT_URL` when the caller started one, else the first moto server
/// this process starts (it exits with the process).
pub fn emulator_endpoint() -> &'static str {
    emulator(0)
}

/// How many moto servers a test process runs. moto answers one request at a time (one
/// lock, one Python interpreter), so with tests running in parallel a second server lets
/// two tests' AWS calls run at once. Each [`TestAws`] lives on one of them.
const EMULATORS: usize = 2;

/// The `n`th emulator of this process, started on first use; all of them are
/// `AWS_ENDPOINT_URL` when the caller started one.
fn emulator(n: usize) -> &'static str {
    static STARTED: [OnceLock<String>; EMULATORS] = [const { OnceLock::new() }; EMULATORS];
    STARTED[n % EMULATORS].get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = MotoServer::start(None).expect("moto emulator starts");
            let endpoint = server.endpoint().to_owned();
            // Lives as long as the process; moto's launcher exits when we do.
            std::mem::forget(server);
            endpoint
        }
    })
}

/// A table and queues of its own for one test, on one of the process's emulators.
pub struct TestAws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    /// The emulator its table and queues are on: every client of the test must use it.
    pub endpoint: &'static str,
}

impl TestAws {
    /// Queues as `template.yaml` deploys them: the redrive's `maxReceiveCount` is 1000, a
    /// backstop for poison (the worker decides by a job's age).
    pub async fn new() -> Self {
        Self::with_max_receive_count(1000).await
    }

    /// Queues whose redrive moves a job to the DLQ after `max_receive_count` deliveries.
    pub async fn with_max_receive_count(max_receive_count: u32) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Starting moto blocks; a fresh server is started off the async runtime's thread.
        let endpoint = tokio::task::spawn_blocking(move || emulator(n)).await.expect("the emulator starts");
        let config = shared::aws::emulator_sdk_config(endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = format!("t{}", uuid::Uuid::now_v7().simple());
        create_table(&dynamodb, &name).await.expect("table created");
        let (queue_url, dlq_url) = create_queues(&sqs, &name, max_receive_count).await.expect("queues created");
        Self { dynamodb, sqs, table: name, queue_url, dlq_url, endpoint }
    }

    /// SDK settings for more clients on this test's emulator (the functions' own).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        shared::aws::emulator_sdk_config(self.endpoint).await
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), &self.table, DEFAULT_MESSAGE_RETENTION)
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.queue_url)
    }

    /// Every item in the table.
    pub async fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Items whose partition key starts with `prefix` (`CONV#`, `SEEN#`...).
    pub async fn items_with_prefix(&self, prefix: &str) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|i| matches!(i.get("PK"), Some(AttributeValue::S(pk)) if pk.starts_with(prefix)))
            .collect()
    }

    /// Messages on the delivery queue, visible or in flight.
    pub async fn queue_depth(&self) -> usize {
        queue_depth(&self.sqs, &self.queue_url).await
    }

    pub async fn dlq_depth(&self) -> usize {
        queue_depth(&self.sqs, &self.dlq_url).await
    }

    /// Takes every visible job off the delivery queue, in queue order.
    pub async fn take_jobs(&self) -> Vec<shared::domain::Job> {
        let mut jobs = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return jobs;
            }
            for m in messages {
                jobs.push(shared::domain::Job::decode(m.body().unwrap_or_default()).expect("a job"));
                let receipt = m.receipt_handle().unwrap_or_default();
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attributes.values().map(|v| v.parse::<usize>().expect("a count")).sum()
}

/// A string attribute of an item (panics if absent: tests want to know).
pub fn attr_s<'a>(item: &'a Item, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v,
        other => panic!("attribute {name} is not a string: {other:?}"),
    }
}

/// A Twilio inbound-message form, as Twilio posts it, and its `X-Twilio-Signature`
/// computed the documented way over `PUBLIC_BASE_URL` + `path`.
pub fn signed_twilio_form(path: &str, params: &[(&str, &str)]) -> (String, String) {
    let body = shared::adapters::twilio::encode_form(params);
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let signature =
        shared::adapters::twilio::compute_signature(TWILIO_AUTH_TOKEN, &format!("{PUBLIC_BASE_URL}{path}"), &owned);
    (body, signature)
}

/// The parameters Twilio sends for an inbound SMS.
pub fn twilio_inbound_params<'a>(message_sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", message_sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", LINE_SMS_NUMBER),
        ("MessagingServiceSid", "MG00000000000000000000000000000000"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", message_sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// A fresh `SM…` sid.
pub fn message_sid() -> String {
    format!("SM{}", uuid::Uuid::new_v4().simple())
}

/// Counts the AWS calls a client makes (every attempt), by `Service.Operation`.
#[derive(Debug, Clone, Default)]
pub struct AwsCallCounter {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Each call's request body size, in bytes (what SigV4 hashes and the SDK serialized).
    body_bytes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl AwsCallCounter {
    /// Calls since the last `take`, in order.
    pub fn take(&self) -> Vec<String> {
        self.body_bytes.lock().expect("counter lock").clear();
        std::mem::take(&mut *self.calls.lock().expect("counter lock"))
    }

    /// Calls since the last `take`, each with its request body's size in bytes.
    pub fn take_with_sizes(&self) -> Vec<(String, usize)> {
        let sizes = std::mem::take(&mut *self.body_bytes.lock().expect("counter lock"));
        std::mem::take(&mut *self.calls.lock().expect("counter lock")).into_iter().zip(sizes).collect()
    }

    /// A DynamoDB client like `client`, counted.
    pub fn dynamodb(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(self.clone()).build())
    }

    /// An SQS client like `client`, counted.
    pub fn sqs(&self, client: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(client.config().to_builder().interceptor(self.clone()).build())
    }
}

impl aws_sdk_dynamodb::config::Intercept for AwsCallCounter {
    fn name(&self) -> &'static str {
        "AwsCallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        let operation =
            cfg.load::<Metadata>().map_or_else(|| "?".to_owned(), |m| format!("{}.{}", m.service(), m.name()));
        let size = context.request().body().bytes().map_or(0, <[u8]>::len);
        self.body_bytes.lock().expect("counter lock").push(size);
        self.calls.lock().expect("counter lock").push(operation);
        Ok(())
    }
}

/// The docs/configuration.md environment for a test on `aws`, with `extra` added or replacing entries.
pub fn test_env(aws: &TestAws, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("BRIDGE_LINES", lines_json().as_str()),
        ("TABLE_NAME", aws.table.as_str()),
        ("DELIVERY_QUEUE_URL", aws.queue_url.as_str()),
        ("DEAD_LETTER_QUEUE_URL", aws.dlq_url.as_str()),
        // Retries come back within a second or two, so tests don't wait minutes.
        ("RETRY_BASE_SECONDS", "1"),
        ("RETRY_MAX_SECONDS", "2"),
        ("PROVIDER_TIMEOUT_SECONDS", "2"),
        // Webhooks give up on DynamoDB and SQS after 2 s, not the deployed 6 s.
        ("WEBHOOK_RETRY_SECONDS", "2"),
        ("WHATSAPP_MESSAGES_PER_SECOND", "1000"),
        ("SMS_MESSAGES_PER_SECOND", "1000"),
        // Tests send an agent several copies within seconds and look for each: no pair
        // spacing, no digests, unless a test asks (tests/tests/digests.rs).
        ("WHATSAPP_PAIR_SECONDS", "0"),
        ("PUBLIC_BASE_URL", PUBLIC_BASE_URL),
        ("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
        ("META_APP_SECRET", META_APP_SECRET),
        ("META_VERIFY_TOKEN", META_VERIFY_TOKEN),
        ("META_ACCESS_TOKEN", META_ACCESS_TOKEN),
        ("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// `env` as a [`shared::config::Lookup`].
pub fn lookup(env: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| env.get(name).cloned()
}

/// What Lambda sets in every function's environment that the functions read: the region
/// and the execution role's credentials (dummies here).
pub const LAMBDA_ENV: [(&str, &str); 4] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
];

/// Runs a function's binary with only [`LAMBDA_ENV`], `env` (which wins) and `PATH` set;
/// returns whether it exited successfully and what it printed. A configuration error ends
/// the cold start before the binary ever asks the Lambda runtime API for an event.
pub fn cold_start(binary: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = std::process::Command::new(binary);
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in LAMBDA_ENV.iter().chain(env) {
        command.env(k, v);
    }
    let output = command.output().expect("function binary runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// A line whose one field `field` is replaced by `value`: for cold-start tests.
pub fn lines_with(field: &str, value: &str) -> String {
    let mut lines: serde_json::Value = serde_json::from_str(&lines_json()).expect("test lines are JSON");
    lines[0][field] = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
    lines.to_string()
}

/// Fakes of the two providers' send APIs, answering like the real ones (a fresh wamid or
/// `SM…` sid per send) unless a test mounts its own answer, which wins.
pub struct FakeProviders {
    pub graph: wiremock::MockServer,
    pub twilio: wiremock::MockServer,
    /// How many messages the Graph fake accepted: every wamid is new, slow answers included.
    graph_count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// What the Twilio fake accepted, newest first: its Messages list.
    twilio_messages: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

/// Mounted below a test's own mocks (wiremock: lower priority number wins; default 5).
const DEFAULT_ANSWER_PRIORITY: u8 = 10;

impl FakeProviders {
    pub async fn start() -> Self {
        use wiremock::matchers::{header, method, path, path_regex};
        let graph = wiremock::MockServer::start().await;
        let graph_accepts = GraphAccepts::default();
        let graph_count = graph_accepts.0.clone();
        wiremock::Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
            .and(header("authorization", format!("Bearer {META_ACCESS_TOKEN}").as_str()))
            .respond_with(graph_accepts)
            .with_priority(DEFAULT_ANSWER_PRIORITY)
            .mount(&graph)
            .await;
        // The read `bridge-ops redrive` checks the token with: the test line's number.
        wiremock::Mock::given(method("GET"))
            .and(path_regex(format!(r"^/v[0-9.]+/{PHONE_NUMBER_ID}$")))
            .and(header("authorization", format!("Bearer {META_ACCESS_TOKEN}").as_str()))
            .respond_with(
                wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "id": PHONE_NUMBER_ID })),
            )
            .with_priority(DEFAULT_ANSWER_PRIORITY)
            .mount(&graph)
            .await;
        let twilio = wiremock::MockServer::start().await;
        let accepted = TwilioAccepts::default();
        let twilio_messages = accepted.messages.clone();
        let listed = TwilioLists(accepted.messages.clone());
        wiremock::Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")))
            .and(header("authorization", twilio_basic_auth().as_str()))
            .respond_with(accepted)
            .with_priority(DEFAULT_ANSWER_PRIORITY)
            .mount(&twilio)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path(format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")))
            .and(header("authorization", twilio_basic_auth().as_str()))
            .respond_with(listed)
            .with_priority(DEFAULT_ANSWER_PRIORITY)
            .mount(&twilio)
            .await;
        // The account fetch `bridge-ops redrive` checks the credentials with.
        wiremock::Mock::given(method("GET"))
            .and(path(format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}.json")))
            .and(header("authorization", twilio_basic_auth().as_str()))
            .respond_with(
                wiremock::ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({ "sid": TWILIO_ACCOUNT_SID, "status": "active", "type": "Full" }),
                ),
            )
            .with_priority(DEFAULT_ANSWER_PRIORITY)
            .mount(&twilio)
            .await;
        Self { graph, twilio, graph_count, twilio_messages }
    }

    /// The next `times` WhatsApp sends are accepted (Meta has them, with a wamid) but answered
    /// only after `delay`: longer than the client waits, the send's outcome is lost.
    pub async fn graph_accepts_then_hangs(&self, delay: std::time::Duration, times: u64) {
        use wiremock::matchers::{method, path_regex};
        wiremock::Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
            .respond_with(Delayed(GraphAccepts(self.graph_count.clone()), delay))
            .up_to_n_times(times)
            .with_priority(DEFAULT_ANSWER_PRIORITY - 1)
            .mount(&self.graph)
            .await;
    }

    /// From now on the Graph fake keeps WhatsApp's pair limit: a message to a user sooner than
    /// `spacing` (less a tenth: the sends' own jitter) after the last one accepted for them is
    /// refused with 131056, as Meta refuses it. Returns what it counts.
    pub async fn graph_keeps_pair_limit(&self, spacing: std::time::Duration) -> PairLimit {
        use wiremock::matchers::{method, path_regex};
        let limit = PairLimit {
            rule: std::sync::Arc::new(PairRule::new(spacing)),
            count: self.graph_count.clone(),
            accepted: std::sync::Arc::default(),
        };
        wiremock::Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
            .respond_with(limit.clone())
            .with_priority(DEFAULT_ANSWER_PRIORITY - 1)
            .mount(&self.graph)
            .await;
        limit
    }

    /// The same for Twilio: the next `times` SMS are created (listed, with a sid) and answered late.
    pub async fn twilio_accepts_then_hangs(&self, delay: std::time::Duration, times: u64) {
        use wiremock::matchers::{method, path};
        let accepts = TwilioAccepts { messages: self.twilio_messages.clone(), ..TwilioAccepts::default() };
        // Numbered apart from the default answers' sids.
        accepts.count.store(9_000, std::sync::atomic::Ordering::SeqCst);
        wiremock::Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")))
            .respond_with(Delayed(accepts, delay))
            .up_to_n_times(times)
            .with_priority(DEFAULT_ANSWER_PRIORITY - 1)
            .mount(&self.twilio)
            .await;
    }

    /// `GRAPH_API_BASE` and `TWILIO_API_BASE` pointing at the fakes.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [("GRAPH_API_BASE", self.graph.uri()), ("TWILIO_API_BASE", self.twilio.uri())]
    }

    /// The docs/configuration.md environment for a test on `aws`, sending to these fakes.
    pub fn test_env(&self, aws: &TestAws) -> HashMap<String, String> {
        let env = self.env();
        let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        test_env(aws, &extra)
    }

    /// Every WhatsApp send's JSON body, in order.
    pub async fn whatsapp_sent(&self) -> Vec<serde_json::Value> {
        let requests = self.graph.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.method == wiremock::http::Method::POST)
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
            .collect()
    }

    /// Every SMS send's form parameters, in order.
    pub async fn sms_sent(&self) -> Vec<HashMap<String, String>> {
        let requests = self.twilio.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.method == wiremock::http::Method::POST)
            .map(|r| shared::adapters::twilio::parse_form(&r.body).expect("a form body").into_iter().collect())
            .collect()
    }
}

pub fn twilio_basic_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}"))
    )
}

/// A provider's answer, sent only after a delay.
pub struct Delayed<R>(R, std::time::Duration);

impl<R: wiremock::Respond> wiremock::Respond for Delayed<R> {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0.respond(request).set_delay(self.1)
    }
}

/// The Cloud API's answer to a send: a new wamid each time; to a read mark
/// (`"status": "read"`), `{"success": true}` as Meta answers it.
#[derive(Default)]
pub struct GraphAccepts(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl wiremock::Respond for GraphAccepts {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body = serde_json::from_slice::<serde_json::Value>(&request.body).unwrap_or_default();
        if body["status"] == "read" {
            return wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "success": true }));
        }
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let to = body["to"].clone();
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.fake{n:04}") }],
        }))
    }
}

/// A Graph fake keeping WhatsApp's pair limit (`FakeProviders::graph_keeps_pair_limit`):
/// when each user last got a message, and how many sends it refused.
#[derive(Clone, Default)]
pub struct PairLimit {
    rule: std::sync::Arc<PairRule>,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, serde_json::Value)>>>,
}

/// WhatsApp's pair limit as the fakes keep it (over HTTP, [`PairLimit`]; in process, the
/// digests bench): a message to someone who got one less than `spacing` ago is refused,
/// 131056. The bridge spaces its reservations and each send then takes its own few
/// milliseconds to leave, so the rule allows a tenth of the spacing.
#[derive(Debug, Default)]
pub struct PairRule {
    spacing: std::time::Duration,
    last: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    refused: std::sync::atomic::AtomicUsize,
}

impl PairRule {
    pub fn new(spacing: std::time::Duration) -> Self {
        Self { spacing, ..Self::default() }
    }

    /// Whether a message to `to` at `now` keeps the limit; if it does, it is `to`'s last.
    pub fn admit(&self, to: &str, now: std::time::Instant) -> bool {
        let mut last = self.last.lock().expect("pair limit lock");
        if last.get(to).is_some_and(|at| now.duration_since(*at) < self.spacing.mul_f64(0.9)) {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return false;
        }
        last.insert(to.to_owned(), now);
        true
    }

    /// Messages refused with 131056.
    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl PairLimit {
    /// Sends refused with 131056.
    pub fn refused(&self) -> usize {
        self.rule.refused()
    }

    /// The messages accepted, with when.
    pub fn accepted(&self) -> Vec<(std::time::Instant, serde_json::Value)> {
        self.accepted.lock().expect("pair limit lock").clone()
    }
}

impl wiremock::Respond for PairLimit {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body = serde_json::from_slice::<serde_json::Value>(&request.body).unwrap_or_default();
        if body["status"] == "read" {
            return wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "success": true }));
        }
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let now = std::time::Instant::now();
        if !self.rule.admit(&to, now) {
            // Meta's answer past the pair rate (Cloud API error codes: 131056).
            return wiremock::ResponseTemplate::new(400).set_body_json(serde_json::json!({ "error": {
                "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                "type": "OAuthException", "code": 131056, "fbtrace_id": "Afake",
            }}));
        }
        self.accepted.lock().expect("pair limit lock").push((now, body.clone()));
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.fake{n:04}") }],
        }))
    }
}

/// Twilio's answer to a send: `201 Created` with a new `SM…` sid. It keeps what it accepted
/// for its Messages list.
#[derive(Default)]
pub struct TwilioAccepts {
    count: std::sync::atomic::AtomicUsize,
    messages: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl wiremock::Respond for TwilioAccepts {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let form: HashMap<String, String> =
            shared::adapters::twilio::parse_form(&request.body).unwrap_or_default().into_iter().collect();
        let created = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000").to_string();
        let message = serde_json::json!({
            "sid": format!("SM{n:032}"),
            "status": "queued",
            "account_sid": TWILIO_ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body").cloned().unwrap_or_default(),
            "date_created": created,
        });
        self.messages.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(0, message.clone());
        wiremock::ResponseTemplate::new(201).set_body_json(message)
    }
}

/// Twilio's Messages list (`GET …/Messages.json?To=&From=`): what the fake accepted, newest
/// first, filtered as Twilio filters.
pub struct TwilioLists(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl wiremock::Respond for TwilioLists {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let messages = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let matching: Vec<serde_json::Value> = messages
            .into_iter()
            .filter(|m| ["To", "From"].iter().all(|k| query.get(*k).is_none_or(|v| m[k.to_lowercase()] == *v)))
            .collect();
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "messages": matching, "page": 0 }))
    }
}

/// A provider's answer a test turns on and off: every request gets `answer` while it is on
/// (a revoked token, an outage), then the fakes' usual answers again.
///
/// Not `mount_as_scoped`: in wiremock 0.6.5 a scoped mock's guard deactivates the mock at its
/// mount position, but each request sorts the server's mocks by priority, so once mocks of
/// several priorities are mounted the guard can switch off another mock (read in its
/// `mock_set.rs`, 2026-12-06).
#[derive(Clone)]
pub struct FaultSwitch(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl FaultSwitch {
    /// Mounts `answer` for every request to `server` (at the default priority: a test's
    /// more specific mocks of priority 1 still win), switched on.
    pub async fn mount(server: &wiremock::MockServer, answer: wiremock::ResponseTemplate) -> Self {
        let switch = Self(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)));
        wiremock::Mock::given(switch.clone()).respond_with(answer).mount(server).await;
        switch
    }

    pub fn off(&self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl wiremock::Match for FaultSwitch {
    fn matches(&self, _: &wiremock::Request) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A Graph API error answer, as Meta sends it.
pub fn graph_error(status: u16, code: i64) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "error": { "message": "(#x) error", "type": "OAuthException", "code": code, "fbtrace_id": "AbC" }
    }))
}

/// A Twilio API error answer.
pub fn twilio_error(status: u16, code: i64) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "code": code, "message": "error", "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status
    }))
}

/// A Meta webhook notification carrying `messages` and `statuses` for the test line, with
/// its `X-Hub-Signature-256`.
pub fn signed_meta_notification(messages: &[serde_json::Value], statuses: &[serde_json::Value]) -> (String, String) {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "14155550100", "phone_number_id": PHONE_NUMBER_ID },
            // One contact per sender, with the ids its message has (Meta leaves out the
            // phone number of some users with a username, never the user id).
            "contacts": messages.iter().map(|m| {
                let mut contact = serde_json::json!({ "profile": { "name": "Agent" } });
                for (field, id) in [("wa_id", &m["from"]), ("user_id", &m["from_user_id"])] {
                    if !id.is_null() {
                        contact[field] = id.clone();
                    }
                }
                contact
            }).collect::<Vec<_>>(),
            "messages": messages,
            "statuses": statuses,
        }}]}],
    })
    .to_string();
    let signature = shared::adapters::whatsapp::signature::compute_signature(META_APP_SECRET, body.as_bytes());
    (body, signature)
}

/// A text message from `from`, optionally swipe-replying to `context`.
pub fn whatsapp_text(from: &str, text: &str, context: Option<&str>) -> serde_json::Value {
    let mut message = serde_json::json!({
        "from": from,
        "id": format!("wamid.in.{}", uuid::Uuid::new_v4().simple()),
        "timestamp": "1764072000",
        "type": "text",
        "text": { "body": text },
    });
    if let Some(id) = context {
        message["context"] = serde_json::json!({ "from": "14155550100", "id": id });
    }
    message
}

/// A Twilio status callback for `sid`, signed for `path_and_query`.
pub fn signed_status_callback(
    path_and_query: &str,
    sid: &str,
    status: &str,
    error_code: Option<&str>,
    to: &str,
) -> (String, String) {
    let mut params = vec![
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("AccountSid", TWILIO_ACCOUNT_SID),
        ("From", LINE_SMS_NUMBER),
        ("To", to),
        ("ApiVersion", "2010-04-01"),
    ];
    if let Some(code) = error_code {
        params.push(("ErrorCode", code));
    }
    signed_twilio_form(path_and_query, &params)
}

/// Records `customer`'s `text` as the SMS webhook records it (nothing enqueued) and returns
/// its jobs: one copy per agent of the test line (and an automated reply, where due).
pub async fn record_customer_text(aws: &TestAws, customer: &str, text: &str) -> Vec<shared::domain::Job> {
    use shared::domain::{E164, InboundSms, ProviderMessageId};
    let line = lines().iter().next().expect("a test line").clone();
    let sid = message_sid();
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse(&sid).expect("sid"),
        from: E164::parse(customer).expect("customer number"),
        to: line.sms_number.clone(),
        body: text.to_owned(),
        attachments: vec![],
        received_at: jiff::Timestamp::now(),
    };
    let budget = shared::app::retry_budget::RetryBudget::none();
    shared::app::receive_sms::receive_sms(
        &aws.store(),
        &NoQueue,
        &line,
        sms,
        &mut fastrand::Rng::new(),
        &budget,
        &CopyFactsCache::new(),
    )
    .await
    .expect("recorded");
    let seen = aws.items_with_prefix(&format!("SEEN#twilio#{sid}")).await;
    let jobs = seen.first().and_then(|item| item.get("jobs")).and_then(|jobs| jobs.as_l().ok()).expect("its jobs");
    jobs.iter().map(|job| shared::domain::Job::decode(job.as_s().expect("a job")).expect("a job")).collect()
}

/// Records what the webhooks record for "the customer texted, then agent 0 replied `text`",
/// and returns the reply's SMS job (not enqueued).
pub async fn record_agent_reply(aws: &TestAws, customer: &str, text: &str) -> shared::domain::Job {
    let line = lines().iter().next().expect("a test line").clone();
    record_agent_reply_in(&aws.store(), &line, customer, text).await
}

/// [`record_agent_reply`] on any store (the in-memory twin's use-case tests use it too).
pub async fn record_agent_reply_in<S: shared::ports::ConversationStore>(
    store: &S,
    line: &shared::domain::Line,
    customer: &str,
    text: &str,
) -> shared::domain::Job {
    use shared::app::receive_sms::Received;
    use shared::domain::{
        ConversationKey, E164, InboundSms, Job, JobId, JobPayload, MessageId, ProviderMessageId, SendSms, WaId, Wamid,
    };
    use shared::ports::{AgentEffect, AgentMessageRecord, NewOutboundMessage};
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse(&message_sid()).expect("sid"),
        from: E164::parse(customer).expect("customer number"),
        to: line.sms_number.clone(),
        body: "Hello?".into(),
        attachments: vec![],
        received_at: jiff::Timestamp::now(),
    };
    let received = shared::app::receive_sms::receive_sms(
        store,
        &NoQueue,
        line,
        sms,
        &mut fastrand::Rng::new(),
        &shared::app::retry_budget::RetryBudget::none(),
        &CopyFactsCache::new(),
    )
    .await
    .expect("recorded");
    assert!(matches!(received, Received::Accepted { .. }), "{received:?}");
    let conversation =
        ConversationKey { line: line.id.clone(), customer: E164::parse(customer).expect("customer number") };
    let handle = store.conversation(&conversation).await.expect("read").expect("conversation").handle;
    let message_id = MessageId::new_v7();
    let agent = WaId::parse(AGENTS[0]).expect("agent");
    let agent_wamid = Wamid::parse(&format!("wamid.agent.{}", uuid::Uuid::new_v4().simple())).expect("wamid");
    let job = Job {
        job_id: JobId::for_leg(&message_id, 0),
        attempt: 0,
        payload: JobPayload::SendSms(SendSms {
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            agent: agent.clone(),
            agent_wamid: agent_wamid.clone(),
            text: text.into(),
            media: vec![],
        }),
    };
    let message = NewOutboundMessage {
        conversation,
        handle,
        message_id,
        agent: agent.clone(),
        agent_wamid: agent_wamid.clone(),
        body: text.into(),
        sent_at: jiff::Timestamp::now(),
        jobs: vec![job.clone()],
    };
    let record = AgentMessageRecord {
        line: line.id.clone(),
        agent,
        wamid: agent_wamid,
        received_at: jiff::Timestamp::now(),
        profile_name: None,
        effect: AgentEffect::Reply { message: Box::new(message), clear_pending: false },
        notices: vec![],
    };
    store.record_agent_message(&record).await.expect("recorded");
    job
}

/// A queue that drops what it is given: for setting up state without jobs.
pub struct NoQueue;

impl shared::ports::DeliveryQueue for NoQueue {
    async fn enqueue(&self, _jobs: &[shared::domain::Job]) -> Result<(), shared::ports::QueueError> {
        Ok(())
    }

    async fn postpone(
        &self,
        _receipt_handle: &str,
        _delay: std::time::Duration,
    ) -> Result<(), shared::ports::QueueError> {
        Ok(())
    }

    async fn dead_letter(&self, _body: &str, _group: Option<&str>, _id: &str) -> Result<(), shared::ports::QueueError> {
        Ok(())
    }
}

/// Records the AWS calls a client makes against the emulator, request and response, so that
/// [`AwsRecording::replay_client`] can answer the same calls later from memory: the handlers'
/// own CPU (serialization, signing, parsing) measured without any I/O.
///
/// Each answer is paired with its request through the call's own config bag, so calls may
/// run side by side (the worker's groups do). A replayed call whose request
/// body was recorded gets that call's answer (a `GetItem` of the same key reads the same item);
/// one that wasn't (a write carrying fresh ids) gets the successful answers recorded for its
/// operation on the same item, in turn.
#[derive(Debug, Clone, Default)]
pub struct AwsRecording {
    state: std::sync::Arc<std::sync::Mutex<RecordingState>>,
}

#[derive(Debug, Default)]
struct RecordingState {
    answers: HashMap<(String, Vec<u8>), (u16, Vec<u8>)>,
    /// Successful answers by operation and the item the call names (DynamoDB's `Key`; none
    /// for SQS), in the order recorded, and how far replay has gone through each.
    successes: HashMap<(String, String), Vec<Vec<u8>>>,
    replayed: HashMap<(String, String), usize>,
}

impl AwsRecording {
    /// A DynamoDB client like `client`, recorded.
    pub fn dynamodb(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(self.clone()).build())
    }

    /// An SQS client like `client`, recorded.
    pub fn sqs(&self, client: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(client.config().to_builder().interceptor(self.clone()).build())
    }

    /// A DynamoDB client like `client` whose calls never leave the process.
    pub fn replay_dynamodb(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().http_client(self.replay_client()).build())
    }

    /// An SQS client like `client` whose calls never leave the process.
    pub fn replay_sqs(&self, client: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(client.config().to_builder().http_client(self.replay_client()).build())
    }

    /// An HTTP client for the SDK that answers from what was recorded.
    pub fn replay_client(&self) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_runtime_api::client::http::{SharedHttpConnector, http_client_fn};
        let connector = SharedHttpConnector::new(self.clone());
        http_client_fn(move |_, _| connector.clone())
    }

    fn target(headers: &aws_smithy_runtime_api::http::Headers) -> String {
        headers.get("x-amz-target").unwrap_or("?").to_owned()
    }
}

impl aws_sdk_dynamodb::config::Intercept for AwsRecording {
    fn name(&self) -> &'static str {
        "AwsRecording"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        cfg.interceptor_state().store_put(RecordedRequest(Self::target(request.headers()), body));
        Ok(())
    }

    // After deserialization the orchestrator has read the whole body into memory.
    fn read_after_deserialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let response = context.response();
        let status = response.status().as_u16();
        let body = response.body().bytes().unwrap_or_default().to_vec();
        let Some(RecordedRequest(target, request)) = cfg.load::<RecordedRequest>().cloned() else { return Ok(()) };
        let mut state = self.state.lock().expect("recording lock");
        if (200..300).contains(&status) {
            state.successes.entry((target.clone(), item_key(&request))).or_default().push(body.clone());
        }
        state.answers.insert((target, request), (status, body));
        Ok(())
    }
}

/// The item a DynamoDB call names (its `Key`, as JSON), or "": a write carrying fresh ids
/// is answered as the writes on the same item were, in turn, so a claim gets a claim's answer.
fn item_key(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("Key").map(|k| k.to_string()))
        .unwrap_or_default()
}

/// A call's request as sent (`X-Amz-Target`, body), kept in its config bag for its answer.
#[derive(Debug, Clone)]
struct RecordedRequest(String, Vec<u8>);

impl aws_smithy_types::config_bag::Storable for RecordedRequest {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::http::HttpConnector for AwsRecording {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let target = Self::target(request.headers());
        let key = (target, request.body().bytes().unwrap_or_default().to_vec());
        let mut state = self.state.lock().expect("recording lock");
        let answer = match state.answers.get(&key).cloned() {
            Some(answer) => Some(answer),
            None => {
                // The item's recorded answers in turn (a claim, then the record of the send...).
                let similar = (key.0.clone(), item_key(&key.1));
                let turn = *state.replayed.get(&similar).unwrap_or(&0);
                let answer = state.successes.get(&similar).and_then(|all| all.get(turn % all.len().max(1)).cloned());
                *state.replayed.entry(similar).or_default() += 1;
                answer.map(|body| (200, body))
            }
        };
        HttpConnectorFuture::ready(match answer {
            Some((status, body)) => Ok(HttpResponse::new(status.try_into().expect("a recorded status"), body.into())),
            None => Err(ConnectorError::other(format!("nothing recorded for {}", key.0).into(), None)),
        })
    }
}
