//! A line on AWS End User Messaging SMS, over the wire (docs/aws-sms.md): customers' texts and
//! delivery events arrive as SNS events shaped as the AWS docs show them; replies go out as
//! `SendTextMessage` calls to a fake of the API (awsJson1_0) that the SDK reaches through
//! `AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2`. DynamoDB and SQS on moto, the Graph API faked.

use bridge_testkit::testing::aws_sms::{
    CONFIGURATION_SET, EVENTS_TOPIC_ARN, INBOUND_TOPIC_ARN, ORIGINATION_IDENTITY, SEND_TEXT_MESSAGE, delivery_event,
    inbound_text, message_id,
};
use bridge_testkit::testing::logs::{assert_no_number_logged, capture_logs, logged_lines};
use bridge_testkit::testing::{AGENTS, CUSTOMER, KNOWN_NUMBERS, LINE_SMS_NUMBER, whatsapp_text};
use serde_json::{Value, json};
use shared::domain::{DeliveryStatus, LegState};
use shared::ports::Direction;
use sms_webhook::SnsHandled;

use crate::common::{AGENT_MEDIA_ID, AGENT_PHOTO, Bridge, copies, graph_holds};

const OTHER_NUMBER: &str = "+14155550199";
const OPTED_OUT_NOTE: &str = "Opted out of SMS";

fn text_id(n: u32) -> String {
    format!("cae173d2-66b9-564c-8309-{n:012}")
}

/// The customer texts `body` (SNS delivers two-way SMS's notification).
async fn customer_texts(bridge: &Bridge, body: &str, n: u32) {
    let handled = bridge.sns(INBOUND_TOPIC_ARN, &[inbound_text(CUSTOMER, LINE_SMS_NUMBER, body, &text_id(n))]).await;
    assert_eq!(handled.unwrap(), SnsHandled { texts: 1, statuses: 0, refused: 0 });
}

/// AWS reports on the `n`th message it accepted; `context` as the send gave it.
async fn aws_reports(bridge: &Bridge, event_type: &str, is_final: bool, n: usize, context: Option<Value>) {
    let event = delivery_event(event_type, is_final, &message_id(n), LINE_SMS_NUMBER, CUSTOMER, context);
    let handled = bridge.sns(EVENTS_TOPIC_ARN, &[event]).await.unwrap();
    assert_eq!(handled, SnsHandled { texts: 0, statuses: 1, refused: 0 });
}

/// An agent swipe-replies to their copy of `to_text`; returns their message's wamid.
async fn agent_replies(bridge: &Bridge, agent: &str, to_text: &str, reply: &str) -> String {
    let copy = bridge.copy_for(agent, to_text).await;
    let wamid = bridge.agent_writes(whatsapp_text(agent, reply, Some(&copy))).await;
    bridge.run_worker().await;
    wamid
}

fn numbers_in_logs() -> Vec<&'static str> {
    let mut numbers = KNOWN_NUMBERS.to_vec();
    numbers.push(OTHER_NUMBER);
    numbers
}

#[tokio::test]
async fn a_text_in_by_sns_reaches_every_agent_once_and_a_replayed_notification_nothing_more() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "Is my bike ready?", 1).await;
    bridge.run_worker().await;
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert!(copies[0].contains("Is my bike ready?"), "{copies:?}");
    }

    // SNS delivers at least once: the same inboundMessageId again records and sends nothing.
    customer_texts(&bridge, "Is my bike ready?", 1).await;
    bridge.run_worker().await;
    for agent in AGENTS {
        assert_eq!(copies(&bridge.sent_to(agent).await).len(), 1, "{agent} got it once");
    }
    assert_eq!(bridge.thread(CUSTOMER).await.len(), 1);
    assert!(bridge.aws_sms().sends().await.is_empty(), "nothing texted back");
    assert!(assert_no_number_logged(&numbers_in_logs()) > 0);
}

