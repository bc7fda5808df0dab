//! The whole bridge for one test, wired as the Lambdas' `main` functions wire it: the SMS and
//! WhatsApp webhook routers and the delivery worker, DynamoDB and SQS on moto, Twilio and the
//! Graph API as HTTP fakes; every request really signed. Shared by the business-feature tests.

#![allow(dead_code)] // each test crate uses its own part of the harness

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use bridge_emulator::faults::AwsFaults;
use bridge_testkit::testing::aws_sms::{
    CONFIGURATION_SET, EVENTS_TOPIC_ARN, FakeAwsSms, INBOUND_TOPIC_ARN, ORIGINATION_IDENTITY, sns_event,
};
use bridge_testkit::testing::{
    CUSTOMER, FakeProviders, Item, LINE_SMS_NUMBER, TestAws, attr_s, lines_json, lookup, message_sid,
    signed_meta_notification, signed_twilio_form, twilio_inbound_params,
};
use delivery_worker::sqs_poller::SqsPoller;
use delivery_worker::{DeliveryWorker, DeployedWorker};
use http_body_util::BodyExt;
use lambda_http::Body;
use serde_json::Value;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use shared::domain::{ConversationKey, E164, LineId};
use shared::ports::{ConversationSummary, Conversations, Direction, ThreadMessage};
use sms_webhook::{SmsWebhook, SnsError, SnsHandled};
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

pub struct Bridge {
    pub aws: TestAws,
    pub providers: FakeProviders,
    pub webhooks: Router,
    pub worker: DeployedWorker,
    /// The SMS webhook itself: SNS events (AWS SMS lines) go to it, not through the router.
    pub sms_webhook: Arc<SmsWebhook<DynamoStore, SqsQueue>>,
    /// AWS End User Messaging SMS's API, for AWS lines (`Bridge::on_aws_sms`).
    pub aws_sms: Option<FakeAwsSms>,
}

impl Bridge {
    /// The test line as `bridge_testkit::testing` configures it.
    pub async fn start() -> Self {
        Self::with_lines(lines_json()).await
    }

    /// The test line with `fields` added or replaced (`help_text`, `auto_replies`...).
    pub async fn with_line(fields: Value) -> Self {
        let mut lines: Value = serde_json::from_str(&lines_json()).unwrap();
        for (field, value) in fields.as_object().unwrap() {
            lines[0][field] = value.clone();
        }
        Self::with_lines(lines.to_string()).await
    }

    /// Wired as the Lambdas' `main` functions wire it, from the docs/configuration.md environment.
    pub async fn with_lines(lines: String) -> Self {
        Self::wired(lines, None, &[]).await
    }

    /// The test line, with `env` added to the environment.
    pub async fn with_env(env: &[(&str, &str)]) -> Self {
        Self::wired(lines_json(), None, env).await
    }

    /// The test line, with every AWS call of the webhooks and the worker passing through
    /// `faults`, and `env` added to the environment.
    pub async fn with_faults(faults: &AwsFaults, env: &[(&str, &str)]) -> Self {
        Self::wired(lines_json(), Some(faults), env).await
    }

    /// The test line sending through AWS End User Messaging SMS (from
    /// [`ORIGINATION_IDENTITY`]), with `fields` added or replaced, its API faked and its SNS
    /// topics and configuration set configured.
    pub async fn on_aws_sms(fields: Value) -> Self {
        Self::on_aws_sms_with(fields, &[]).await
    }

