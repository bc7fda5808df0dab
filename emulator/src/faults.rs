//! AWS faults on demand, over the wire (issue 14): an HTTP client for the SDK that sits
//! between the bridge and the emulator and makes chosen calls fail the ways AWS calls fail.
//!
//! - `Refuse`: the call never reaches the emulator; it answers `503 ServiceUnavailable`
//!   (DynamoDB's and SQS's "try again" answer), as during an outage or heavy throttling.
//! - `LoseAnswer`: the emulator does the call, then the answer is lost (the client sees a
//!   connection error): the write happened, the caller can't know.
//!
//! Rules pick calls by operation (`DynamoDB_20120810.UpdateItem`, `AmazonSQS.SendMessageBatch`,
//! or a service prefix `DynamoDB`/`AmazonSQS`) and by when: always, at a rate, the next `n`
//! matching calls, or inside a time window. The local stack's `--aws-fail-rate` and outage
//! options, and the fault tests, use it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Which calls a rule applies to, and when.
#[derive(Debug, Clone)]
pub enum FaultWhen {
    Always,
    /// Each matching call fails with this probability.
    Rate(f64),
    /// The next `n` matching calls (SDK retries included: each try is a call).
    Next(usize),
    /// After letting `skip` matching calls through, the next `fail` ones.
    After {
        skip: usize,
        fail: usize,
    },
    /// Matching calls from `start` for `length`.
    Window {
        start: Instant,
        length: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Never reaches AWS: `503 ServiceUnavailable`.
    Refuse,
    /// Reaches AWS and takes effect; the answer is lost on the way back.
    LoseAnswer,
}

#[derive(Debug, Clone)]
struct Rule {
    /// A whole `X-Amz-Target` or its service prefix; `None`: every call.
    operation: Option<String>,
    when: FaultWhen,
    kind: FaultKind,
}

#[derive(Debug)]
struct State {
    rules: Vec<Rule>,
    rng: fastrand::Rng,
    injected: usize,
    calls: usize,
}

/// The fault plan, shared by every client made with it; change it while tests run.
#[derive(Debug, Clone)]
pub struct AwsFaults {
    state: Arc<Mutex<State>>,
}

impl Default for AwsFaults {
    fn default() -> Self {
        Self::seeded(fastrand::u64(..))
    }
}

impl AwsFaults {
    /// A plan with no faults yet whose random draws repeat for the same seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                rules: Vec::new(),
                rng: fastrand::Rng::with_seed(seed),
                injected: 0,
                calls: 0,
            })),
        }
    }

    /// Adds a rule: calls to `operation` (a target or a service prefix; `""` for every call)
    /// fail as `kind` `when`.
    pub fn inject(&self, operation: &str, when: FaultWhen, kind: FaultKind) -> &Self {
        let operation = (!operation.is_empty()).then(|| operation.to_owned());
        self.lock().rules.push(Rule { operation, when, kind });
        self
    }

    /// An outage of every call to `service` (`DynamoDB`, `AmazonSQS`) from now for `length`.
    pub fn outage(&self, service: &str, length: Duration) -> &Self {
        self.inject(service, FaultWhen::Window { start: Instant::now(), length }, FaultKind::Refuse)
    }

    /// No more faults.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Calls that were made to fail so far.
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    /// Calls seen so far, failed or not.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// `config` with its AWS calls passing through this plan. Retries keep the SDK's
    /// settings: a refused call is tried again like a real 503.
    pub fn sdk_config(&self, config: &SdkConfig) -> SdkConfig {
        let inner = aws_smithy_http_client::Builder::new().build_http();
        config.to_builder().http_client(FaultyClient { inner, faults: self.clone() }).build()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fault for a call to `target`, if one applies now (and counts it).
    fn decide(&self, target: &str) -> Option<FaultKind> {
        let mut state = self.lock();
        state.calls += 1;
        let now = Instant::now();
        let State { rules, rng, .. } = &mut *state;
        let mut chosen = None;
        for rule in rules.iter_mut() {
            if rule.operation.as_deref().is_some_and(|op| !target.starts_with(op)) {
                continue;
            }
            let applies = match &mut rule.when {
                FaultWhen::Always => true,
                FaultWhen::Rate(rate) => rng.f64() < *rate,
                FaultWhen::Next(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                FaultWhen::Next(_) => false,
                FaultWhen::After { skip, .. } if *skip > 0 => {
                    *skip -= 1;
                    false
                }
                FaultWhen::After { fail, .. } if *fail > 0 => {
                    *fail -= 1;
                    true
                }
                FaultWhen::After { .. } => false,
                FaultWhen::Window { start, length } => now >= *start && now < *start + *length,
            };
            if applies {
                chosen = Some(rule.kind);
                break;
            }
        }
        if chosen.is_some() {
            state.injected += 1;
        }
        chosen
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: AwsFaults,
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, faults: self.faults.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: AwsFaults,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or("?").to_owned();
        match self.faults.decide(&target) {
            None => self.inner.call(request),
            Some(FaultKind::Refuse) => HttpConnectorFuture::ready(Ok(service_unavailable())),
            Some(FaultKind::LoseAnswer) => {
                let done = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // The call takes effect; its answer never arrives.
                    let _ = done.await;
                    Err(ConnectorError::io("injected fault: connection reset after the request".into()))
                })
            }
        }
    }
}

