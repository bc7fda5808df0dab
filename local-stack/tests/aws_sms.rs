//! The sample's AWS End User Messaging SMS line in the local stack (issue 16): a customer's
//! text reaches the SMS webhook as AWS publishes it (a two-way SMS notification through SNS),
//! the agents' replies go out by `SendTextMessage` from the line's number, the delivery events
//! come back through SNS to the same handler, AWS answers STOP itself, and the simulated API
//! refuses what AWS refuses with AWS's exceptions.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use serde_json::{Value, json};

use common::{LocalStack, Page, until};

const CUSTOMER: &str = "+14155550134";
const AWS_LINE: &str = "aws-demo";
const AWS_NUMBER: &str = "+14155550200";
const AWS_IDENTITY: &str = "phone-0a1b2c3d4e5f40718293a4b5c6d7e8f9";
const TWILIO_NUMBER: &str = "+14155550100";
const ANA: &str = "14155550111";
const CHLOE: &str = "14155550113";
const DEV: &str = "14155550114";

impl Page {
    /// The customer texts the AWS line; returns what the page's API answered.
    async fn text_aws_line(&self, text: &str) -> Value {
        let (status, answer) =
            self.post("/_sim/customer/send", json!({ "from": CUSTOMER, "line": AWS_LINE, "text": text })).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn aws_thread(&self) -> Value {
        self.get(&format!("/_sim/thread?customer={}&line={AWS_LINE}", CUSTOMER.replace('+', "%2B"))).await
    }
}

/// A text to the AWS line reaches its two agents (and not the Twilio line's); the swipe-reply
/// reaches the customer's phone from the AWS number, sent by `SendTextMessage` (its
/// `MessageId` is the leg's provider id); the delivery events come back through SNS and the
/// agent's message turns blue-ticked, the line's delivery receipt.
#[tokio::test]
async fn a_text_to_the_aws_line_reaches_its_agents_and_the_reply_goes_out_from_its_number() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    let state = page.state().await;
    let line = state["lines"].as_array().unwrap().iter().find(|l| l["id"] == AWS_LINE).unwrap().clone();
    assert_eq!((&line["sms_provider"], &line["sms_number"]), (&json!("aws_end_user_messaging"), &json!(AWS_NUMBER)));
    assert_eq!(line["agents"][0]["name"], "Chloe", "{line}");

    let answer = page.text_aws_line("Is my laptop fixed?").await;
    assert_eq!((&answer["webhook_status"], &answer["sns"]), (&json!(200), &json!("handled")), "{answer}");
    let (chloe_copy, copies) = page.delivered_copy(CHLOE, "Is my laptop fixed?").await;
    assert_eq!(copies.len(), 1, "{copies:?}");
    page.delivered_copy(DEV, "Is my laptop fixed?").await;
    assert!(page.to_agent(ANA, "Is my laptop fixed?").await.is_empty(), "the Twilio line's agents get nothing");

