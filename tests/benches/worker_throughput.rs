//! Jobs a second one worker instance delivers when the provider answers in 150 ms (issue
//! 17, "worker concurrency"): a batch's message groups go side by side. The store and queue
//! are the in-memory twins, so the figure is the worker's own pace, not DynamoDB's; the
//! WhatsApp client waits 150 ms and accepts. Baseline in the same run: batches of one record,
//! which is how the worker went before (one job after another).
//!
//! `cargo bench -p e2e-tests --bench worker_throughput` (`-- --smoke` for CI's small run)

#![allow(clippy::unwrap_used)] // a benchmark of fixed inputs: a failed unwrap is a bug to see

use shared::app::copy_facts_cache::CopyFactsCache;
use std::time::{Duration, Instant};

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

const PROVIDER_ANSWERS_IN: Duration = Duration::from_millis(150);

/// The Graph API answering every send in 150 ms.
#[derive(Clone, Default)]
struct SlowGraph(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl WhatsAppClient for SlowGraph {
    async fn send(
        &self,
        _from: &PhoneNumberId,
        _to: &WhatsAppRecipient,
        _message: &WhatsAppMessage,
        _tracking: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        tokio::time::sleep(PROVIDER_ANSWERS_IN).await;
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Wamid::parse(&format!("wamid.bench.{n}")).unwrap())
    }
}

/// `customers` texts recorded as the SMS webhook records them: one copy per agent, each
/// copy its own message group.
async fn jobs(store: &MemoryStore, queue: &MemoryQueue, customers: usize) -> Vec<Job> {
    let lines = bridge_testkit::testing::lines();
    let line = lines.iter().next().unwrap().clone();
    for c in 0..customers {
        let sms = InboundSms {
            provider_message_id: ProviderMessageId::parse(&format!("SM{c:032}")).unwrap(),
            from: E164::parse(&format!("+1415555{c:04}")).unwrap(),
            to: line.sms_number.clone(),
            body: "Is my bike ready?".into(),
            attachments: vec![],
            received_at: Timestamp::now(),
        };
        receive_sms(store, queue, &line, sms, &mut fastrand::Rng::new(), &RetryBudget::none(), &CopyFactsCache::new())
            .await
            .unwrap();
    }
    queue.take_all()
}

fn record(n: usize, job: &Job) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m-{n}"));
    record.body = Some(job.encode());
    record.attributes.insert("MessageGroupId".into(), job.order_group());
    record
}

/// Jobs per second for batches of `batch_size` records.
async fn jobs_per_second(customers: usize, batch_size: usize) -> f64 {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let jobs = jobs(&store, &queue, customers).await;
    let deliverer = Deliverer::new(
        bridge_testkit::testing::lines(),
        store,
        SlowGraph::default(),
        FakeSms::new(),
        queue,
        "https://bridge.example/sms/status".into(),
        // The deployed default: 80 WhatsApp messages a second from one number; no pair
        // spacing (the copies are the worker's load, not one agent's: the digests bench).
        SendRates { whatsapp_pair_seconds: 0.0, ..SendRates::default() },
    );
    let worker = DeliveryWorker::new(deliverer, RetryPolicy::default());
    let records: Vec<SqsMessage> = jobs.iter().enumerate().map(|(n, job)| record(n, job)).collect();
    let started = Instant::now();
    for batch in records.chunks(batch_size) {
        let mut event = SqsEvent::default();
        event.records = batch.to_vec();
        let response = worker.handle_batch(event).await;
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    }
    #[allow(clippy::cast_precision_loss)] // a few hundred jobs
    let rate = jobs.len() as f64 / started.elapsed().as_secs_f64();
    rate
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke") || std::env::var_os("BENCH_SMOKE").is_some();
    let customers = if smoke { 10 } else { 100 };
    println!(
        "worker jobs/s, one instance, the provider answering in {} ms ({} copies, one per group):",
        PROVIDER_ANSWERS_IN.as_millis(),
        customers * 2
    );
    println!("| batch | jobs/s |");
    println!("|---|---|");
    for batch_size in [1, 10] {
        let rate = jobs_per_second(customers, batch_size).await;
        let label = if batch_size == 1 {
            "1 record (one job after another: the baseline)"
        } else {
            "10 records, groups side by side"
        };
        println!("| {label} | {rate:.1} |");
    }
}