#[tokio::test]
async fn a_reply_goes_out_as_one_send_text_message_and_delivery_events_reach_the_agent_once() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({ "delivery_receipts": "reaction" })).await;
    customer_texts(&bridge, "Is my bike ready?", 1).await;
    bridge.run_worker().await;
    let agent_wamid = agent_replies(&bridge, AGENTS[0], "Is my bike ready?", "Yes, *ready* at 5").await;

    let sends = bridge.aws_sms().sends().await;
    assert_eq!(sends.len(), 1, "exactly one SendTextMessage");
    let thread = bridge.thread(CUSTOMER).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound).unwrap();
    let job = reply.legs[0].job_id.as_str();
    assert_eq!(
        sends[0],
        json!({
            "OriginationIdentity": ORIGINATION_IDENTITY,
            "DestinationPhoneNumber": CUSTOMER,
            "MessageBody": "Yes, ready at 5",
            "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": CONFIGURATION_SET,
            "Context": { "job": job },
        })
    );
    let request = &bridge.aws_sms().requests().await[0];
    assert_eq!(request.headers.get("x-amz-target").unwrap(), SEND_TEXT_MESSAGE);
    assert_eq!(request.headers.get("content-type").unwrap(), "application/x-amz-json-1.0");
    assert_eq!(reply.legs[0].provider_id.as_deref(), Some(message_id(0).as_str()), "the MessageId is the leg's");

    // Out of order: delivered before queued. The agent sees ✅ once; the late and the
    // repeated events change nothing and send nothing.
    let before = bridge.sent_to(AGENTS[0]).await.len();
    let context = Some(json!({ "job": job }));
    aws_reports(&bridge, "TEXT_DELIVERED", true, 0, context.clone()).await;
    aws_reports(&bridge, "TEXT_QUEUED", false, 0, context.clone()).await;
    aws_reports(&bridge, "TEXT_DELIVERED", true, 0, context).await;
    bridge.run_worker().await;
    let to_agent: Vec<Value> = bridge.sent_to(AGENTS[0]).await.into_iter().skip(before).collect();
    assert_eq!(to_agent.len(), 1, "{to_agent:?}");
    assert_eq!(to_agent[0]["reaction"]["emoji"], "✅");
    assert_eq!(to_agent[0]["reaction"]["message_id"], agent_wamid.as_str());
    let thread = bridge.thread(CUSTOMER).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound).unwrap();
    assert_eq!((reply.legs[0].state, reply.legs[0].status), (LegState::Sent, Some(DeliveryStatus::Delivered)));
    assert_eq!(bridge.aws_sms().sends().await.len(), 1);
    assert_no_number_logged(&numbers_in_logs());
}

