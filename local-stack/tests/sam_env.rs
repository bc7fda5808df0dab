//! `sam local invoke` as docs/deploying.md runs it, less the container: each function's
//! environment file (`events/<function>.env.json`), read alone, with nothing merged in,
//! starts the function through the cold start its Lambda runs (`cold_start_config`, then
//! `from_config` and the warm-up), against a running local stack, and every sample event
//! of `events/<function>/` gets its answer. The only change made to a file is the one
//! Docker makes: `host.docker.internal:8080` and `:8081` (the stack's page and its
//! `--emulator-port`) become the ports this test's stack listens on.
//!
//! So the files name every variable a cold start needs, and the table, queues, credentials
//! and simulator URLs the local stack really has. The real `sam local invoke`, in Docker,
//! is `.ci/sam-local-invoke`.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use delivery_worker::{DeliveryWorker, WorkerEvent};
use http_body_util::BodyExt;
use jiff::Timestamp;
use serde_json::Value;
use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore};
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use shared::domain::{ConversationKey, Handle, Job, JobPayload, MessageId};
use shared::ports::{InboundLog, NewInboundMessage};
use shared::secrets::cold_start_config_from;
use sms_webhook::SmsWebhook;
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

use crate::common::{LocalStack, until};

/// What the files (and docs/deploying.md's commands) expect: the local stack's default port
/// and the emulator port the docs start it with.
const PAGE_PORT: u16 = 8080;
const EMULATOR_PORT: u16 = 8081;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("events")
}

fn events_of(function: &str) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> = std::fs::read_dir(events_dir().join(function))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    events.sort();
    assert!(!events.is_empty(), "{function} has sample events");
    events
}

/// `events/<function>.env.json`, SAM's `--env-vars` format with one section, keyed by the
/// function's logical id; host.docker.internal as the container would reach this stack.
fn env_file(function: &str, logical_id: &str, stack: &LocalStack, emulator_port: u16) -> HashMap<String, String> {
    let text = std::fs::read_to_string(events_dir().join(format!("{function}.env.json"))).unwrap();
    let text = text
        .replace(&format!("host.docker.internal:{EMULATOR_PORT}"), &format!("127.0.0.1:{emulator_port}"))
        .replace(&format!("host.docker.internal:{PAGE_PORT}"), &format!("127.0.0.1:{}", stack.port));
    assert!(!text.contains("host.docker.internal"), "{function}: a host the local stack doesn't listen on");
    let file: Value = serde_json::from_str(&text).unwrap();
    let sections = file.as_object().unwrap();
    assert_eq!(sections.keys().collect::<Vec<_>>(), [logical_id], "{function}: one section, its logical id");
    sections[logical_id]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().expect("SAM passes strings").to_owned()))
        .collect()
}

/// The file as the function's process environment: an empty value counts as unset, as
/// `shared::config::process_env` reads it (the files empty the `_PARAM`s this way).
fn as_process_env(env: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| env.get(name).filter(|value| !value.trim().is_empty()).cloned()
}

/// Where the function's SDK goes: `EMULATOR_ENDPOINT_URL` from its file (the region is the
/// docs' `--region us-east-1`; the credentials are dummies, as SAM passes the caller's own).
fn emulator_endpoint(env: &HashMap<String, String>) -> &str {
    &env[shared::aws::EMULATOR_ENDPOINT_URL]
}

