//! The SMS webhook Lambda: configuration and clients once per cold start, then the router.

use std::sync::Arc;

use shared::config::SmsWebhookConfig;
use sms_webhook::{SmsWebhook, router};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init_logs();
    let sdk = shared::aws::sdk_config().await;
    let config = shared::secrets::cold_start_config(&sdk, SmsWebhookConfig::from_lookup).await?;
    let webhook = Arc::new(SmsWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    lambda_http::run(router(webhook)).await
}