    /// The same, with `extra` added to the environment (`AWS_SMS_MEDIA_BUCKET`...).
    pub async fn on_aws_sms_with(fields: Value, extra: &[(&str, &str)]) -> Self {
        let mut lines: Value = serde_json::from_str(&lines_json()).unwrap();
        lines[0]["sms_provider"] = "aws_end_user_messaging".into();
        lines[0]["aws_origination_identity"] = ORIGINATION_IDENTITY.into();
        for (field, value) in fields.as_object().unwrap() {
            lines[0][field] = value.clone();
        }
        let fake = FakeAwsSms::start().await;
        let uri = fake.uri();
        let mut env = vec![
            ("AWS_SMS_CONFIGURATION_SET", CONFIGURATION_SET),
            ("AWS_SMS_INBOUND_TOPIC_ARN", INBOUND_TOPIC_ARN),
            ("AWS_SMS_EVENTS_TOPIC_ARN", EVENTS_TOPIC_ARN),
            ("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", uri.as_str()),
        ];
        env.extend_from_slice(extra);
        let mut bridge = Self::wired(lines.to_string(), None, &env).await;
        bridge.aws_sms = Some(fake);
        bridge
    }

    /// SNS delivers `messages` from `topic` to the SMS webhook, as one event.
    pub async fn sns(&self, topic: &str, messages: &[Value]) -> Result<SnsHandled, SnsError> {
        self.sms_webhook.handle_sns(&sns_event(topic, messages)).await
    }

    /// The AWS SMS fake (an AWS line's bridge only).
    pub fn aws_sms(&self) -> &FakeAwsSms {
        self.aws_sms.as_ref().expect("a bridge on AWS SMS (Bridge::on_aws_sms)")
    }

    async fn wired(lines: String, faults: Option<&AwsFaults>, extra: &[(&str, &str)]) -> Self {
        let aws = TestAws::new().await;
        let providers = FakeProviders::start().await;
        let mut env = providers.test_env(&aws);
        env.insert("BRIDGE_LINES".into(), lines);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let sdk = aws.sdk_config().await;
        let sdk = match faults {
            Some(faults) => faults.sdk_config(&sdk),
            None => sdk,
        };
        Self::assembled(aws, providers, &lookup(&env), &sdk)
    }

    /// The lines in an SSM parameter of their own, created holding `lines` (a SecureString),
    /// read by each function's cold start as its `main` reads them (`BRIDGE_LINES_PARAM`) and
    /// read again every `refresh_seconds` (`BRIDGE_LINES_REFRESH_SECONDS`). Also the
    /// parameter's name.
    pub async fn with_lines_parameter(lines: String, refresh_seconds: u32) -> (Self, String) {
        let aws = TestAws::new().await;
        let providers = FakeProviders::start().await;
        let sdk = aws.sdk_config().await;
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let parameter = format!("/{}/lines", aws.table);
        ssm.put_parameter()
            .name(&parameter)
            .value(lines)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let mut env = providers.test_env(&aws);
        env.remove("BRIDGE_LINES");
        env.insert("BRIDGE_LINES_PARAM".into(), parameter.clone());
        env.insert("BRIDGE_LINES_REFRESH_SECONDS".into(), refresh_seconds.to_string());
        let base = lookup(&env);
        let resolved = shared::secrets::resolve(&ssm, &base).await.unwrap();
        (Self::assembled(aws, providers, &|name| resolved.get(name), &sdk), parameter)
    }

    fn assembled(
        aws: TestAws,
        providers: FakeProviders,
        env: shared::config::Lookup,
        sdk: &aws_config::SdkConfig,
    ) -> Self {
        let sms = Arc::new(SmsWebhook::from_config(SmsWebhookConfig::from_lookup(env).unwrap(), sdk));
        let whatsapp = WhatsAppWebhook::from_config(WhatsAppWebhookConfig::from_lookup(env).unwrap(), sdk);
        let webhooks = sms_webhook::router(Arc::clone(&sms)).merge(whatsapp_webhook::router(Arc::new(whatsapp)));
        let worker = DeliveryWorker::from_config(DeliveryWorkerConfig::from_lookup(env).unwrap(), sdk);
        Self { aws, providers, webhooks, worker, sms_webhook: sms, aws_sms: None }
    }

    pub async fn post(&self, path: &str, content_type: &str, signature: (&str, &str), body: String) -> u16 {
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", content_type)
            .header(signature.0, signature.1)
            .body(Body::from(body))
            .unwrap();
        let response = self.webhooks.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }

