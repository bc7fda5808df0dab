//! AWS SDK configuration: Lambda's environment in a function; the standard chain for the
//! operator's tools; explicit for an emulator.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqs::SqsQueue;
use crate::config::{ConfigError, Lookup};

/// `EMULATOR_ENDPOINT_URL`: where `sam local invoke` sends a function's DynamoDB, SQS and
/// SSM calls (the local stack's emulator, docs/deploying.md). The template declares it empty
/// because SAM only sets variables a function declares; `AWS_ENDPOINT_URL` can't be the
/// one declared, as the SDK warns at every cold start about an empty one.
pub const EMULATOR_ENDPOINT_URL: &str = "EMULATOR_ENDPOINT_URL";

/// What a function reads in Lambda (docs/configuration.md): the region and the execution
/// role's credentials as Lambda puts them in every function's environment (`AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; Lambda developer guide,
/// "Defined runtime environment variables", read 2026-12-06), and an endpoint when one is
/// given ([`EMULATOR_ENDPOINT_URL`], then `AWS_ENDPOINT_URL`).
///
/// Not [`sdk_config`]'s full chain: that one also probes profile files, SSO, web identity,
/// the container and instance metadata endpoints, and links STS's and SSO's clients for
/// them, none of which a Lambda function uses (its chain stops at the environment). Without
/// them each bootstrap is smaller and its cold start does less (BENCHMARKS.md, "Size,
/// opt-level and init"). The credentials are read through the SDK's own environment
/// provider and cached by its identity cache, as the full chain would.
pub fn lambda_sdk_config(env: Lookup) -> Result<SdkConfig, ConfigError> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError::new("AWS_REGION", "not set (Lambda sets it for every function)"))?;
    if env("AWS_ACCESS_KEY_ID").is_none() {
        return Err(ConfigError::new(
            "AWS_ACCESS_KEY_ID",
            "not set: the functions use the execution role's credentials Lambda puts in the environment",
        ));
    }
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(RetryConfig::standard());
    if let Some(endpoint) = env(EMULATOR_ENDPOINT_URL).or_else(|| env("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

/// Region, credentials and `AWS_ENDPOINT_URL` from the environment, as the SDK reads them,
/// through its full default chain (profiles, SSO, metadata endpoints): for the operator's
/// tools, which run on a laptop or in CI. [`EMULATOR_ENDPOINT_URL`], when set, wins over
/// `AWS_ENDPOINT_URL`. The functions use [`lambda_sdk_config`].
pub async fn sdk_config() -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    match crate::config::process_env(EMULATOR_ENDPOINT_URL) {
        Some(endpoint) => loader.endpoint_url(endpoint).load().await,
        None => loader.load().await,
    }
}

/// Talks to a local emulator (moto) at `endpoint`; nothing reaches AWS. `AWS_REGION` is
/// honoured when set (default `us-east-1`); the credentials are dummies.
pub async fn emulator_sdk_config(endpoint: &str) -> SdkConfig {
    let region = std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()).unwrap_or_else(|| "us-east-1".to_owned());
    // moto answers 500 now and then under concurrent writes (its TransactWriteItems
    // deep-copies a table another thread is changing). The SDK retries those; with AWS's
    // one-second initial backoff they showed as a ~1 s p95 in the local stack.
    let retry = RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(10));
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "emulator"))
        .load()
        .await
}

/// An S3 client (AWS SMS lines' MMS media). Against an emulator (the configuration names an
/// endpoint) buckets are addressed in the path: moto serves no bucket subdomains.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// One HTTP client for the providers: rustls, bounded waits.
pub fn provider_http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3).min(timeout))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .unwrap_or_else(|e| unreachable!("static client settings are valid: {e}"))
}

/// A provider HTTP client built at its first use, for a function that seldom needs one
/// (the SMS webhook relays media now and then). Building a client loads and parses the
/// system's trust store, about 2 ms of a cold start here (BENCHMARKS.md, "Size, opt-level
/// and init"), which every cold start would otherwise pay.
pub struct LazyHttpClient {
    timeout: Duration,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl LazyHttpClient {
    /// A client with [`provider_http_client`]'s settings, once asked for.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout, client: std::sync::OnceLock::new() }
    }

    pub fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| provider_http_client(self.timeout))
    }

    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// The longest a cold start waits for its connections to open.
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(2);