/// The table and queues the file names are the ones the stack created: a wrong queue would
/// otherwise go unseen (the webhook records the jobs in its outbox, and the stack's sweep
/// enqueues them on its own queue).
async fn names_what_the_stack_created(function: &str, env: &HashMap<String, String>) {
    let sdk = shared::aws::emulator_sdk_config(emulator_endpoint(env)).await;
    let table = &env["TABLE_NAME"];
    aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{function}: no table {table}: {e:?}"));
    for variable in ["DELIVERY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"] {
        let Some(url) = env.get(variable) else { continue };
        aws_sdk_sqs::Client::new(&sdk)
            .get_queue_attributes()
            .queue_url(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{function}: {variable} {url} is not the stack's queue: {e:?}"));
    }
}

async fn answer(router: &axum::Router, event: &str) -> (u16, String) {
    let request = lambda_http::request::from_str(event).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// How many WhatsApp messages the stack's simulator holds that carry `text`.
async fn whatsapp_with(stack: &LocalStack, text: &str) -> usize {
    let state: Value = reqwest::get(format!("{}/_sim/state", stack.base())).await.unwrap().json().await.unwrap();
    state["whatsapp"].as_array().unwrap().iter().filter(|m| m.to_string().contains(text)).count()
}

#[test]
fn every_event_folder_is_a_function_with_its_env_file() {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if entry.path().is_dir() { dirs.push(name) } else { files.push(name) }
    }
    dirs.sort();
    files.sort();
    assert_eq!(dirs, ["delivery-worker", "sms-webhook", "whatsapp-webhook"]);
    let env_files: Vec<String> = dirs.iter().map(|d| format!("{d}.env.json")).collect();
    assert_eq!(files, env_files);
}

#[tokio::test]
async fn each_function_starts_from_its_env_file_alone_and_answers_its_events() {
    let emulator_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stack = LocalStack::start(&["--emulator-port", &emulator_port.to_string()], &[]);

    // The worker first, so the simulator's WhatsApp holds only what it sends.
    let env = env_file("delivery-worker", "DeliveryWorkerFunction", &stack, emulator_port);
    names_what_the_stack_created("delivery-worker", &env).await;
    let sdk = shared::aws::emulator_sdk_config(emulator_endpoint(&env)).await;
    let config = cold_start_config_from(&sdk, &as_process_env(&env), DeliveryWorkerConfig::from_lookup).await.unwrap();
    let worker = DeliveryWorker::from_config(config, &sdk);
    worker.warm_up().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &env["TABLE_NAME"], DEFAULT_MESSAGE_RETENTION);
    for (name, event) in events_of("delivery-worker") {
        let WorkerEvent::Batch(batch) = WorkerEvent::parse(serde_json::from_str(&event).unwrap()).unwrap() else {
            panic!("{name}: an SQS batch")
        };
        // The message its jobs deliver, as the SMS webhook would have recorded it.
        let mut texts = Vec::new();
        for record in &batch.records {
            let job = Job::decode(record.body.as_deref().unwrap()).unwrap();
            let JobPayload::ForwardToAgent(forward) = &job.payload else { panic!("{name}: a forward job") };
            texts.push(forward.text.clone());
            let message = NewInboundMessage {
                conversation: ConversationKey { ..forward.conversation.clone() },
                message_id: MessageId::parse(forward.message_id.as_str()).unwrap(),
                provider: "twilio",
                provider_message_id: format!("SM-{name}"),
                body: forward.text.clone(),
                attachments: vec![],
                received_at: Timestamp::now(),
                keyword: None,
                jobs: vec![job.clone()],
                claim_assumed: Default::default(),
            };
            store.start_conversation(&message, &Handle::parse("K7").unwrap()).await.unwrap();
        }
        let response = worker.handle_batch(batch).await;
        assert!(response.batch_item_failures.is_empty(), "{name}: {:?}", response.batch_item_failures);
        for text in texts {
            assert_eq!(whatsapp_with(&stack, &text).await, 1, "{name}: the simulator took the copy");
        }
    }

    let env = env_file("sms-webhook", "SmsWebhookFunction", &stack, emulator_port);
    names_what_the_stack_created("sms-webhook", &env).await;
    let sdk = shared::aws::emulator_sdk_config(emulator_endpoint(&env)).await;
    let config = cold_start_config_from(&sdk, &as_process_env(&env), SmsWebhookConfig::from_lookup).await.unwrap();
    let webhook = Arc::new(SmsWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    let router = sms_webhook::router(webhook);
    for (name, event) in events_of("sms-webhook") {
        let expected = if name.contains("forged") { 403 } else { 200 };
        let (status, body) = answer(&router, &event).await;
        assert_eq!(status, expected, "{name}: {body}");
    }
    // The jobs went to the stack's own queue: its worker forwards the text to the agents.
    let text = "Hi! Is the blue jacket still in stock in M?";
    until("the stack's worker forwarding the recorded SMS", 30, async || {
        (whatsapp_with(&stack, text).await >= 2).then_some(())
    })
    .await;

    let env = env_file("whatsapp-webhook", "WhatsAppWebhookFunction", &stack, emulator_port);
    names_what_the_stack_created("whatsapp-webhook", &env).await;
    let sdk = shared::aws::emulator_sdk_config(emulator_endpoint(&env)).await;
    let config = cold_start_config_from(&sdk, &as_process_env(&env), WhatsAppWebhookConfig::from_lookup).await.unwrap();
    let webhook = Arc::new(WhatsAppWebhook::from_config(config, &sdk));
    webhook.warm_up().await;
    let router = whatsapp_webhook::router(webhook);
    for (name, event) in events_of("whatsapp-webhook") {
        let (status, body) = answer(&router, &event).await;
        assert_eq!(status, 200, "{name}: {body}");
        if name.contains("verify") {
            assert_eq!(body, "1158201444");
        }
    }
}
