//! The SMS webhook Lambda: configuration and clients once per cold start, then each event to
//! its handler.
//!
//! One function takes both providers' traffic (the design's three binaries stay three):
//! Twilio's webhooks come through the HTTP API, AWS End User Messaging SMS's texts and
//! delivery events through SNS subscriptions. The runtime hands over raw JSON; an SNS event
//! (`Records[].EventSource` = `aws:sns`) goes to `SmsWebhook::handle_sns`, anything else
//! through lambda_http's own conversion (the `Adapter` that `lambda_http::run` wraps the
//! router in) to the router, so HTTP requests are handled exactly as before.

use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Service};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use shared::config::SmsWebhookConfig;
use sms_webhook::{SmsWebhook, is_sns_event, router};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init_logs();
    let (sdk, config) = shared::secrets::lambda_cold_start(SmsWebhookConfig::from_lookup).await?;
    let webhook = Arc::new(SmsWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    let http = router(Arc::clone(&webhook));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let (webhook, http) = (Arc::clone(&webhook), http.clone());
        async move {
            let LambdaEvent { payload, context } = event;
            if is_sns_event(payload.get()) {
                // An error makes Lambda retry the asynchronous invocation (SNS's).
                let handled = webhook.handle_sns(payload.get()).await?;
                return Ok::<_, Error>(serde_json::json!({
                    "texts": handled.texts, "statuses": handled.statuses, "refused": handled.refused
                }));
            }
            let request: LambdaRequest = serde_json::from_str(payload.get())?;
            let response = Adapter::from(http).call(LambdaEvent::new(request, context)).await?;
            Ok(serde_json::to_value(response)?)
        }
    }))
    .await
}
