//! `POST /sms/status` through the deployed router: signed callbacks move a reply's status
//! forward only, and the agent who wrote it sees ✅ or ❌ with the reason.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use axum::Router;
use bridge_testkit::testing::{TestAws, lookup, record_agent_reply, signed_status_callback, test_env};
use http_body_util::BodyExt;
use jiff::Timestamp;
use lambda_http::Body;
use shared::adapters::sqs::SqsQueue;
use shared::config::SmsWebhookConfig;
use shared::domain::{DeliveryStatus, Job, JobPayload, WhatsAppMessage};
use shared::ports::{Conversations, Deliveries};
use sms_webhook::{SmsWebhook, router};
use tower::ServiceExt;

const CUSTOMER: &str = "+14155550134";

fn app(aws: &TestAws) -> Router {
    app_with_queue(aws, aws.queue())
}

fn app_with_queue(aws: &TestAws, queue: SqsQueue) -> Router {
    let env = test_env(aws, &[]);
    router(Arc::new(SmsWebhook::new(SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap(), aws.store(), queue)))
}

async fn callback(app: &Router, path_and_query: &str, (body, signature): (String, String)) -> (u16, String) {
    let request = http::Request::builder()
        .method("POST")
        .uri(path_and_query)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    (status, String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned())
}

fn path(job: &Job) -> String {
    format!("/sms/status?job={}", job.job_id)
}

async fn report(app: &Router, job: &Job, status: &str, code: Option<&str>) -> u16 {
    let JobPayload::SendSms(sms) = &job.payload else { panic!() };
    let to = sms.conversation.customer.as_str();
    callback(
        app,
        &path(job),
        signed_status_callback(&path(job), "SM11111111111111111111111111111111", status, code, to),
    )
    .await
    .0
}

async fn leg_status(aws: &TestAws, job: &Job) -> Option<DeliveryStatus> {
    let JobPayload::SendSms(sms) = &job.payload else { panic!() };
    let thread = aws.store().thread(&sms.conversation).await.unwrap();
    let message = thread.iter().find(|m| m.message_id == sms.message_id).unwrap();
    message.legs[0].status
}

async fn notices(aws: &TestAws) -> Vec<WhatsAppMessage> {
    notice_jobs(aws).await.into_iter().map(|(_, message)| message).collect()
}

/// Notices taken off the queue, with their job ids.
async fn notice_jobs(aws: &TestAws) -> Vec<(String, WhatsAppMessage)> {
    let mut found = Vec::new();
    loop {
        let out = aws.sqs.receive_message().queue_url(&aws.queue_url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return found;
        }
        for m in messages {
            let job = Job::decode(m.body().unwrap()).unwrap();
            if let JobPayload::NotifyAgent(n) = job.payload {
                found.push((job.job_id.as_str().to_owned(), n.message));
            }
            aws.sqs
                .delete_message()
                .queue_url(&aws.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn agent_wamid(job: &Job) -> String {
    let JobPayload::SendSms(sms) = &job.payload else { panic!() };
    sms.agent_wamid.as_str().to_owned()
}

#[tokio::test]
async fn delivered_shows_the_agent_a_tick_on_their_message() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "See you at 9").await;
    let app = app(&aws);
    assert_eq!(report(&app, &job, "sent", None).await, 200);
    assert_eq!(report(&app, &job, "delivered", None).await, 200);
    assert_eq!(leg_status(&aws, &job).await, Some(DeliveryStatus::Delivered));
    assert_eq!(
        notices(&aws).await,
        [WhatsAppMessage::Reaction {
            message: shared::domain::Wamid::parse(&agent_wamid(&job)).unwrap(),
            emoji: "✅".into()
        }]
    );
}

#[tokio::test]
async fn undelivered_shows_a_cross_and_the_reason_in_words() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "See you at 9").await;
    let app = app(&aws);
    assert_eq!(report(&app, &job, "undelivered", Some("30006")).await, 200);
    let wamid = shared::domain::Wamid::parse(&agent_wamid(&job)).unwrap();
    assert_eq!(
        notices(&aws).await,
        [
            WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "❌".into() },
            WhatsAppMessage::reply("not delivered: landline or unreachable carrier (30006)", &wamid),
        ]
    );
    let JobPayload::SendSms(sms) = &job.payload else { panic!() };
    let thread = aws.store().thread(&sms.conversation).await.unwrap();
    assert_eq!(thread.last().unwrap().legs[0].status, Some(DeliveryStatus::Undelivered));
}

