//! Customer texts a minute one line handles under WhatsApp's pair limit, three agents on duty
//! with their windows open (issue 17, item 4; docs/using.md "A busy line: digests").
//!
//! The delivery worker as deployed (`DeliveryWorker::handle_batch`), on the in-memory store
//! and a queue that behaves as SQS FIFO does for it: a group's records one batch at a time,
//! in order; a record the worker fails comes back after the delay it set, in whole seconds;
//! up to [`CONCURRENCY`] batches at once, as Lambda's event source mapping runs the worker.
//! The Graph API is a fake keeping WhatsApp's pair limit: a message to someone within 6 s of
//! the last one accepted for them is refused with 131056, as Meta does (less a tenth of the
//! spacing, for the sends' own jitter). The store and queue answer at once, so the figures
//! are the design's (how many copies a message carries, how long a copy waits), not DynamoDB's
//! latency. Each text is from a new customer: nothing for a plain copy to coalesce.
//!
//! Baseline in the same run: `WHATSAPP_PAIR_SECONDS=0`, each copy sent at once as the bridge
//! went before, retried with the deployed backoff when refused. It can't keep up (an agent
//! takes at most 10 messages a minute), so its run stops 2 minutes after the last text, its
//! undelivered copies still queued.
//!
//! Meanwhile the first agent writes `/help` every 20 s (`DIGESTS_COMMAND_EVERY=<seconds>`):
//! the answer, a notice, takes the same pair slots as the copies and digests, so its wait
//! shows whether notices get through on a line kept at the limit.
//!
//! `cargo bench -p e2e-tests --bench digests` (a minute of 120 texts a minute, then the
//! baseline; `BENCH_SMOKE=1`: a few texts and a 1 s spacing, for CI)

#![allow(clippy::unwrap_used)] // a benchmark of fixed inputs: a failed unwrap is a bug to see

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use bridge_testkit::providers::FakeSms;
use bridge_testkit::testing::PairRule;
use delivery_worker::DeliveryWorker;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use jiff::Timestamp;
use shared::app::agent_identity::LearntUserIds;
use shared::app::copy_facts_cache::CopyFactsCache;
use shared::app::deliver_job::{Deliverer, SendRates};
use shared::app::receive_sms::receive_sms;
use shared::app::receive_whatsapp::receive_whatsapp_message;
use shared::app::retry_budget::RetryBudget;
use shared::domain::{
    E164, InboundSms, InboundWhatsApp, Job, Lines, PhoneNumberId, ProviderFailure, ProviderMessageId, RetryPolicy,
    WaId, Wamid, WhatsAppContent, WhatsAppMessage, WhatsAppRecipient,
};
use shared::ports::WhatsAppClient;

const AGENTS: [&str; 3] = ["14155550111", "14155550112", "14155550113"];

/// Batches delivered at once: the template's `WorkerMaximumConcurrency` default.
const CONCURRENCY: usize = 5;

/// How often the first agent writes `/help` while the texts come in.
fn command_every() -> Duration {
    let seconds = std::env::var("DIGESTS_COMMAND_EVERY").ok().and_then(|s| s.parse::<f64>().ok());
    seconds.filter(|s| *s > 0.0).map_or(Duration::from_secs(20), Duration::from_secs_f64)
}

/// Only `/help`'s answer says this (shared::domain::notices).
const HELP_ANSWER_MARK: &str = "/list – open conversations";

fn smoke() -> bool {
    std::env::var_os("BENCH_SMOKE").is_some()
}

fn lines() -> Lines {
    let json = format!(
        r#"[{{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
            "whatsapp_phone_number_id": "106540352242922", "agents": ["{}", "{}", "{}"],
            "template": {{ "name": "new_customer_message", "language": "en" }} }}]"#,
        AGENTS[0], AGENTS[1], AGENTS[2]
    );
    Lines::from_json("bench", &json).unwrap()
}