    // The first-contact acknowledgement and the reply, both from the AWS number.
    let ack = page.sms_to(CUSTOMER, "Thanks, we got your message. Someone will answer shortly.").await;
    assert_eq!(ack[0]["line"], AWS_NUMBER, "{ack:?}");
    let reply = page.agent_sends(CHLOE, "Yes, pick it up at 5", chloe_copy["id"].as_str()).await;
    let sms = page.sms_to(CUSTOMER, "Yes, pick it up at 5").await;
    assert_eq!(sms.len(), 1, "sent once: {sms:?}");
    assert_eq!((&sms[0]["line"], &sms[0]["status"]), (&json!(AWS_NUMBER), &json!("delivered")), "{sms:?}");
    let message_id = sms[0]["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&message_id).is_ok(), "an AWS MessageId: {message_id}");
    page.marked_read(CHLOE, &reply).await;

    // The stored thread: the reply's leg carries AWS's MessageId and the delivered status;
    // the handset's TEXT_DELIVERED after the carrier's TEXT_SUCCESSFUL changed nothing twice.
    let leg = until("the reply's leg delivered", 30, async || {
        let thread = page.aws_thread().await;
        let messages = thread["messages"].as_array()?.clone();
        let reply = messages.iter().find(|m| m["body"] == "Yes, pick it up at 5")?.clone();
        let leg = reply["legs"].as_array()?.first()?.clone();
        (leg["status"] == "delivered").then_some(leg)
    })
    .await;
    assert_eq!(leg["provider_id"], message_id.as_str(), "{leg}");
    let last_event = until("the handset's receipt", 10, async || {
        let state = page.state().await;
        let record = state["sms"].as_array()?.iter().find(|m| m["id"] == message_id.as_str())?.clone();
        (record["event_type"] == "TEXT_DELIVERED").then_some(record)
    })
    .await;
    assert_eq!(last_event["status"], "delivered");
    let twilio_sent = page.state().await["sms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["line"] == TWILIO_NUMBER && m["direction"] == "out")
        .count();
    assert_eq!(twilio_sent, 0, "nothing went out through Twilio");
    stack.stop();
}

/// STOP to an AWS number (AWS-managed opt-outs, the default): AWS answers it, puts the
/// customer on the account's opt-out list and publishes nothing, so the agents see no copy.
/// The next reply is refused by AWS (`ConflictException` `DESTINATION_PHONE_NUMBER_OPTED_OUT`):
/// the bridge marks the conversation opted out and tells the agent, and nothing is texted.
#[tokio::test]
async fn stop_to_the_aws_line_is_answered_by_aws_and_the_bridge_learns_it_from_the_refused_reply() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    page.text_aws_line("Hello there").await;
    let (copy, _) = page.delivered_copy(CHLOE, "Hello there").await;

    let answer = page.text_aws_line("STOP").await;
    assert_eq!((&answer["answered_by"], &answer["webhook_status"]), (&json!("aws"), &Value::Null), "{answer}");
    let state = page.state().await;
    let confirmation = state["sms"].as_array().unwrap().iter().find(|m| m["sender"] == "aws").cloned().unwrap();
    assert_eq!(confirmation["line"], AWS_NUMBER);
    assert!(confirmation["body"].as_str().unwrap().contains("unsubscribed"), "{confirmation}");
    let line = state["lines"].as_array().unwrap().iter().find(|l| l["id"] == AWS_LINE).unwrap().clone();
    assert_eq!(line["opted_out"], json!([CUSTOMER]));
    assert_eq!(state["opted_out"], json!([]), "the Twilio line's list is another");

    page.agent_sends(CHLOE, "Sorry, one more thing", copy["id"].as_str()).await;
    let notice = until("Chloe's notice that the customer opted out", 60, async || {
        let notices = page.to_agent(CHLOE, "opted out").await;
        notices.into_iter().next()
    })
    .await;
    assert!(notice.to_string().contains("opted out"), "{notice}");
    until("the conversation marked opted out", 30, async || {
        (page.aws_thread().await["opted_out"] == true).then_some(())
    })
    .await;
    let state = page.state().await;
    assert!(
        !state["sms"].as_array().unwrap().iter().any(|m| m["body"] == "Sorry, one more thing"),
        "nothing texted to an opted-out customer"
    );
    assert!(page.to_agent(CHLOE, "STOP").await.is_empty(), "AWS published no STOP: {:?}", state["whatsapp"]);
    stack.stop();
}

/// With self-managed opt-outs AWS leaves STOP to the bridge: it is published like any text,
/// AWS answers nothing and lists nobody, and the bridge opts the customer out itself (the
/// agents' copies say so).
#[tokio::test]
async fn with_self_managed_opt_outs_stop_reaches_the_bridge() {
    let mut stack = LocalStack::start(&["--aws-self-managed-opt-outs"], &[]);
    let page = Page::new(&stack);
    let answer = page.text_aws_line("STOP").await;
    assert_eq!(answer["webhook_status"], 200, "{answer}");
    until("the conversation opted out by the bridge", 30, async || {
        (page.aws_thread().await["opted_out"] == true).then_some(())
    })
    .await;
    let state = page.state().await;
    assert!(!state["sms"].as_array().unwrap().iter().any(|m| m["sender"] == "aws"), "AWS answered nothing");
    let line = state["lines"].as_array().unwrap().iter().find(|l| l["id"] == AWS_LINE).unwrap().clone();
    assert_eq!(line["opted_out"], json!([]), "AWS's list stays empty");
    stack.stop();
}

/// The simulated `SendTextMessage` over the wire, as the SDK calls it (awsJson1_0): AWS's
/// exceptions for an unknown identity, a number of another provider, an unknown configuration
/// set, a bad destination, a missing signature, an MMS without files and an unknown
/// operation; accepted by the line's id, its ARN and its number; `DryRun` checked but not sent.
#[tokio::test]
async fn the_simulated_api_refuses_what_aws_refuses() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    let http = reqwest::Client::new();
    let url = format!("{}/_sim/aws-sms/", stack.base());
    let call = async |target: &str, signed: bool, body: Value| -> (u16, Value) {
        let mut request = http
            .post(&url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .body(body.to_string());
        if signed {
            request = request.header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/sms-voice/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
            );
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let errortype = response.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        if let Some(errortype) = errortype {
            assert_eq!(body["__type"], errortype.as_str(), "the header and the body name one exception");
        }
        (status, body)
    };
    let send = |identity: &str| {
        json!({
            "DestinationPhoneNumber": CUSTOMER, "OriginationIdentity": identity, "MessageBody": "hi",
            "MessageType": "TRANSACTIONAL", "ConfigurationSetName": "bridge-sms-local", "Context": { "job": "j-1" },
        })
    };
    const SEND: &str = "PinpointSMSVoiceV2.SendTextMessage";

    let (status, body) = call(SEND, true, send("phone-ffffffffffffffffffffffffffffffff")).await;
    assert_eq!(status, 400);
    assert_eq!((&body["__type"], &body["ResourceType"]), (&json!("ResourceNotFoundException"), &json!("phone-number")));
    let (_, body) = call(SEND, true, send(TWILIO_NUMBER)).await;
    assert_eq!(body["__type"], "ResourceNotFoundException", "the Twilio line's number is not in the AWS account");
    let (_, body) = call(SEND, true, send("pool-0123")).await;
    assert_eq!((&body["__type"], &body["ResourceType"]), (&json!("ResourceNotFoundException"), &json!("pool")));
    let mut other_set = send(AWS_IDENTITY);
    other_set["ConfigurationSetName"] = json!("another-set");
    let (_, body) = call(SEND, true, other_set).await;
    assert_eq!(
        (&body["__type"], &body["ResourceType"]),
        (&json!("ResourceNotFoundException"), &json!("configuration-set"))
    );
    let mut bad_number = send(AWS_IDENTITY);
    bad_number["DestinationPhoneNumber"] = json!("555-0134");
    let (status, body) = call(SEND, true, bad_number).await;
    assert_eq!(
        (status, &body["__type"], &body["Reason"]),
        (400, &json!("ValidationException"), &json!("FIELD_VALIDATION_FAILED"))
    );
    assert_eq!(body["Fields"][0]["Name"], "DestinationPhoneNumber");
    let (status, body) = call(SEND, false, send(AWS_IDENTITY)).await;
    assert_eq!((status, &body["__type"]), (403, &json!("MissingAuthenticationToken")));
    let (_, body) = call("PinpointSMSVoiceV2.SendMediaMessage", true, send(AWS_IDENTITY)).await;
    assert_eq!((&body["__type"], &body["Reason"]), (&json!("ValidationException"), &json!("MISSING_PARAMETER")));
    assert_eq!(body["Fields"][0]["Name"], "MediaUrls", "an MMS names its files");
    let (_, body) = call("PinpointSMSVoiceV2.SendVoiceMessage", true, send(AWS_IDENTITY)).await;
    assert_eq!(body["__type"], "UnknownOperationException");

    let before = page.state().await["sms"].as_array().unwrap().len();
    let mut dry = send(AWS_IDENTITY);
    dry["DryRun"] = json!(true);
    let (status, body) = call(SEND, true, dry).await;
    assert!(status == 200 && body["MessageId"].is_string(), "{body}");
    assert_eq!(page.state().await["sms"].as_array().unwrap().len(), before, "a dry run texts nobody");

    let arn = format!("arn:aws:sms-voice:us-east-1:123456789012:phone-number/{AWS_IDENTITY}");
    for identity in [AWS_IDENTITY, arn.as_str(), AWS_NUMBER] {
        let (status, body) = call(SEND, true, send(identity)).await;
        assert!(status == 200 && body["MessageId"].is_string(), "{identity}: {body}");
    }
    let sent = page.sms_to(CUSTOMER, "hi").await;
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|m| m["line"] == AWS_NUMBER && m["status"] == "delivered"), "{sent:?}");

    // Pictures don't travel by AWS's two-way SMS: the page says so rather than dropping one.
    let (status, answer) = page
        .post(
            "/_sim/customer/send",
            json!({ "from": CUSTOMER, "line": AWS_LINE, "text": "look", "media": [{ "content_type": "image/jpeg", "data_base64": "/9j/4AAQ" }] }),
        )
        .await;
    assert!(status == 400 && answer["error"].as_str().unwrap().contains("text only"), "{answer}");
    stack.stop();
}

