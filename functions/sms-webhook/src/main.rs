//! The SMS webhook Lambda: configuration and clients once per cold start, then the router.

use std::sync::Arc;

use shared::config::{SmsWebhookConfig, process_env};
use sms_webhook::{SmsWebhook, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = SmsWebhookConfig::from_lookup(&process_env)
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let sdk = shared::aws::sdk_config().await;
    let webhook = Arc::new(SmsWebhook::from_config(config, &sdk));
    lambda_http::run(router(webhook)).await
}