/// The Graph API keeping WhatsApp's pair limit, noting what it accepted and when.
#[derive(Clone)]
struct PairLimitedGraph(Arc<GraphState>);

struct GraphState {
    pair: PairRule,
    accepted: Mutex<Vec<(Instant, String, String)>>,
}

impl WhatsAppClient for PairLimitedGraph {
    async fn send(
        &self,
        _from: &PhoneNumberId,
        to: &WhatsAppRecipient,
        message: &WhatsAppMessage,
        _tracking: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        let state = &self.0;
        let (to, now) = (to.as_str().to_owned(), Instant::now());
        if !state.pair.admit(&to, now) {
            return Err(ProviderFailure::Rejected {
                http_status: 400,
                code: Some(131056),
                message: "(#131056) pair rate limit hit".into(),
                retry_after: None,
            });
        }
        let body = match message {
            WhatsAppMessage::Text { body, .. } | WhatsAppMessage::Buttons { body, .. } => body.clone(),
            other => format!("{other:?}"),
        };
        let mut accepted = state.accepted.lock().unwrap();
        accepted.push((now, to, body));
        Ok(Wamid::parse(&format!("wamid.bench.{}", accepted.len())).unwrap())
    }
}

/// A record as SQS hands it to the worker, and when it is visible.
struct Queued {
    visible_at: Instant,
    record: SqsMessage,
}

fn record(n: usize, job: &Job) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m-{n}"));
    record.receipt_handle = Some(format!("r-{n}"));
    record.body = Some(job.encode());
    record.attributes.insert("MessageGroupId".into(), job.order_group());
    record
}

struct Run {
    refused: usize,
    messages: [usize; 3],
    missing: usize,
    latencies: Vec<Duration>,
    drained_after: Duration,
    /// Each `/help`'s wait for its answer; `None`: not answered when the run stopped.
    answers: Vec<Option<Duration>>,
}

