//! The provider simulator and the two-phone page (docs/local-stack.md).
//!
//! - `twilio`: Twilio's Messages API, status callbacks, MMS media, and the customer's phone.
//! - `aws_sms`: AWS End User Messaging SMS's `SendTextMessage`, the delivery events and
//!   customers' texts it publishes to SNS (handed to the SMS webhook's SNS handler in
//!   process), and AWS's own keyword handling and opt-out list.
//! - `graph`: the WhatsApp Cloud API, status notifications, read marks, media, and the agents'
//!   phones, which name their users by business-scoped user id (`user_id`) and may hide their
//!   number behind a username.
//! - `page`: the page itself and its JSON API (`/_sim/...`), with live updates over SSE.
//!
//! Requests are checked like the real APIs check them (`twilio_rules`, `aws_sms_rules`, `graph_rules`,
//! written from the providers' documentation rather than from the bridge; both check
//! http(s) URLs with `url`), and webhooks
//! are signed the way the providers sign them (`signing`). Failure modes come from the
//! command line (`failures`).

mod aws_sms;
mod aws_sms_rules;
pub mod failures;
mod graph;
mod graph_rules;
mod page;
mod signing;
mod twilio;
mod twilio_rules;
mod url;
mod user_id;
mod world;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use futures_util::future::BoxFuture;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{Line, Lines, SmsProviderKind};
use tokio::sync::watch;

use failures::FailureSettings;
use world::{Blob, MediaRef, World};

pub const GRAPH_PREFIX: &str = "/_sim/graph";
pub const TWILIO_PREFIX: &str = "/_sim/twilio";
pub use aws_sms::AWS_SMS_PREFIX;

/// The profile names the simulated agents' WhatsApp accounts carry, in line order.
const AGENT_NAMES: [&str; 8] = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Femi", "Gus", "Hana"];

/// The customer the page starts with.
pub const DEFAULT_CUSTOMER: &str = "+14155550134";

/// The most the simulator fetches for one media link.
const MAX_FETCHED_MEDIA_BYTES: usize = 16 * 1024 * 1024;

pub struct SimulatorConfig {
    pub lines: Lines,
    /// Where the bridge's webhooks listen (`http://127.0.0.1:PORT`).
    pub bridge_url: String,
    /// `PUBLIC_BASE_URL`: what Twilio signs the inbound webhook's URL with.
    pub public_base_url: String,
    /// Where the simulator itself is reached: the links it hands out start here.
    pub own_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub meta_access_token: String,
    pub meta_app_secret: String,
    pub failures: FailureSettings,
    pub aws_sms: AwsSmsSettings,
}

/// The simulated AWS account's End User Messaging SMS set-up: what the deployment's
/// configuration names, and where SNS delivers.
#[derive(Clone)]
pub struct AwsSmsSettings {
    /// `AWS_SMS_CONFIGURATION_SET`: the one configuration set the account has.
    pub configuration_set: String,
    /// `AWS_SMS_INBOUND_TOPIC_ARN`: the numbers' two-way SMS destination.
    pub inbound_topic: String,
    /// `AWS_SMS_EVENTS_TOPIC_ARN`: the configuration set's event destination.
    pub events_topic: String,
    /// `--aws-self-managed-opt-outs`: AWS leaves HELP and STOP to the bridge (publishes them,
    /// answers nothing, keeps no opt-out list entry).
    pub self_managed_opt_outs: bool,
    /// The SMS webhook's SNS handler, subscribed to both topics.
    pub subscriber: Option<SnsSubscriber>,
    /// Where `SendMediaMessage` reads an MMS's files from (the emulator's S3).
    pub s3: Option<aws_sdk_s3::Client>,
}

/// Hands one SNS event (the Lambda payload's JSON) to the subscribed function.
pub type SnsSubscriber = Arc<dyn Fn(String) -> BoxFuture<'static, SnsAnswer> + Send + Sync>;

/// What the subscribed function made of an SNS event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsAnswer {
    /// Every record handled.
    Handled,
    /// A record refused (wrong topic, no such line...): nothing recorded, no retry.
    Refused,
    /// The invocation failed: Lambda would invoke it again.
    Failed(String),
}

impl SnsAnswer {
    /// As an HTTP-like status for the page, which shows a webhook's answer by its code.
    pub fn as_status(&self) -> u16 {
        match self {
            Self::Handled => 200,
            Self::Refused => 422,
            Self::Failed(_) => 500,
        }
    }
}

impl std::fmt::Display for SnsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handled => f.write_str("handled"),
            Self::Refused => f.write_str("refused"),
            Self::Failed(error) => write!(f, "failed ({error})"),
        }
    }
}

/// The simulator's state, shared by its routes and its background deliveries.
#[derive(Clone)]
pub struct Simulator(Arc<Inner>);

struct Inner {
    config: SimulatorConfig,
    world: Mutex<World>,
    /// Bumped on every change: the page's live updates.
    version: watch::Sender<u64>,
    stopping: watch::Sender<bool>,
    http: reqwest::Client,
    store: DynamoStore,
    rng: Mutex<fastrand::Rng>,
}