#[tokio::test]
async fn each_failure_an_event_reports_shows_the_agent_a_cross_and_the_reason_in_words() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "Call me back", 1).await;
    bridge.run_worker().await;
    let cases = [
        ("TEXT_BLOCKED", "blocked by the recipient or their carrier"),
        ("TEXT_SPAM", "filtered by the carrier as spam"),
        ("TEXT_CARRIER_BLOCKED", "filtered by the carrier"),
        ("TEXT_CARRIER_UNREACHABLE", "the carrier could not be reached"),
        ("TEXT_UNREACHABLE", "the phone is off or unreachable"),
        ("TEXT_TTL_EXPIRED", "not delivered in time (expired)"),
        ("TEXT_INVALID", "invalid phone number"),
        ("TEXT_INVALID_MESSAGE", "the message can't be sent as written"),
        ("TEXT_PROTECT_BLOCKED", "blocked by the account's protect configuration"),
        ("TEXT_UNKNOWN", "unknown error from the carrier"),
    ];
    for (n, (event_type, words)) in cases.iter().enumerate() {
        let wamid = agent_replies(&bridge, AGENTS[1], "Call me back", &format!("Reply {n}")).await;
        let before = bridge.sent_to(AGENTS[1]).await.len();
        // Odd cases carry no Context: the leg is found by the MessageId the worker recorded.
        let context = match n % 2 {
            0 => Some(json!({ "job": job_of(&bridge, &format!("Reply {n}")).await })),
            _ => None,
        };
        // Not final yet: AWS may still deliver it, so nothing changes.
        aws_reports(&bridge, event_type, false, n, context.clone()).await;
        bridge.run_worker().await;
        assert_eq!(bridge.sent_to(AGENTS[1]).await.len(), before, "{event_type}: not final, nothing told");
        aws_reports(&bridge, event_type, true, n, context.clone()).await;
        // Repeated: nothing more.
        aws_reports(&bridge, event_type, true, n, context).await;
        bridge.run_worker().await;
        let told: Vec<Value> = bridge.sent_to(AGENTS[1]).await.into_iter().skip(before).collect();
        assert_eq!(told.len(), 2, "{event_type}: {told:?}");
        assert_eq!(told[0]["reaction"]["emoji"], "❌");
        assert_eq!(told[0]["reaction"]["message_id"], wamid.as_str());
        assert_eq!(told[1]["text"]["body"], format!("not delivered: {words} ({event_type})"));
        assert_eq!(told[1]["context"]["message_id"], wamid.as_str());
    }
    // A late success after a failure (AWS allows events up to 72 h late): the cross is
    // replaced by the delivery mark.
    let before = bridge.sent_to(AGENTS[1]).await.len();
    aws_reports(&bridge, "TEXT_DELIVERED", true, 0, None).await;
    bridge.run_worker().await;
    let told: Vec<Value> = bridge.sent_to(AGENTS[1]).await.into_iter().skip(before).collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["reaction"]["emoji"], "✅", "the cross replaced: {told:?}");
    assert_eq!(bridge.aws_sms().sends().await.len(), cases.len(), "one send per reply, none repeated");
    assert_no_number_logged(&numbers_in_logs());
}

/// The job of the outbound reply `body`.
async fn job_of(bridge: &Bridge, body: &str) -> String {
    let thread = bridge.thread(CUSTOMER).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound && m.body == body).unwrap();
    reply.legs[0].job_id.as_str().to_owned()
}

#[tokio::test]
async fn stop_by_sns_opts_the_customer_out_and_no_reply_reaches_them() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "hi", 1).await;
    bridge.run_worker().await;
    // AWS answers STOP itself (its opt-out list); the notification still reaches the bridge,
    // which records it with the message and tells the agents.
    customer_texts(&bridge, "STOP", 2).await;
    assert!(bridge.opted_out(CUSTOMER).await);
    bridge.run_worker().await;
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert_eq!(copies.len(), 2, "{copies:?}");
        assert!(copies[1].contains(OPTED_OUT_NOTE), "{agent}: {copies:?}");
    }
    let before = bridge.sent_to(AGENTS[0]).await.len();
    agent_replies(&bridge, AGENTS[0], "hi", "Are you sure?").await;
    let told: Vec<Value> = bridge.sent_to(AGENTS[0]).await.into_iter().skip(before).collect();
    let body = told[0]["text"]["body"].as_str().unwrap();
    assert!(body.starts_with("❌ Not sent:") && body.contains("opted out"), "{body}");
    assert!(bridge.aws_sms().sends().await.is_empty(), "nothing was sent to an opted-out customer");
    assert_no_number_logged(&numbers_in_logs());
}

#[tokio::test]
async fn a_send_aws_refuses_as_opted_out_marks_the_conversation_and_the_next_reply_is_not_sent() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "hi", 1).await;
    bridge.run_worker().await;
    // The customer opted out at AWS (STOP to another of the business's numbers, or AWS's
    // list changed by hand): SendTextMessage refuses.
    bridge.aws_sms().refuse(400, "ConflictException", Some("DESTINATION_PHONE_NUMBER_OPTED_OUT"), &[], 1).await;
    let before = bridge.sent_to(AGENTS[0]).await.len();
    let wamid = agent_replies(&bridge, AGENTS[0], "hi", "Your order shipped").await;
    let told: Vec<Value> = bridge.sent_to(AGENTS[0]).await.into_iter().skip(before).collect();
    assert_eq!(told[0]["reaction"]["emoji"], "❌");
    assert_eq!(told[1]["text"]["body"], "not delivered: customer opted out (21610)");
    assert_eq!(told[1]["context"]["message_id"], wamid.as_str());
    assert!(bridge.opted_out(CUSTOMER).await, "the bridge's flag follows AWS's list");

    // The next reply is refused by the bridge itself: AWS isn't even asked.
    agent_replies(&bridge, AGENTS[0], "hi", "Sorry to bother you").await;
    assert_eq!(bridge.aws_sms().sends().await.len(), 1);
    assert_no_number_logged(&numbers_in_logs());
}