async fn run(texts_per_minute: f64, minutes: f64, pair: Duration, pair_seconds: f64) -> Run {
    let lines = lines();
    let line = lines.iter().next().unwrap().clone();
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    for agent in AGENTS {
        let at = Timestamp::now() - jiff::SignedDuration::from_mins(5);
        store.record_agent_inbound(&line.id, &WaId::parse(agent).unwrap(), at).await.unwrap();
    }
    let graph = PairLimitedGraph(Arc::new(GraphState { pair: PairRule::new(pair), accepted: Mutex::default() }));
    let rates = SendRates { whatsapp_pair_seconds: pair_seconds, ..SendRates::default() };
    let deliverer = Deliverer::new(
        lines.clone(),
        store.clone(),
        graph.clone(),
        FakeSms::new(),
        queue.clone(),
        "https://bridge.example/sms/status".into(),
        rates,
    );
    let worker = DeliveryWorker::new(deliverer, RetryPolicy::default());

    let texts = (texts_per_minute * minutes).round() as usize;
    let every = Duration::from_secs_f64(60.0 / texts_per_minute);
    let started = Instant::now();
    let (mut offered, mut next_record) = (0, 0);
    let mut posted: Vec<Instant> = Vec::new();
    let mut queued: Vec<Queued> = Vec::new();
    let (learnt, mut commands) = (LearntUserIds::new(), Vec::<Instant>::new());
    let (offer_for, command_every) = (Duration::from_secs_f64(minutes * 60.0), command_every());
    let (mut in_flight, mut flying) = (FuturesUnordered::new(), HashSet::<String>::new());
    let (mut delays, mut seen_postponed) = (HashMap::<String, Duration>::new(), 0);
    // Two minutes after the last text (CI's smoke run: seconds; it proves the bench runs).
    let after = Duration::from_secs(if smoke() { 3 } else { 120 });
    let limit = started + Duration::from_secs_f64(minutes * 60.0) + after;
    let expected = texts * AGENTS.len();
    loop {
        let now = Instant::now();
        // The customers' texts, as the SMS webhook records them.
        while offered < texts && started + every * offered as u32 <= now {
            let sms = InboundSms {
                provider_message_id: ProviderMessageId::parse(&format!("SM{offered:032}")).unwrap(),
                from: E164::parse(&format!("+1415555{:04}", 6000 + offered)).unwrap(),
                to: line.sms_number.clone(),
                body: format!("text-{offered:04} from a busy day"),
                attachments: vec![],
                received_at: Timestamp::now(),
            };
            let cache = CopyFactsCache::new();
            receive_sms(&store, &queue, &line, sms, &mut fastrand::Rng::new(), &RetryBudget::none(), &cache)
                .await
                .unwrap();
            posted.push(Instant::now());
            offered += 1;
        }
        // The first agent's `/help`, as the WhatsApp webhook records it.
        while started + command_every * commands.len() as u32 <= now.min(started + offer_for) {
            let help = InboundWhatsApp {
                wamid: Wamid::parse(&format!("wamid.help.{}", commands.len())).unwrap(),
                from: WaId::parse(AGENTS[0]).unwrap(),
                context: None,
                content: WhatsAppContent::Text("/help".into()),
            };
            receive_whatsapp_message(
                &store,
                &queue,
                &line,
                None,
                help,
                Timestamp::now(),
                &RetryBudget::none(),
                &learnt,
            )
            .await
            .unwrap();
            commands.push(Instant::now());
        }
        for job in queue.take_all() {
            queued.push(Queued { visible_at: Instant::now(), record: record(next_record, &job) });
            next_record += 1;
        }
        let arrived = arrivals(&graph, &posted);
        let answered = help_answers(&graph).len() >= commands.len();
        if (offered == texts && arrived.len() >= expected && answered) || now > limit {
            break;
        }
        // Batches of up to 10 visible records, the first of each group only, none of a group
        // already in flight (FIFO), while fewer than CONCURRENCY are.
        while in_flight.len() < CONCURRENCY {
            let mut groups = HashSet::new();
            let mut batch = Vec::new();
            for q in &queued {
                let group = q.record.attributes["MessageGroupId"].clone();
                if !flying.contains(&group) && groups.insert(group) && q.visible_at <= now && batch.len() < 10 {
                    batch.push(q.record.clone());
                }
            }
            if batch.is_empty() {
                break;
            }
            flying.extend(batch.iter().map(|r| r.attributes["MessageGroupId"].clone()));
            let mut event = SqsEvent::default();
            event.records = batch.clone();
            let worker = &worker;
            in_flight.push(async move { (batch, worker.handle_batch(event).await) });
        }
        let done = tokio::select! {
            Some(done) = in_flight.next() => done,
            _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
        };
        let (batch, response) = done;
        let failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        // A record is in one batch at a time: a delay set for it since it was last handed out
        // is this batch's.
        let postponed = queue.postponed();
        delays.extend(postponed[seen_postponed..].iter().map(|p| (p.receipt_handle.clone(), p.delay)));
        seen_postponed = postponed.len();
        let done_at = Instant::now();
        for record in &batch {
            flying.remove(&record.attributes["MessageGroupId"]);
        }
        queued.retain_mut(|q| {
            let id = q.record.message_id.clone().unwrap();
            if !batch.iter().any(|r| r.message_id.as_deref() == Some(id.as_str())) {
                return true;
            }
            if !failed.contains(&id) {
                return false;
            }
            // SQS counts the delay in whole seconds, rounded up (`SqsQueue::postpone`).
            let delay = delays.remove(q.record.receipt_handle.as_deref().unwrap()).unwrap_or(Duration::ZERO);
            q.visible_at = done_at + Duration::from_secs(delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
            true
        });
    }
    let arrived = arrivals(&graph, &posted);
    let accepted = graph.0.accepted.lock().unwrap().clone();
    let offer_ended = posted.last().copied().unwrap_or(started);
    let answer_times = help_answers(&graph);
    Run {
        refused: graph.0.pair.refused(),
        messages: AGENTS.map(|agent| accepted.iter().filter(|(_, to, _)| to == agent).count()),
        missing: expected.saturating_sub(arrived.len()),
        latencies: arrived.iter().map(|((text, _), at)| at.duration_since(posted[*text])).collect(),
        drained_after: arrived
            .values()
            .max()
            .map_or(Duration::ZERO, |last| last.saturating_duration_since(offer_ended)),
        // One agent's notices are one FIFO group: the k-th answer is the k-th command's.
        answers: commands
            .iter()
            .enumerate()
            .map(|(k, at)| answer_times.get(k).map(|a| a.duration_since(*at)))
            .collect(),
    }
}

/// When the first agent's `/help` answers were accepted, in order.
fn help_answers(graph: &PairLimitedGraph) -> Vec<Instant> {
    let accepted = graph.0.accepted.lock().unwrap();
    accepted
        .iter()
        .filter(|(_, to, body)| to == AGENTS[0] && body.contains(HELP_ANSWER_MARK))
        .map(|(at, ..)| *at)
        .collect()
}

/// When each (text, agent) first reached the agent.
fn arrivals(graph: &PairLimitedGraph, posted: &[Instant]) -> HashMap<(usize, String), Instant> {
    let mut first = HashMap::new();
    for (at, to, body) in graph.0.accepted.lock().unwrap().iter() {
        for text in 0..posted.len() {
            if body.contains(&format!("text-{text:04} ")) {
                first.entry((text, to.clone())).or_insert(*at);
            }
        }
    }
    first
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).map_or(f64::NAN, Duration::as_secs_f64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (pair, rate, minutes) = if smoke() { (1.0, 240.0, 0.05) } else { (6.0, 120.0, 1.0) };
    println!(
        "{:.0} texts a minute for {minutes} min, each from a new customer; 3 agents; WhatsApp's pair limit {pair} s; \
         the first agent writes /help every {} s:",
        rate,
        command_every().as_secs_f64()
    );
    println!(
        "| bridge | 131056 refused | WhatsApp messages per agent | copies not yet delivered when the run stopped | a delivered copy's wait p50 / p95 / max | last copy after the last text | `/help` answered, wait p50 / max |"
    );
    println!("|---|---|---|---|---|---|---|");
    let spacing = Duration::from_secs_f64(pair);
    let digests = format!("digests (WHATSAPP_PAIR_SECONDS={pair})");
    for (label, pair_seconds) in [(digests.as_str(), pair), ("baseline: each copy at once (=0)", 0.0)] {
        let result = run(rate, minutes, spacing, pair_seconds).await;
        let mut latencies = result.latencies.clone();
        latencies.sort();
        let mut answer_waits: Vec<Duration> = result.answers.iter().flatten().copied().collect();
        answer_waits.sort();
        println!(
            "| {label} | {} | {} | {} of {} | {:.1} / {:.1} / {:.1} s | {:.1} s | {} of {}, {:.1} / {:.1} s |",
            result.refused,
            result.messages.map(|m| m.to_string()).join(", "),
            result.missing,
            (rate * minutes).round() as usize * AGENTS.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            percentile(&latencies, 1.0),
            result.drained_after.as_secs_f64(),
            answer_waits.len(),
            result.answers.len(),
            percentile(&answer_waits, 0.5),
            percentile(&answer_waits, 1.0),
        );
        // With digests every copy arrives within the run; the baseline's wait in the queue
        // (retried on 131056), and the run stops 2 minutes after the last text.
        if pair_seconds > 0.0 && result.missing > 0 {
            eprintln!("digests bench: {} copies never reached their agent", result.missing);
            std::process::exit(1);
        }
        if pair_seconds > 0.0 && answer_waits.len() < result.answers.len() {
            eprintln!(
                "digests bench: {} answers to /help never reached the agent",
                result.answers.len() - answer_waits.len()
            );
            std::process::exit(1);
        }
    }
}
