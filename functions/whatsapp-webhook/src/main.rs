//! The WhatsApp webhook Lambda: configuration and clients once per cold start, then the router.

use std::sync::Arc;

use shared::config::WhatsAppWebhookConfig;
use whatsapp_webhook::{WhatsAppWebhook, router};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init_logs();
    let (sdk, config) = shared::secrets::lambda_cold_start(WhatsAppWebhookConfig::from_lookup).await?;
    let webhook = Arc::new(WhatsAppWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    lambda_http::run(router(webhook)).await
}