#[tokio::test]
async fn send_refusals_are_retried_or_escalated_by_their_class() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "hi", 1).await;
    bridge.run_worker().await;

    // Throttled twice, then accepted: one message reaches the customer.
    bridge.aws_sms().refuse(400, "ThrottlingException", None, &[], 2).await;
    let copy = bridge.copy_for(AGENTS[0], "hi").await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "On our way", Some(&copy))).await;
    bridge.run_worker_until_idle(std::time::Duration::from_secs(60)).await;
    let sends = bridge.aws_sms().sends().await;
    assert_eq!(sends.len(), 3, "two refusals, then the send");
    let thread = bridge.thread(CUSTOMER).await;
    let sent = thread.iter().find(|m| m.body == "On our way").unwrap();
    assert_eq!(sent.legs[0].state, LegState::Sent);

    // The account's spend limit: an operator must act; the job goes to the dead-letter queue.
    bridge
        .aws_sms()
        .refuse(400, "ServiceQuotaExceededException", Some("MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"), &[], 1)
        .await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "One more thing", Some(&copy))).await;
    bridge.run_worker().await;
    assert_eq!(bridge.aws.dlq_depth().await, 1);
    let thread = bridge.thread(CUSTOMER).await;
    let refused = thread.iter().find(|m| m.body == "One more thing").unwrap();
    let error = refused.legs[0].error.as_ref().unwrap();
    assert_eq!(error.code, Some(shared::domain::aws_sms::AwsSmsReason::SpendLimitReached.code()));
    assert_no_number_logged(&numbers_in_logs());
}

#[tokio::test]
async fn bad_sns_input_is_refused_with_a_clear_log_and_nothing_recorded_and_the_rest_is_handled() {
    capture_logs();
    let bridge = Bridge::on_aws_sms(json!({})).await;
    let good = inbound_text(CUSTOMER, LINE_SMS_NUMBER, "hello", &text_id(1));

    // From a topic the deployment doesn't own.
    let stranger = "arn:aws:sns:us-east-1:999988887777:not-ours";
    let handled = bridge.sns(stranger, std::slice::from_ref(&good)).await.unwrap();
    assert_eq!(handled, SnsHandled { texts: 0, statuses: 0, refused: 1 });
    assert!(bridge.aws.items().await.is_empty(), "nothing recorded");
    assert_eq!(bridge.aws.queue_depth().await, 0);

    // One event: a malformed Message, a text to a number no line has, a delivery event on
    // the inbound topic, and a good text, which is recorded.
    let malformed = json!("this is not the JSON AWS publishes");
    let unknown_line = inbound_text(CUSTOMER, OTHER_NUMBER, "hello?", &text_id(2));
    let misplaced = delivery_event("TEXT_DELIVERED", true, &message_id(0), LINE_SMS_NUMBER, CUSTOMER, None);
    let handled = bridge.sns(INBOUND_TOPIC_ARN, &[malformed, unknown_line, misplaced, good]).await.unwrap();
    assert_eq!(handled, SnsHandled { texts: 1, statuses: 0, refused: 3 });
    bridge.run_worker().await;
    assert_eq!(bridge.thread(CUSTOMER).await.len(), 1, "only the good text");
    for agent in AGENTS {
        assert_eq!(copies(&bridge.sent_to(agent).await).len(), 1);
    }
    assert!(bridge.aws_sms().sends().await.is_empty(), "nothing sent");

    let lines = logged_lines();
    for expected in [
        "SNS topic `not-ours`, which is not one of the configured AWS SMS topics",
        "the notification's Message is not AWS SMS JSON",
        "no line is configured for the destination number",
        "a delivery event from SNS topic `bridge-sms-inbound`, which is not the topic configured for it",
    ] {
        assert!(lines.iter().any(|line| line.contains(expected)), "no log line says {expected:?}");
    }
    assert_no_number_logged(&numbers_in_logs());
}

