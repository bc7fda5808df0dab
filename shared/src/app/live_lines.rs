//! The lines in force (docs/configuration.md, "Changing the lines without a deploy").
//!
//! Built at cold start from wherever the lines came from. Lines given as `BRIDGE_LINES` or
//! `BRIDGE_LINES_FILE` never change while the function runs. Lines read from an SSM
//! parameter (`BRIDGE_LINES_PARAM`) are read again when a request or job asks for them and
//! the last read is older than the refresh interval (`BRIDGE_LINES_REFRESH_SECONDS`, default
//! 60 s): one `GetParameter`, cut off after [`READ_TIMEOUT`].
//!
//! Why on use and not on a timer: Lambda freezes the execution environment between
//! invocations ("Lambda freezes the execution environment when the runtime and each
//! extension have completed and there are no pending events", AWS Lambda Developer Guide,
//! "Understanding the Lambda execution environment lifecycle",
//! https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html, read
//! 2026-12-06), so a background task would not run while nothing arrives and would race the
//! freeze when something does. Read on use, the lines a request acts on are at most one
//! interval old, and an idle function costs no SSM call.
//!
//! A read that fails, times out, or brings a document `Lines::from_json` refuses changes
//! nothing: the last good lines stay in force, the failure is logged (the field path and
//! the reason, numbers scrubbed, never the document) and counted, and the next read is one
//! interval later, so a broken parameter costs one call per interval per instance.
//! The common path takes one uncontended lock and clones one `Arc`; a request that comes
//! while a reading is under way waits for it (at most [`READ_TIMEOUT`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::{Lines, scrub_numbers};
use crate::ports::{LinesParameter, LinesParameterError};
use crate::telemetry;

/// How often a function reads the lines' parameter again, unless `BRIDGE_LINES_REFRESH_SECONDS`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// The longest a request waits for the parameter before it goes on with the lines it has.
/// SSM answers in tens of milliseconds; the webhooks have 10 s in all (`template.yaml`).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a failed reading of the parameter is named in errors and logs.
const SOURCE: &str = "BRIDGE_LINES_PARAM";

pub struct LiveLines {
    in_force: Mutex<InForce>,
    /// Held while the parameter is read.
    reading: tokio::sync::Mutex<()>,
    refresh: Option<Refresh>,
}

struct InForce {
    lines: Arc<Lines>,
    /// The parameter's version these lines are; unknown until the first read after the cold
    /// start (which read them with `GetParameters`, by name).
    version: Option<i64>,
    /// When the next request reads the parameter again.
    next_read: Instant,
}

struct Refresh {
    parameter: Box<dyn LinesParameter>,
    every: Duration,
    timeout: Duration,
}

/// What a reading of the parameter came to (logged and counted in one place).
enum Reading {
    /// The version in force, or the same lines under a new version.
    Unchanged,
    Reloaded {
        version: i64,
        lines: usize,
        agents: usize,
    },
    /// The parameter couldn't be read, or its document isn't valid lines: kept as they were.
    Kept {
        reason: &'static str,
        version: Option<i64>,
        error: String,
    },
}

impl LiveLines {
    /// Lines that never change while the function runs (`BRIDGE_LINES`, `BRIDGE_LINES_FILE`).
    pub fn fixed(lines: Lines) -> Self {
        Self {
            in_force: Mutex::new(InForce::new(lines, Instant::now())),
            reading: tokio::sync::Mutex::new(()),
            refresh: None,
        }
    }

    /// Lines read from `parameter` at cold start (`lines`), read again every `every`.
    pub fn from_parameter(lines: Lines, parameter: impl LinesParameter + 'static, every: Duration) -> Self {
        Self::from_parameter_at(lines, parameter, every, Instant::now())
    }

    /// The same, as if the cold start's read was at `read_at` (tests of the refresh rule).
    pub fn from_parameter_at(
        lines: Lines,
        parameter: impl LinesParameter + 'static,
        every: Duration,
        read_at: Instant,
    ) -> Self {
        let mut in_force = InForce::new(lines, read_at);
        in_force.next_read = read_at + every;
        Self {
            in_force: Mutex::new(in_force),
            reading: tokio::sync::Mutex::new(()),
            refresh: Some(Refresh { parameter: Box::new(parameter), every, timeout: READ_TIMEOUT }),
        }
    }

