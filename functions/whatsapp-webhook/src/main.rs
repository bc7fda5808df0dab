//! The WhatsApp webhook Lambda: configuration and clients once per cold start, then the router.

use std::sync::Arc;

use shared::config::{WhatsAppWebhookConfig, process_env};
use whatsapp_webhook::{WhatsAppWebhook, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = WhatsAppWebhookConfig::from_lookup(&process_env)
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let sdk = shared::aws::sdk_config().await;
    lambda_http::run(router(Arc::new(WhatsAppWebhook::from_config(config, &sdk)))).await
}