/// The adapter alone, against the fake: what each kind of failure means for the worker.
#[tokio::test]
async fn the_adapter_tells_a_send_that_never_left_from_one_that_may_have() {
    use shared::adapters::aws_sms::AwsSmsClient;
    use shared::domain::{E164, ErrorClass, ProviderFailure, SmsOrigin, SmsSender};
    use shared::ports::{SentLookup, SmsProvider};
    use std::time::Duration;

    let closed_port = "http://127.0.0.1:9";
    let sdk = shared::aws::emulator_sdk_config(closed_port).await;
    let (line, to) = (E164::parse(LINE_SMS_NUMBER).unwrap(), E164::parse(CUSTOMER).unwrap());
    let origin = SmsOrigin { number: &line, provider: SmsSender::AwsEndUserMessaging { identity: None } };

    // Nothing listens: the request never left.
    let nowhere = AwsSmsClient::new(&sdk, Some(closed_port), CONFIGURATION_SET, Duration::from_secs(2));
    let failure = nowhere.send(origin, &to, "hi", &[], None).await.unwrap_err();
    assert!(matches!(failure, ProviderFailure::NotSent(_)), "{failure}");

    let fake = bridge_testkit::testing::aws_sms::FakeAwsSms::start().await;
    let client = AwsSmsClient::new(&sdk, Some(&fake.uri()), CONFIGURATION_SET, Duration::from_millis(500));
    // Unset, the line's number is the origination identity.
    assert_eq!(client.send(origin, &to, "hi", &[], None).await.unwrap().id, message_id(0));
    assert_eq!(fake.sends().await[0]["OriginationIdentity"], LINE_SMS_NUMBER);
    assert!(fake.sends().await[0].get("Context").is_none(), "no job, no Context");

    // Answered after the client stopped waiting: AWS may have it.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let failure = client.send(origin, &to, "hi", &[], None).await.unwrap_err();
    assert!(matches!(failure, ProviderFailure::Ambiguous(_)), "{failure}");

    // An exception the service model doesn't name: by its HTTP status.
    fake.refuse(503, "SomethingNewException", None, &[], 1).await;
    let failure = client.send(origin, &to, "hi", &[], None).await.unwrap_err();
    assert!(matches!(failure, ProviderFailure::Rejected { http_status: 503, code: None, .. }), "{failure}");
    assert_eq!(ErrorClass::of(&failure), ErrorClass::Retry);

    // An invalid destination, as AWS names the field: permanent, with the reason.
    fake.refuse(400, "ValidationException", Some("INVALID_PARAMETER"), &["DestinationPhoneNumber"], 1).await;
    let failure = client.send(origin, &to, "hi", &[], None).await.unwrap_err();
    assert_eq!(ErrorClass::of(&failure), ErrorClass::Permanent, "{failure}");
    assert!(!failure.to_string().contains("4155550134"));

    // Media without a media bucket: not sent at all, not even the text, and said so.
    let calls = fake.sends().await.len();
    let failure = client.send(origin, &to, "look", &["https://bridge.example.com/media/x".into()], None).await;
    let failure = failure.unwrap_err();
    assert_eq!(ErrorClass::of(&failure), ErrorClass::Permanent);
    let ProviderFailure::Rejected { code, .. } = &failure else { panic!("{failure}") };
    assert_eq!(
        shared::domain::status::failure_notice(*code),
        "not delivered: pictures and files can't be sent by SMS on this line (no media bucket)"
    );
    assert_eq!(fake.sends().await.len(), calls, "nothing reached AWS");

    // No list to ask about an uncertain send.
    let since = jiff::Timestamp::now();
    assert_eq!(client.find_sent(origin, &to, "hi", since).await.unwrap(), SentLookup::Unsupported);
}