#[tokio::test]
async fn late_duplicate_and_backwards_callbacks_change_nothing() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let app = app(&aws);
    report(&app, &job, "delivered", None).await;
    let first = notice_jobs(&aws).await;
    assert_eq!(first.len(), 1);
    let items = aws.items().await;
    for late in ["sent", "queued", "delivered", "failed", "undelivered"] {
        assert_eq!(report(&app, &job, late, Some("30003")).await, 200, "{late}");
    }
    assert_eq!(aws.items().await, items, "nothing moved back");
    // The duplicate `delivered` may re-offer its own unsent notice (the worker sends a job
    // once); nothing else, and no cross, ever appears.
    for (id, message) in notice_jobs(&aws).await {
        assert_eq!((id, message), first[0].clone(), "no new notice");
    }
}

/// The docs/using.md rule, proven over the wire: whatever order the callbacks arrive in, the
/// recorded status is the furthest one reported, and the agent sees ✅ at most once.
#[tokio::test]
async fn any_callback_order_ends_at_the_furthest_status() {
    let aws = TestAws::new().await;
    let app = app(&aws);
    let mut rng = fastrand::Rng::with_seed(2026);
    for round in 0..6 {
        let job = record_agent_reply(&aws, &format!("+1415555020{round}"), "hi").await;
        let mut reports = vec!["queued", "sent", "delivered", "read", "sent", "delivered"];
        rng.shuffle(&mut reports);
        for status in &reports {
            assert_eq!(report(&app, &job, status, None).await, 200);
        }
        assert_eq!(leg_status(&aws, &job).await, Some(DeliveryStatus::Read), "order {reports:?}");
        let ticks = notices(&aws).await;
        assert_eq!(ticks.len(), 1, "one ✅ for {reports:?}: {ticks:?}");
    }
}

#[tokio::test]
async fn a_late_success_replaces_the_cross() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let app = app(&aws);
    report(&app, &job, "undelivered", Some("30003")).await;
    report(&app, &job, "delivered", None).await;
    let shown = notices(&aws).await;
    assert!(matches!(&shown.last().unwrap(), WhatsAppMessage::Reaction { emoji, .. } if emoji == "✅"), "{shown:?}");
    assert_eq!(leg_status(&aws, &job).await, Some(DeliveryStatus::Delivered));
}

#[tokio::test]
async fn without_the_job_in_the_url_the_sid_record_finds_the_leg() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let sid = "SM22222222222222222222222222222222";
    aws.store()
        .claim_job(&job, Timestamp::now(), Timestamp::now() + jiff::SignedDuration::from_secs(60), "test")
        .await
        .unwrap();
    aws.store().record_sms_sent(&job, sid, Some(DeliveryStatus::Queued), Timestamp::now()).await.unwrap();
    let app = app(&aws);
    let (status, _) =
        callback(&app, "/sms/status", signed_status_callback("/sms/status", sid, "delivered", None, CUSTOMER)).await;
    assert_eq!(status, 200);
    assert_eq!(leg_status(&aws, &job).await, Some(DeliveryStatus::Delivered));
}

#[tokio::test]
async fn callbacks_for_unknown_sms_are_acknowledged_and_change_nothing() {
    let aws = TestAws::new().await;
    record_agent_reply(&aws, CUSTOMER, "hi").await;
    let items = aws.items().await;
    let app = app(&aws);
    let unknown_job = "/sms/status?job=01a2123e-cba6-756b-9183-530bf8f7743a.0";
    for path in ["/sms/status", unknown_job] {
        let (status, _) = callback(
            &app,
            path,
            signed_status_callback(path, "SM33333333333333333333333333333333", "delivered", None, CUSTOMER),
        )
        .await;
        assert_eq!(status, 200, "{path}");
    }
    assert_eq!(aws.items().await, items);
    assert!(notices(&aws).await.is_empty());
}

