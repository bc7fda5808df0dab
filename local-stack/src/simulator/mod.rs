//! The provider simulator and the two-phone page (docs/local-stack.md).
//!
//! - `twilio`: Twilio's Messages API, status callbacks, MMS media, and the customer's phone.
//! - `graph`: the WhatsApp Cloud API, status notifications, read marks, media, and the agents'
//!   phones, which name their users by business-scoped user id (`user_id`) and may hide their
//!   number behind a username.
//! - `page`: the page itself and its JSON API (`/_sim/...`), with live updates over SSE.
//!
//! Requests are checked like the real APIs check them (`twilio_rules`, `graph_rules`,
//! written from the providers' documentation rather than from the bridge; both check
//! http(s) URLs with `url`), and webhooks
//! are signed the way the providers sign them (`signing`). Failure modes come from the
//! command line (`failures`).

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
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{Line, Lines};
use tokio::sync::watch;

use failures::FailureSettings;
use world::{Blob, MediaRef, World};

pub const GRAPH_PREFIX: &str = "/_sim/graph";
pub const TWILIO_PREFIX: &str = "/_sim/twilio";

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

    fn line_by_phone_number_id(&self, id: &str) -> Option<&Line> {
        self.lines().find(|l| l.whatsapp_phone_number_id.as_str() == id)
    }

    /// The line whose number the agent writes to: theirs, else the first (a stranger).
    fn line_of_agent(&self, agent: &str) -> Option<Line> {
        self.lines().find(|l| l.agents.iter().any(|a| a.as_str() == agent)).or_else(|| self.first_line()).cloned()
    }

    fn agent_name(&self, agent: &str) -> String {
        let index = self.lines().find_map(|l| l.agents.iter().position(|a| a.as_str() == agent));
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