    /// A GET through the webhooks (a provider fetching a media link): status, content type, body.
    pub async fn get(&self, path_and_query: &str) -> (u16, String, Vec<u8>) {
        let request = http::Request::builder().method("GET").uri(path_and_query).body(Body::Empty).unwrap();
        let response = self.webhooks.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, content_type, body)
    }

    /// Twilio posts an inbound message with these parameters (an MMS, say), signed.
    pub async fn twilio_posts(&self, params: &[(&str, &str)]) -> u16 {
        let (body, signature) = signed_twilio_form("/sms/inbound", params);
        self.post("/sms/inbound", "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), body).await
    }

    /// `CUSTOMER` texts the line.
    pub async fn customer_texts(&self, text: &str) {
        self.sms_from(CUSTOMER, &message_sid(), text).await;
    }

    /// Twilio posts an inbound SMS with this `MessageSid` (the same sid twice is a replay).
    pub async fn sms_from(&self, customer: &str, sid: &str, text: &str) {
        let (body, signature) = signed_twilio_form("/sms/inbound", &twilio_inbound_params(sid, customer, text));
        let status = self
            .post("/sms/inbound", "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), body)
            .await;
        assert_eq!(status, 200);
    }

    /// An agent's WhatsApp message reaches the line's number; returns its wamid.
    pub async fn agent_writes(&self, message: Value) -> String {
        let wamid = message["id"].as_str().unwrap().to_owned();
        let (body, signature) = signed_meta_notification(&[message], &[]);
        assert_eq!(self.post("/whatsapp", "application/json", ("x-hub-signature-256", &signature), body).await, 200);
        wamid
    }

    /// The event source mapping's part: feed the queue to the worker until it is empty.
    pub async fn run_worker(&self) {
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        while poller.poll_once(&self.worker).await.unwrap() > 0 {}
    }

    /// The same, waiting out retries and waits until no job is left on the queue, in flight
    /// included (at most `limit`). A poll that fails (faults injected) is tried again.
    pub async fn run_worker_until_idle(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        loop {
            assert!(started.elapsed() < limit, "jobs still on the queue after {limit:?}");
            match poller.poll_once(&self.worker).await {
                Ok(0) if self.aws.queue_depth().await == 0 => return,
                Ok(0) | Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                Ok(_) => {}
            }
        }
    }

    /// The scheduled outbox sweep, with no grace: every recorded job offered again.
    pub async fn sweep(&self) -> shared::app::sweep_outbox::Swept {
        self.worker
            .sweep_outbox(std::time::Duration::ZERO, shared::app::deliver_job::Deadline::NONE)
            .await
            .expect("the sweep reads the outbox and enqueues")
    }

    pub async fn conversation(&self, customer: &str) -> ConversationSummary {
        self.aws.store().conversation(&key(customer)).await.unwrap().expect("the conversation exists")
    }

    pub async fn opted_out(&self, customer: &str) -> bool {
        self.conversation(customer).await.opted_out
    }

    pub async fn thread(&self, customer: &str) -> Vec<ThreadMessage> {
        self.aws.store().thread(&key(customer)).await.unwrap()
    }

    /// The wamid of `agent`'s copy of the customer's message `text` (what they swipe-reply to).
    pub async fn copy_for(&self, agent: &str, text: &str) -> String {
        let thread = self.thread(CUSTOMER).await;
        let message = thread.iter().find(|m| m.direction == Direction::Inbound && m.body == text).unwrap();
        let copies = self.aws.items_with_prefix("WAMID#").await;
        let copy = copies
            .iter()
            .find(|c| attr_s(c, "agent") == agent && attr_s(c, "message_id") == message.message_id.as_str())
            .unwrap_or_else(|| panic!("{agent} has no copy of {text:?}"));
        attr_s(copy, "PK").trim_start_matches("WAMID#").to_owned()
    }

    /// The bodies of the SMS that reached Twilio for `customer`, in order, each checked to
    /// come from the line's number.
    pub async fn sms_to(&self, customer: &str) -> Vec<String> {
        let sent = self.providers.sms_sent().await;
        assert!(sent.iter().all(|sms| sms["From"] == LINE_SMS_NUMBER), "{sent:?}");
        sent.iter().filter(|sms| sms["To"] == customer).map(|sms| sms["Body"].clone()).collect()
    }

    /// Every WhatsApp message sent to `agent`, in order.
    pub async fn sent_to(&self, agent: &str) -> Vec<Value> {
        self.providers.whatsapp_sent().await.into_iter().filter(|m| m["to"] == agent).collect()
    }

    /// The automated replies' legs (`JOB#` items of kind `auto_reply`): (recipient, state, error code).
    pub async fn auto_reply_legs(&self) -> Vec<(String, String, Option<String>)> {
        let jobs = self.aws.items_with_prefix("JOB#").await;
        jobs.iter()
            .filter(|job| attr_s(job, "kind") == "auto_reply")
            .flat_map(|job| match job.get("legs") {
                Some(AttributeValue::M(legs)) => legs.values().map(leg_summary).collect::<Vec<_>>(),
                other => panic!("auto reply without legs: {other:?}"),
            })
            .collect()
    }
}

pub fn leg_summary(leg: &AttributeValue) -> (String, String, Option<String>) {
    let leg: &Item = leg.as_m().unwrap();
    let code = leg.get("error").and_then(|e| e.as_m().ok()).and_then(|e| e.get("code")).map(|c| match c {
        AttributeValue::N(n) => n.clone(),
        other => panic!("error code {other:?}"),
    });
    (attr_s(leg, "to").to_owned(), attr_s(leg, "state").to_owned(), code)
}

pub fn key(customer: &str) -> ConversationKey {
    ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(customer).unwrap() }
}