#[tokio::test]
async fn forged_or_incomplete_callbacks_are_refused() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let items = aws.items().await;
    let app = app(&aws);
    let (body, signature) = signed_status_callback(&path(&job), "SM1", "delivered", None, CUSTOMER);
    // Signed for another leg: the query is part of what Twilio signs.
    let other = "/sms/status?job=01a2123e-cba6-756b-9183-530bf8f7743a.0";
    assert_eq!(callback(&app, other, (body.clone(), signature.clone())).await.0, 403);
    assert_eq!(callback(&app, &path(&job), (body.replace("delivered", "failed"), signature)).await.0, 403);
    let (body, signature) = bridge_testkit::testing::signed_twilio_form(
        &path(&job),
        &[("MessageSid", "SM1"), ("AccountSid", bridge_testkit::testing::TWILIO_ACCOUNT_SID)],
    );
    let (status, reason) = callback(&app, &path(&job), (body, signature)).await;
    assert_eq!((status, reason.contains("MessageStatus")), (400, true), "{reason}");
    assert_eq!(aws.items().await, items);
}

#[tokio::test]
async fn a_replay_enqueues_notices_a_failed_first_attempt_recorded() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let entries = aws.items_with_prefix("OUTBOX#").await.len();
    let broken = app_with_queue(&aws, SqsQueue::new(aws.sqs.clone(), format!("{}-missing", aws.queue_url)));
    // The queue refuses for the whole budget: the status and its notice are recorded (the
    // notice in the outbox, for the sweep), so the callback is answered 200.
    assert_eq!(report(&broken, &job, "delivered", None).await, 200);
    assert_eq!(leg_status(&aws, &job).await, Some(DeliveryStatus::Delivered), "the status was recorded");
    assert!(notices(&aws).await.is_empty());
    assert_eq!(aws.items_with_prefix("OUTBOX#").await.len(), entries + 1, "the notice waits in the outbox");

    // Twilio retries the callback: the status is unchanged, the recorded notice goes out.
    assert_eq!(report(&app(&aws), &job, "delivered", None).await, 200);
    assert_eq!(notices(&aws).await.len(), 1);
}

#[tokio::test]
async fn aws_calls_per_status_callback() {
    let aws = TestAws::new().await;
    let job = record_agent_reply(&aws, CUSTOMER, "hi").await;
    let counter = bridge_testkit::testing::AwsCallCounter::default();
    let store = shared::adapters::dynamodb::DynamoStore::new(
        counter.dynamodb(&aws.dynamodb),
        &aws.table,
        shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION,
    );
    let env = test_env(&aws, &[]);
    let app = router(Arc::new(SmsWebhook::new(
        SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap(),
        store,
        SqsQueue::new(counter.sqs(&aws.sqs), &aws.queue_url),
    )));
    report(&app, &job, "sent", None).await;
    let sent = counter.take();
    report(&app, &job, "delivered", None).await;
    let delivered = counter.take();
    report(&app, &job, "sent", None).await;
    let late = counter.take();
    // The usual case: the worker recorded the send before Twilio's `sent` came.
    let recorded = record_agent_reply(&aws, "+14155550188", "hi").await;
    let now = jiff::Timestamp::now();
    let store = aws.store();
    store.claim_job(&recorded, now, now + jiff::SignedDuration::from_secs(60), "worker").await.unwrap();
    store.record_sms_sent(&recorded, "SM11111111111111111111111111111111", None, now).await.unwrap();
    counter.take();
    report(&app, &recorded, "sent", None).await;
    let sent_after_record = counter.take();
    println!(
        "AWS calls per status callback: sent {sent:?}; delivered {delivered:?}; late {late:?}; \
         sent after the worker's record {sent_after_record:?}"
    );
    assert_eq!(sent, ["DynamoDB.GetItem", "DynamoDB.UpdateItem"], "the worker's answer lost: the sid is kept");
    assert_eq!(delivered, ["DynamoDB.GetItem", "DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"]);
    assert_eq!(late, ["DynamoDB.GetItem"], "a status that changes nothing costs no write");
    assert_eq!(sent_after_record, ["DynamoDB.GetItem"], "`sent` on a recorded send says nothing new");
    assert_eq!(leg_status(&aws, &recorded).await, None);
}
