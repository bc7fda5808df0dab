//! The delivery worker Lambda: configuration and clients once per cold start, then one
//! `SqsBatchResponse` per batch (`ReportBatchItemFailures`).

// The SDK's futures nest deeply inside the runtime's service future.
#![recursion_limit = "256"]

use std::sync::Arc;

use delivery_worker::{DeliveryWorker, WorkerEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::app::sweep_outbox::DEFAULT_OUTBOX_GRACE;
use shared::config::DeliveryWorkerConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init_logs();
    let (sdk, config) = shared::secrets::lambda_cold_start(DeliveryWorkerConfig::from_lookup).await?;
    let worker = Arc::new(DeliveryWorker::from_config(config, &sdk));
    worker.warm_up().await;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let worker = Arc::clone(&worker);
        // The function's timeout, less the time to answer the runtime.
        let deadline = delivery_worker::invocation_deadline(event.context.deadline());
        async move {
            match WorkerEvent::parse(event.payload)? {
                WorkerEvent::Batch(batch) => {
                    Ok::<_, Error>(serde_json::to_value(worker.handle_batch_until(batch, deadline).await)?)
                }
                // A failed sweep is the invocation's error (the worker's errors alarm sees it).
                WorkerEvent::SweepOutbox => {
                    let swept = worker.sweep_outbox(DEFAULT_OUTBOX_GRACE, deadline).await?;
                    Ok(serde_json::json!({ "entries": swept.entries, "jobs": swept.jobs, "more": swept.more }))
                }
            }
        }
    }))
    .await
}
