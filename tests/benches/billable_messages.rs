//! WhatsApp messages the bridge sends agents per customer text, on a line of three agents
//! (issue 15; docs/using.md, "Fewer copies"): the old way (every text copied to every agent,
//! ✅ reactions), after a Claim, with one agent on duty. Each one is a message WhatsApp bills
//! if service messages are billed (docs/operating.md, "What it costs"); a read mark is not a
//! message.
//!
//! The use cases run on the in-memory store and queue: `receive_sms` for each text,
//! `receive_whatsapp` for the agents' buttons, commands and replies. The jobs they enqueue are
//! what the worker sends, one WhatsApp message each; delivery receipts come from the rule the
//! status path applies (`notices::delivery_result`).
//!
//! `cargo bench -p e2e-tests --bench billable_messages`

#![allow(clippy::unwrap_used)] // a benchmark of fixed inputs: a failed unwrap is a bug to see

use bridge_testkit::memory::{MemoryQueue, MemoryStore};
use jiff::{SignedDuration, Timestamp};
use shared::app::agent_identity::LearntUserIds;
use shared::app::copy_facts_cache::CopyFactsCache;
use shared::app::receive_sms::receive_sms;
use shared::app::receive_whatsapp::receive_whatsapp_message;
use shared::app::retry_budget::RetryBudget;
use shared::domain::copies::ClaimedCopies;
use shared::domain::line::DeliveryReceipts;
use shared::domain::whatsapp_message::ButtonAction;
use shared::domain::{
    DeliveryStatus, E164, InboundSms, InboundWhatsApp, Job, JobPayload, Line, Lines, ProviderMessageId, WaId, Wamid,
    WhatsAppContent, WhatsAppMessage, notices,
};
use shared::ports::Conversations;

const AGENTS: [&str; 3] = ["14155550111", "14155550112", "14155550113"];
const CUSTOMER: &str = "+14155550134";
/// A conversation: the customer's texts, each answered by the agent who has it.
const TEXTS: usize = 5;

#[derive(Clone, Copy)]
enum Scenario {
    /// Every text copied to every agent, ✅ reactions: the bridge before issue 15 (the line
    /// options that keep it: `claimed_copies: everyone`, `delivery_receipts: reaction`).
    Before,
    /// Agent 0 claims the conversation after its first text; read marks.
    AfterClaim,
    /// Agents 1 and 2 are `/away`; read marks.
    OneOnDuty,
}

#[derive(Default, Debug)]
struct Sent {
    copies: usize,
    notices: usize,
    receipts: usize,
}

impl Sent {
    fn total(&self) -> usize {
        self.copies + self.notices + self.receipts
    }
}

fn line(scenario: Scenario) -> Line {
    let agents: Vec<String> = AGENTS.iter().map(|a| format!("\"{a}\"")).collect();
    let json = format!(
        r#"[{{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
            "whatsapp_phone_number_id": "106540352242922", "agents": [{}],
            "template": {{ "name": "new_customer_message", "language": "en" }} }}]"#,
        agents.join(",")
    );
    let mut line = Lines::from_json("bench", &json).unwrap().iter().next().unwrap().clone();
    if let Scenario::Before = scenario {
        line.claimed_copies = ClaimedCopies::Everyone;
        line.delivery_receipts = DeliveryReceipts::Reaction;
    }
    line
}

fn wamid(label: &str, n: usize) -> Wamid {
    Wamid::parse(&format!("wamid.{label}.{n}")).unwrap()
}

fn from_agent(agent: usize, n: usize, content: WhatsAppContent) -> InboundWhatsApp {
    InboundWhatsApp { wamid: wamid("agent", n), from: WaId::parse(AGENTS[agent]).unwrap(), context: None, content }
}

/// What the jobs send agents: copies of customer texts, and everything else the bridge says.
fn count(jobs: &[Job], sent: &mut Sent) {
    for job in jobs {
        match &job.payload {
            JobPayload::ForwardToAgent(_) => sent.copies += 1,
            JobPayload::NotifyAgent(_) => sent.notices += 1,
            JobPayload::SendSms(_) | JobPayload::AutoReply(_) => {}
        }
    }
}

