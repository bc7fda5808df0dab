//! AWS SDK configuration: the standard chain in Lambda; explicit for an emulator.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqs::SqsQueue;

/// `EMULATOR_ENDPOINT_URL`: where `sam local invoke` sends a function's DynamoDB, SQS and
/// SSM calls (the local stack's emulator, docs/deploying.md). The template declares it empty
/// because SAM only sets variables a function declares; `AWS_ENDPOINT_URL` can't be the
/// one declared, as the SDK warns at every cold start about an empty one.
pub const EMULATOR_ENDPOINT_URL: &str = "EMULATOR_ENDPOINT_URL";

/// Region, credentials and `AWS_ENDPOINT_URL` from the environment, as the SDK reads them;
/// [`EMULATOR_ENDPOINT_URL`], when set, wins over `AWS_ENDPOINT_URL`.
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
    let retry =
        aws_config::retry::RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(10));
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