/// What an agent reads in a WhatsApp message the bridge sent, whatever its type.
pub fn readable(message: &Value) -> String {
    match message["type"].as_str().unwrap() {
        "text" => message["text"]["body"].as_str().unwrap().to_owned(),
        "interactive" => message["interactive"]["body"]["text"].as_str().unwrap().to_owned(),
        "template" => message["template"]["components"][0]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" | "),
        "reaction" => message["reaction"]["emoji"].as_str().unwrap().to_owned(),
        other => panic!("unexpected message type {other}"),
    }
}

/// The copies of customer messages an agent received: everything but the bridge's notices.
/// `agent` presses a reply button of a copy (Meta's `interactive.button_reply`).
pub fn pressed(agent: &str, id: &str) -> Value {
    let mut message = bridge_testkit::testing::whatsapp_text(agent, "", None);
    message.as_object_mut().unwrap().remove("text");
    message["type"] = serde_json::json!("interactive");
    message["interactive"] =
        serde_json::json!({ "type": "button_reply", "button_reply": { "id": id, "title": "Button" } });
    message
}

pub fn copies(messages: &[Value]) -> Vec<String> {
    messages.iter().filter(|m| m["type"] == "template" || m["type"] == "interactive").map(readable).collect()
}

/// An agent's picture as the Graph API holds it (`graph_holds`).
pub const AGENT_PHOTO: &[u8] = b"\x89PNG\r\n\x1a\n the agent's picture";
pub const AGENT_MEDIA_ID: &str = "1013859600285441";

/// The Graph API holds the agent's picture: `GET /v26.0/<id>` names its URL (here on the
/// fake itself, as Meta's names lookaside.fbsbx.com), and that URL serves it; both need the token.
pub async fn graph_holds(bridge: &Bridge, media_id: &str, download_url: &str) {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let bearer = format!("Bearer {}", bridge_testkit::testing::META_ACCESS_TOKEN);
    Mock::given(method("GET"))
        .and(path(format!("/v26.0/{media_id}")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp", "url": download_url, "mime_type": "image/png",
            "sha256": "abc", "file_size": AGENT_PHOTO.len(), "id": media_id,
        })))
        .mount(&bridge.providers.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(AGENT_PHOTO.to_vec(), "image/png"))
        .mount(&bridge.providers.graph)
        .await;
}