async fn run(scenario: Scenario) -> Sent {
    let (store, queue, line) = (MemoryStore::new(), MemoryQueue::new(), line(scenario));
    let (budget, learnt) = (RetryBudget::none(), LearntUserIds::new());
    let t0 = Timestamp::from_second(1_796_000_000).unwrap();
    let at = |n: usize| t0 + SignedDuration::from_secs(i64::try_from(n).unwrap() * 60);
    let mut rng = fastrand::Rng::with_seed(15);
    let mut sent = Sent::default();
    let mut step = 0;
    let mut agent_says = |agent: usize, content: WhatsAppContent| {
        step += 1;
        from_agent(agent, step, content)
    };
    if let Scenario::OneOnDuty = scenario {
        for away in [1, 2] {
            let message = agent_says(away, WhatsAppContent::Text("/away".into()));
            receive_whatsapp_message(&store, &queue, &line, None, message, t0, &budget, &learnt).await.unwrap();
        }
        queue.take_all(); // their own "you're away" confirmations: once, not per text
    }
    for text in 0..TEXTS {
        let sms = InboundSms {
            provider_message_id: ProviderMessageId::parse(&format!("SM{text:032}")).unwrap(),
            from: E164::parse(CUSTOMER).unwrap(),
            to: line.sms_number.clone(),
            body: format!("Question {text}"),
            attachments: vec![],
            received_at: at(text),
        };
        receive_sms(&store, &queue, &line, sms, &mut rng, &budget, &CopyFactsCache::new()).await.unwrap();
        count(&queue.take_all(), &mut sent);
        let conversation = shared::domain::ConversationKey { line: line.id.clone(), customer: sms_customer() };
        let handle = store.conversation(&conversation).await.unwrap().unwrap().handle;
        if text == 0 && matches!(scenario, Scenario::AfterClaim) {
            let claim =
                WhatsAppContent::ButtonReply { id: ButtonAction::Claim.button_id(&handle), title: "Claim".into() };
            let message = agent_says(0, claim);
            receive_whatsapp_message(&store, &queue, &line, None, message, at(text), &budget, &learnt).await.unwrap();
            count(&queue.take_all(), &mut sent);
        }
        // Agent 0 answers; the reply is an SMS, and its delivery shows on their message.
        let reply = agent_says(0, WhatsAppContent::Text(format!("#{} Answer {text}", handle.as_str())));
        let reply_wamid = reply.wamid.clone();
        receive_whatsapp_message(&store, &queue, &line, None, reply, at(text), &budget, &learnt).await.unwrap();
        count(&queue.take_all(), &mut sent);
        let receipt =
            notices::delivery_result(DeliveryStatus::Delivered, None, None, &reply_wamid, line.delivery_receipts);
        sent.receipts += receipt.iter().filter(|m| !matches!(m, WhatsAppMessage::ReadMark { .. })).count();
    }
    sent
}

fn sms_customer() -> E164 {
    E164::parse(CUSTOMER).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "WhatsApp messages to agents, line of {} agents, a conversation of {TEXTS} texts each answered:",
        AGENTS.len()
    );
    println!("| | copies | notices | receipts | total | per customer text |");
    println!("|---|---|---|---|---|---|");
    for (name, scenario) in [
        ("before (every text to every agent, ✅ reactions)", Scenario::Before),
        ("Claim after the first text (read marks)", Scenario::AfterClaim),
        ("one agent on duty, two /away (read marks)", Scenario::OneOnDuty),
    ] {
        let sent = run(scenario).await;
        #[allow(clippy::cast_precision_loss)] // small counts
        let per_text = sent.total() as f64 / TEXTS as f64;
        println!(
            "| {name} | {} | {} | {} | {} | {per_text:.1} |",
            sent.copies,
            sent.notices,
            sent.receipts,
            sent.total()
        );
    }
}