    /// Gives up on a reading after `timeout` instead of [`READ_TIMEOUT`].
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        if let Some(refresh) = &mut self.refresh {
            refresh.timeout = timeout;
        }
        self
    }

    /// Whether the lines are read again while the function runs.
    pub fn refreshes(&self) -> bool {
        self.refresh.is_some()
    }

    /// The parameter's version in force, when known.
    pub fn version(&self) -> Option<i64> {
        self.lock().version
    }

    /// The lines a request or job acts on now.
    pub async fn current(&self) -> Arc<Lines> {
        self.current_at(Instant::now()).await
    }

    /// The lines in force at `now`: read again first if the last reading is an interval old.
    pub async fn current_at(&self, now: Instant) -> Arc<Lines> {
        let Some(refresh) = &self.refresh else { return Arc::clone(&self.lock().lines) };
        if let Some(fresh) = self.fresh_at(now) {
            return fresh;
        }
        // One reading at a time; requests that find it under way (the worker's groups, a
        // local server's concurrent requests) wait for it, so none acts on a team it would
        // have seen replaced, and then find the lines fresh.
        let _reading = self.reading.lock().await;
        if let Some(fresh) = self.fresh_at(now) {
            return fresh;
        }
        let known_version = self.lock().version;
        let reading = match tokio::time::timeout(refresh.timeout, refresh.parameter.read()).await {
            Err(_) => Reading::Kept {
                reason: "timeout",
                version: None,
                error: format!("no answer within {:?}", refresh.timeout),
            },
            Ok(Err(e)) => Reading::Kept {
                reason: match e {
                    LinesParameterError::NotFound => "not_found",
                    LinesParameterError::Unavailable(_) => "unavailable",
                },
                version: None,
                error: e.to_string(),
            },
            Ok(Ok(document)) if Some(document.version) == known_version => Reading::Unchanged,
            Ok(Ok(document)) => match Lines::from_json(SOURCE, document.json.trim()) {
                Err(e) => Reading::Kept {
                    reason: "invalid",
                    version: Some(document.version),
                    error: scrub_numbers(&e.to_string()),
                },
                Ok(lines) => self.adopt(lines, document.version),
            },
        };
        note(&reading);
        let mut in_force = self.lock();
        // Whatever came of it, the next reading is an interval away: a failing parameter
        // costs one call per interval.
        in_force.next_read = now + refresh.every;
        Arc::clone(&in_force.lines)
    }

    /// The lines in force, if their last reading is less than an interval old at `now`.
    fn fresh_at(&self, now: Instant) -> Option<Arc<Lines>> {
        let in_force = self.lock();
        (now < in_force.next_read).then(|| Arc::clone(&in_force.lines))
    }

    /// Puts `lines` (the parameter's `version`) in force.
    fn adopt(&self, lines: Lines, version: i64) -> Reading {
        let mut in_force = self.lock();
        in_force.version = Some(version);
        if *in_force.lines == lines {
            // The cold start's lines under their version, or the same document written again.
            return Reading::Unchanged;
        }
        let (count, agents) = (lines.iter().count(), lines.iter().map(|line| line.agents.len()).sum());
        in_force.lines = Arc::new(lines);
        Reading::Reloaded { version, lines: count, agents }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InForce> {
        // Nothing panics while holding it; a poisoned lock still holds whole lines.
        self.in_force.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<Lines> for LiveLines {
    fn from(lines: Lines) -> Self {
        Self::fixed(lines)
    }
}

impl InForce {
    fn new(lines: Lines, now: Instant) -> Self {
        Self { lines: Arc::new(lines), version: None, next_read: now }
    }
}

fn note(reading: &Reading) {
    match reading {
        Reading::Unchanged => tracing::debug!(outcome = "lines_unchanged", "lines parameter read; nothing changed"),
        Reading::Reloaded { version, lines, agents } => {
            tracing::info!(
                outcome = "lines_reloaded",
                version,
                lines,
                agents,
                "lines parameter changed: its new version is in force"
            );
            telemetry::count("LinesRefreshed", &[("outcome", "reloaded")]);
        }
        Reading::Kept { reason, version, error } => {
            tracing::warn!(
                outcome = "lines_kept",
                reason,
                version,
                error,
                "lines parameter not taken: the lines in force stay until a good version is read"
            );
            telemetry::count("LinesRefreshed", &[("outcome", reason)]);
        }
    }
}