/// What DynamoDB and SQS answer when they can't take a call right now.
fn service_unavailable() -> HttpResponse {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailable","message":"injected fault"}"#;
    let mut response = HttpResponse::new(
        503.try_into().unwrap_or_else(|_| unreachable!("503 is a status code")),
        aws_smithy_types::body::SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response.headers_mut().insert("x-amzn-query-error", "ServiceUnavailable;Receiver");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_pick_calls_by_operation_and_time() {
        let faults = AwsFaults::seeded(1);
        faults.inject("DynamoDB_20120810.UpdateItem", FaultWhen::Next(2), FaultKind::Refuse);
        faults.inject("AmazonSQS", FaultWhen::Always, FaultKind::LoseAnswer);
        assert_eq!(faults.decide("DynamoDB_20120810.GetItem"), None);
        assert_eq!(faults.decide("DynamoDB_20120810.UpdateItem"), Some(FaultKind::Refuse));
        assert_eq!(faults.decide("DynamoDB_20120810.UpdateItem"), Some(FaultKind::Refuse));
        assert_eq!(faults.decide("DynamoDB_20120810.UpdateItem"), None, "only the next two");
        assert_eq!(faults.decide("AmazonSQS.SendMessageBatch"), Some(FaultKind::LoseAnswer));
        assert_eq!((faults.injected(), faults.calls()), (3, 5));
        faults.clear();
        assert_eq!(faults.decide("AmazonSQS.SendMessageBatch"), None);
        faults.outage("DynamoDB", Duration::from_secs(60));
        assert_eq!(faults.decide("DynamoDB_20120810.Query"), Some(FaultKind::Refuse));
        faults.clear();
        faults.inject("", FaultWhen::Window { start: Instant::now(), length: Duration::ZERO }, FaultKind::Refuse);
        assert_eq!(faults.decide("DynamoDB_20120810.Query"), None, "a window that has ended");
        faults.clear();
        faults.inject("DynamoDB_20120810.PutItem", FaultWhen::After { skip: 1, fail: 1 }, FaultKind::Refuse);
        let decided: Vec<_> = (0..3).map(|_| faults.decide("DynamoDB_20120810.PutItem")).collect();
        assert_eq!(decided, [None, Some(FaultKind::Refuse), None]);
    }

    #[test]
    fn a_rate_fails_about_that_share() {
        let faults = AwsFaults::seeded(7);
        faults.inject("", FaultWhen::Rate(0.25), FaultKind::Refuse);
        let failed = (0..4000).filter(|_| faults.decide("AmazonSQS.ReceiveMessage").is_some()).count();
        assert!((800..1200).contains(&failed), "{failed}");
    }
}