/// An agent's picture on an AWS line goes as MMS: the worker fetches the bridge's own signed
/// link (served here over TCP by the same webhooks, which get it from the Graph API), puts
/// it in the media bucket under the job, and `SendMediaMessage` names its `s3://` URL with
/// the caption as the text.
#[tokio::test]
async fn an_agents_picture_goes_as_mms_staged_in_the_media_bucket() {
    capture_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let bucket = format!("media-{:016x}", fastrand::u64(..));
    let bridge =
        Bridge::on_aws_sms_with(json!({}), &[("PUBLIC_BASE_URL", &base), ("AWS_SMS_MEDIA_BUCKET", &bucket)]).await;
    let s3 = shared::aws::s3_client(&bridge.aws.sdk_config().await);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let webhooks = bridge.webhooks.clone();
    tokio::spawn(async move { axum::serve(listener, webhooks).await });
    let download = format!("{}/whatsapp_business/attachments/?mid={AGENT_MEDIA_ID}", bridge.providers.graph.uri());
    graph_holds(&bridge, AGENT_MEDIA_ID, &download).await;

    customer_texts(&bridge, "What does it look like?", 1).await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], "What does it look like?").await;
    let mut picture = whatsapp_text(AGENTS[0], "", Some(&copy));
    picture.as_object_mut().unwrap().remove("text");
    picture["type"] = json!("image");
    picture["image"] =
        json!({ "id": AGENT_MEDIA_ID, "mime_type": "image/png", "sha256": "abc", "caption": "*This* one" });
    bridge.agent_writes(picture).await;
    bridge.run_worker().await;

    assert!(bridge.aws_sms().sends().await.is_empty(), "no SendTextMessage for a picture");
    let sends = bridge.aws_sms().media_sends().await;
    assert_eq!(sends.len(), 1, "{sends:?}");
    let thread = bridge.thread(CUSTOMER).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound).unwrap();
    let job = reply.legs[0].job_id.as_str();
    let key = format!("mms/{job}/0");
    assert_eq!(
        sends[0],
        json!({
            "OriginationIdentity": ORIGINATION_IDENTITY,
            "DestinationPhoneNumber": CUSTOMER,
            "MessageBody": "This one",
            "MediaUrls": [format!("s3://{bucket}/{key}")],
            "ConfigurationSetName": CONFIGURATION_SET,
            "Context": { "job": job },
        })
    );
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(object.content_type(), Some("image/png"));
    assert_eq!(object.body.collect().await.unwrap().into_bytes().as_ref(), AGENT_PHOTO);
    assert_eq!(reply.legs[0].state, LegState::Sent);
    assert_no_number_logged(&numbers_in_logs());
}

/// Without a media bucket, a picture on an AWS line is refused (nothing sent, not even its
/// caption), and the agent is told at once.
#[tokio::test]
async fn without_a_media_bucket_a_picture_is_not_sent_at_all() {
    let bridge = Bridge::on_aws_sms(json!({})).await;
    customer_texts(&bridge, "Photo please", 1).await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], "Photo please").await;
    let mut picture = whatsapp_text(AGENTS[0], "", Some(&copy));
    picture.as_object_mut().unwrap().remove("text");
    picture["type"] = json!("image");
    picture["image"] = json!({ "id": AGENT_MEDIA_ID, "mime_type": "image/png", "sha256": "abc", "caption": "here" });
    bridge.agent_writes(picture).await;
    bridge.run_worker().await;
    assert!(bridge.aws_sms().sends().await.is_empty() && bridge.aws_sms().media_sends().await.is_empty());
    let thread = bridge.thread(CUSTOMER).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound).unwrap();
    assert_eq!(reply.legs[0].state, LegState::Failed);
    let told = bridge.sent_to(AGENTS[0]).await;
    let told = serde_json::to_string(&told).unwrap();
    assert!(told.contains("pictures and files can't be sent by SMS on this line"), "{told}");
}