/// An agent's picture to a customer of the AWS line goes out as MMS: the worker stages it in
/// the local media bucket (the emulator's S3) and calls `SendMediaMessage`; the simulated AWS
/// reads the file from S3, the customer's phone shows it with the caption, and the delivery
/// events come back under their MMS names.
#[tokio::test]
async fn an_agents_picture_reaches_the_customer_of_the_aws_line_as_mms() {
    use base64::Engine;
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    page.text_aws_line("Can I see the screen?").await;
    let (copy, _) = page.delivered_copy(CHLOE, "Can I see the screen?").await;
    let photo = b"\xff\xd8\xff\xe0 the repaired screen".to_vec();
    let (status, answer) = page
        .post(
            "/_sim/agent/media",
            json!({ "from": CHLOE, "context": copy["id"], "caption": "Good as new", "content_type": "image/jpeg",
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(&photo) }),
        )
        .await;
    assert_eq!((status, answer["webhook_status"].as_u64()), (200, Some(200)), "{answer}");

    let mms = page.sms_to(CUSTOMER, "Good as new").await;
    assert_eq!(mms.len(), 1, "sent once: {mms:?}");
    assert_eq!(mms[0]["line"], AWS_NUMBER, "{mms:?}");
    assert_eq!(page.media_bytes(&mms[0]["media"][0]).await, photo);
    let message_id = mms[0]["id"].as_str().unwrap().to_owned();
    let delivered = until("the MMS's handset receipt", 30, async || {
        let state = page.state().await;
        let record = state["sms"].as_array()?.iter().find(|m| m["id"] == message_id.as_str())?.clone();
        (record["event_type"] == "MEDIA_DELIVERED").then_some(record)
    })
    .await;
    assert_eq!(delivered["status"], "delivered");
    let leg = until("the picture's leg delivered", 30, async || {
        let thread = page.aws_thread().await;
        let messages = thread["messages"].as_array()?.clone();
        let reply = messages.iter().find(|m| m["direction"] == "outbound" && m["body"] == "Good as new")?.clone();
        let leg = reply["legs"].as_array()?.first()?.clone();
        (leg["status"] == "delivered").then_some(leg)
    })
    .await;
    assert_eq!(leg["provider_id"], message_id.as_str(), "{leg}");
    stack.stop();
}
