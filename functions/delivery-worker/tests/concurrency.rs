//! A batch's message groups are delivered side by side (issue 17: a worker that keeps up
//! with a busy line), each group still in order. On the in-memory store and queue, with a
//! WhatsApp client that holds every send until two are in flight at once: a worker that
//! delivered the groups one after another would never get there.

use shared::app::copy_facts_cache::CopyFactsCache;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use bridge_testkit::providers::FakeSms;
use delivery_worker::DeliveryWorker;
use jiff::Timestamp;
use shared::app::deliver_job::{Deliverer, SendRates};
use shared::app::receive_sms::receive_sms;
use shared::app::retry_budget::RetryBudget;
use shared::domain::{
    E164, InboundSms, Job, PhoneNumberId, ProviderFailure, ProviderMessageId, RetryPolicy, Wamid, WhatsAppMessage,
    WhatsAppRecipient,
};
use shared::ports::WhatsAppClient;
use tokio::sync::Barrier;

/// Accepts a send only once `Barrier`'s count of sends are in flight together; gives up
/// (a refusal) after a while, so a sequential worker fails the test instead of hanging it.
#[derive(Clone)]
struct TogetherOnly {
    barrier: Arc<Barrier>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
}

impl WhatsAppClient for TogetherOnly {
    async fn send(
        &self,
        _from: &PhoneNumberId,
        _to: &WhatsAppRecipient,
        _message: &WhatsAppMessage,
        _tracking: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let met = tokio::time::timeout(Duration::from_secs(5), self.barrier.wait()).await.is_ok();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !met {
            return Err(ProviderFailure::NotSent("nobody else in flight".into()));
        }
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(Wamid::parse(&format!("wamid.together.{n}")).unwrap())
    }
}

fn record(n: usize, job: &Job) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m-{n}"));
    record.body = Some(job.encode());
    record.attributes.insert("MessageGroupId".into(), job.order_group());
    record
}

#[tokio::test]
async fn a_batchs_groups_are_delivered_side_by_side() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let lines = bridge_testkit::testing::lines();
    let line = lines.iter().next().unwrap().clone();
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse("SM00000000000000000000000000000017").unwrap(),
        from: E164::parse(bridge_testkit::testing::CUSTOMER).unwrap(),
        to: line.sms_number.clone(),
        body: "Is my bike ready?".into(),
        attachments: vec![],
        received_at: Timestamp::now(),
    };
    receive_sms(&store, &queue, &line, sms, &mut fastrand::Rng::new(), &RetryBudget::none(), &CopyFactsCache::new())
        .await
        .unwrap();
    let jobs = queue.take_all();
    assert_eq!(jobs.len(), 2, "one copy per agent, each its own message group");
    let whatsapp = TogetherOnly {
        barrier: Arc::new(Barrier::new(2)),
        in_flight: Arc::default(),
        most_in_flight: Arc::default(),
        sent: Arc::default(),
    };
    let deliverer = Deliverer::new(
        lines,
        store.clone(),
        whatsapp.clone(),
        FakeSms::new(),
        queue.clone(),
        "https://bridge.example/sms/status".into(),
        SendRates::default(),
    );
    let worker = DeliveryWorker::new(deliverer, RetryPolicy::default());
    let mut event = SqsEvent::default();
    event.records = jobs.iter().enumerate().map(|(n, job)| record(n, job)).collect();

    let response = worker.handle_batch(event).await;

    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(whatsapp.most_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(whatsapp.sent.load(Ordering::SeqCst), 2);
}