/// Opens a function's connections (DynamoDB, SQS, the providers) during its cold start,
/// together, so its first request doesn't pay the TCP and TLS handshakes one after another.
/// `connections` yields each connection's name and outcome; a failure is only logged (the
/// first request then connects as it would have).
pub async fn warm_up(connections: impl Future<Output = Vec<(&'static str, Result<(), String>)>>) {
    let started = Instant::now();
    match tokio::time::timeout(WARM_UP_LIMIT, connections).await {
        Ok(outcomes) => {
            for (connection, outcome) in &outcomes {
                if let Err(error) = outcome {
                    tracing::warn!(connection, error, "warm-up failed; the first request connects instead");
                }
            }
            // Fractional: against a local emulator it is a few milliseconds (the cold_start bench
            // subtracts it from init).
            let elapsed_ms = (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
            tracing::info!(
                outcome = "warmed",
                elapsed_ms,
                connections = outcomes.len(),
                "connections opened during init"
            );
        }
        Err(_) => tracing::warn!(limit_ms = WARM_UP_LIMIT.as_millis() as u64, "warm-up took too long; going on"),
    }
}

/// A webhook's store and queue, on `sdk`'s clients.
pub fn store_and_queue(
    sdk: &SdkConfig,
    table_name: &str,
    queue_url: &str,
    message_retention: Duration,
) -> (DynamoStore, SqsQueue) {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table_name, message_retention);
    (store, SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url))
}

/// Opens DynamoDB's and SQS's connections during a webhook's cold start (a request uses both).
pub async fn warm_up_store_and_queue(store: &DynamoStore, queue: &SqsQueue) {
    warm_up(async {
        let (store, queue) = tokio::join!(store.warm_up(), queue.warm_up());
        vec![("dynamodb", store.map_err(|e| e.to_string())), ("sqs", queue.map_err(|e| e.to_string()))]
    })
    .await;
}

/// A deployed function's lines in force: `lines` (the cold start's), read again from their
/// SSM parameter as `refresh` says when they came from one (`app::live_lines`).
pub fn live_lines(
    lines: crate::domain::Lines,
    refresh: Option<&crate::config::LinesRefresh>,
    sdk: &SdkConfig,
) -> crate::app::live_lines::LiveLines {
    use crate::adapters::ssm::SsmLinesParameter;
    use crate::app::live_lines::LiveLines;
    match refresh {
        Some(refresh) => LiveLines::from_parameter(
            lines,
            SsmLinesParameter::new(aws_sdk_ssm::Client::new(sdk), &refresh.parameter),
            refresh.every,
        ),
        None => LiveLines::fixed(lines),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn lambda_config(vars: &HashMap<String, String>) -> Result<SdkConfig, ConfigError> {
        lambda_sdk_config(&|name| vars.get(name).cloned())
    }

    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ];

    #[test]
    fn a_functions_sdk_configuration_is_lambdas_region_and_credentials_provider() {
        let config = lambda_config(&env(&LAMBDA)).expect("Lambda's environment is enough");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(config.credentials_provider().is_some());
        assert!(config.identity_cache().is_some(), "credentials are cached, not read per call");
        assert_eq!(config.endpoint_url(), None, "AWS's own endpoints unless one is given");
        assert_eq!(config.behavior_version(), Some(BehaviorVersion::latest()));
    }

    #[test]
    fn the_emulator_endpoint_wins_over_the_sdks_endpoint_variable() {
        let mut vars = env(&LAMBDA);
        vars.insert("AWS_ENDPOINT_URL".into(), "http://aws-endpoint:1".into());
        assert_eq!(lambda_config(&vars).unwrap().endpoint_url(), Some("http://aws-endpoint:1"));
        vars.insert(EMULATOR_ENDPOINT_URL.into(), "http://emulator:2".into());
        assert_eq!(lambda_config(&vars).unwrap().endpoint_url(), Some("http://emulator:2"));
    }

    #[test]
    fn the_region_may_come_from_aws_default_region() {
        let mut vars = env(&LAMBDA);
        vars.remove("AWS_REGION");
        vars.insert("AWS_DEFAULT_REGION".into(), "us-west-2".into());
        assert_eq!(lambda_config(&vars).unwrap().region().map(|r| r.as_ref()), Some("us-west-2"));
    }

    #[test]
    fn a_start_without_region_or_credentials_fails_naming_the_variable() {
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID"] {
            let mut vars = env(&LAMBDA);
            vars.remove(missing);
            let error = lambda_config(&vars).expect_err(missing);
            assert_eq!(error.name, missing);
        }
    }

    #[test]
    fn a_lazy_client_is_built_at_its_first_use_only() {
        let lazy = LazyHttpClient::new(Duration::from_secs(1));
        assert!(!lazy.is_built());
        let _ = lazy.client();
        assert!(lazy.is_built());
    }
}
