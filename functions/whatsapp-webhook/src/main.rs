//! The WhatsApp webhook Lambda: configuration and clients once per cold start, then the router.

use std::sync::Arc;

use shared::config::{WhatsAppWebhookConfig, process_env};
use whatsapp_webhook::{WhatsAppWebhook, router};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = shared::aws::sdk_config().await;
    // Secrets given as SSM parameter names (`<NAME>_PARAM`) are read here, once.
    let env = shared::secrets::resolve_with(&sdk, &process_env)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let config = WhatsAppWebhookConfig::from_lookup(&|name| env.get(name))
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let webhook = Arc::new(WhatsAppWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    lambda_http::run(router(webhook)).await
}
