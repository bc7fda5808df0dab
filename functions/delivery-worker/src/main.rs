//! The delivery worker Lambda: configuration and clients once per cold start, then one
//! `SqsBatchResponse` per batch (`ReportBatchItemFailures`).

// The SDK's futures nest deeply inside the runtime's service future.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use delivery_worker::DeliveryWorker;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::config::{DeliveryWorkerConfig, process_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = shared::aws::sdk_config().await;
    // Secrets given as SSM parameter names (`<NAME>_PARAM`) are read here, once.
    let env = shared::secrets::resolve_with(&sdk, &process_env)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let config = DeliveryWorkerConfig::from_lookup(&|name| env.get(name))
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let worker = Arc::new(DeliveryWorker::from_config(config, &sdk));
    worker.warm_up().await;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<SqsBatchResponse, Error>(worker.handle_batch(event.payload).await) }
    }))
    .await
}