impl Simulator {
    /// `store` is the bridge's own table: the page's third pane reads the thread from it.
    pub fn new(config: SimulatorConfig, store: DynamoStore) -> Self {
        let mut world = World::default();
        // The page offers the default customer and any `--fail-number` to text from.
        world.note_customer(DEFAULT_CUSTOMER);
        for number in config.failures.failing_numbers.keys() {
            world.note_customer(number);
        }
        let rng = config.failures.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            // Like the providers: a redirect is followed, credentials are never added.
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            config,
            world: Mutex::new(world),
            version: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
            http,
            store,
            rng: Mutex::new(rng),
        }))
    }

    /// The provider APIs under their prefixes and the page at `/`.
    pub fn router(&self) -> Router {
        Router::new()
            .nest(TWILIO_PREFIX, twilio::routes())
            .nest(GRAPH_PREFIX, graph::routes())
            .merge(aws_sms::routes())
            .merge(page::routes())
            .with_state(self.clone())
    }

    /// Something the page shows may have changed (e.g. the worker recorded a send).
    pub fn touch(&self) {
        self.0.version.send_modify(|v| *v += 1);
    }

    /// Ends the page's live-update streams, so the server can stop.
    pub fn stop(&self) {
        self.0.stopping.send_replace(true);
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.0.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the world and tells the page.
    fn update<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        let result = change(&mut self.world());
        self.touch();
        result
    }

    /// Whether this send fails (`--fail-rate`); counted for the page.
    fn fails_at_random(&self) -> bool {
        let roll = self.0.rng.lock().unwrap_or_else(PoisonError::into_inner).f64();
        let fails = self.0.config.failures.fails_at_random(roll);
        if fails {
            self.update(|world| world.failures_injected += 1);
        }
        fails
    }

    /// Whether this accepted send is answered too late (`--late-answer-rate`).
    fn answers_late(&self) -> bool {
        let roll = self.0.rng.lock().unwrap_or_else(PoisonError::into_inner).f64();
        let late = self.0.config.failures.answers_late(roll);
        if late {
            self.update(|world| world.failures_injected += 1);
        }
        late
    }

    fn coin(&self) -> bool {
        self.0.rng.lock().unwrap_or_else(PoisonError::into_inner).bool()
    }

    fn digit(&self) -> u8 {
        self.0.rng.lock().unwrap_or_else(PoisonError::into_inner).u8(0..10)
    }

    fn lines(&self) -> impl Iterator<Item = &Line> {
        self.0.config.lines.iter()
    }

    fn first_line(&self) -> Option<&Line> {
        self.lines().next()
    }

    fn line_by_sms_number(&self, number: &str) -> Option<&Line> {
        self.lines().find(|l| l.sms_number.as_str() == number)
    }

    fn line_by_id(&self, id: &str) -> Option<&Line> {
        self.lines().find(|l| l.id.as_str() == id)
    }

    /// The opt-out list a line's provider keeps: Twilio's is per number, AWS's default list
    /// is the account's ("no longer receives ... messages from your AWS account").
    fn opt_out_list(&self, line: &Line) -> String {
        match line.sms_provider {
            SmsProviderKind::Twilio => line.sms_number.as_str().to_owned(),
            SmsProviderKind::AwsEndUserMessaging => aws_sms::OPT_OUT_LIST.to_owned(),
        }
    }

    fn line_by_phone_number_id(&self, id: &str) -> Option<&Line> {
        self.lines().find(|l| l.whatsapp_phone_number_id.as_str() == id)
    }

    /// The line whose number the agent writes to: theirs, else the first (a stranger).
    fn line_of_agent(&self, agent: &str) -> Option<Line> {
        self.lines().find(|l| l.agents.iter().any(|a| a.as_str() == agent)).or_else(|| self.first_line()).cloned()
    }

    /// Agents are named in the order the lines list them (Ana and Ben on the first line,
    /// Chloe and Dev on the second...); an agent on two lines keeps one name.
    fn agent_name(&self, agent: &str) -> String {
        let mut agents: Vec<&str> = Vec::new();
        for listed in self.lines().flat_map(|l| l.agents.iter()) {
            if !agents.contains(&listed.as_str()) {
                agents.push(listed.as_str());
            }
        }
        let index = agents.iter().position(|a| *a == agent);
        match index.and_then(|i| AGENT_NAMES.get(i)) {
            Some(name) => (*name).to_owned(),
            None => format!("User {}", &agent[agent.len().saturating_sub(4)..]),
        }
    }

    fn window_open(&self, agent: &str) -> bool {
        !self.0.config.failures.closed_windows.contains(agent)
            && self.world().window_open(agent, jiff::Timestamp::now())
    }

    fn twilio_base(&self) -> String {
        format!("{}{TWILIO_PREFIX}", self.0.config.own_url)
    }

    fn graph_base(&self) -> String {
        format!("{}{GRAPH_PREFIX}", self.0.config.own_url)
    }

    /// Where to post a webhook whose public URL is `url`: the local listener when `url`
    /// is under `PUBLIC_BASE_URL` (which may be a tunnel's address), else `url` itself.
    fn bridge_target(&self, url: &str) -> String {
        let public = self.0.config.public_base_url.trim_end_matches('/');
        match url.strip_prefix(public) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => {
                format!("{}{rest}", self.0.config.bridge_url)
            }
            _ => url.to_owned(),
        }
    }

    /// Keeps a file for the page and returns how the page refers to it.
    fn keep_blob(&self, id: &str, blob: Blob, caption: Option<String>) -> MediaRef {
        let media = MediaRef {
            content_type: blob.content_type.clone(),
            name: blob.name.clone(),
            preview_url: Some(format!("/_sim/media/{id}")),
            caption,
        };
        self.update(|world| world.put_blob(id, blob));
        media
    }

    /// Fetches a media link as the providers do: a plain GET, no credentials.
    async fn fetch_media(&self, url: &str) -> Result<Blob, String> {
        let target = self.bridge_target(url);
        let mut response = self.0.http.get(&target).send().await.map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
            if bytes.len() + chunk.len() > MAX_FETCHED_MEDIA_BYTES {
                return Err(format!("larger than {MAX_FETCHED_MEDIA_BYTES} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Blob { content_type, name: None, bytes })
    }
}
