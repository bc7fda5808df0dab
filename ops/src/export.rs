//! `bridge-ops export`: a customer's thread for a data-access request (docs/operating.md):
//! every message in order with its time, who wrote it, the text, attachments and how each copy
//! or SMS fared. It is the customer's own data, so their number is in it; other people's
//! (the agents') are masked.

use jiff::Timestamp;
use serde::Serialize;
use shared::domain::{ConversationKey, E164, WaId};
use shared::ports::{Conversations, Direction, ThreadLeg, ThreadMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Debug, Serialize)]
pub struct Export {
    pub line: String,
    pub customer: String,
    pub exported_at: Timestamp,
    /// `None`: the bridge holds no conversation with them on this line.
    pub conversation: Option<ConversationFacts>,
    pub messages: Vec<ExportedMessage>,
}

#[derive(Debug, Serialize)]
pub struct ConversationFacts {
    pub handle: String,
    pub open: bool,
    pub opted_out: bool,
}

#[derive(Debug, Serialize)]
pub struct ExportedMessage {
    pub at: Timestamp,
    pub direction: &'static str,
    /// `customer`, or the agent as `agent +1415*****34`.
    pub from: String,
    pub text: String,
    pub attachments: Vec<String>,
    pub deliveries: Vec<ExportedDelivery>,
}

#[derive(Debug, Serialize)]
pub struct ExportedDelivery {
    pub kind: &'static str,
    /// `customer`, or an agent's masked number.
    pub to: String,
    pub state: &'static str,
    pub status: Option<&'static str>,
    pub error: Option<String>,
}

/// The customer's thread on the conversation's line, oldest first.
pub async fn export<S: Conversations>(store: &S, conversation: &ConversationKey) -> Result<Export, String> {
    let summary = store.conversation(conversation).await.map_err(|e| e.to_string())?;
    let mut thread = store.thread(conversation).await.map_err(|e| e.to_string())?;
    thread.sort_by(|a, b| (a.at, a.message_id.as_str()).cmp(&(b.at, b.message_id.as_str())));
    Ok(Export {
        line: conversation.line.to_string(),
        customer: conversation.customer.as_str().to_owned(),
        exported_at: Timestamp::now(),
        conversation: summary.map(|s| ConversationFacts {
            handle: s.handle.to_string(),
            open: s.open,
            opted_out: s.opted_out,
        }),
        messages: thread.iter().map(|m| exported_message(m, &conversation.customer)).collect(),
    })
}

fn exported_message(message: &ThreadMessage, customer: &E164) -> ExportedMessage {
    let (direction, from) = match (&message.direction, &message.agent) {
        (Direction::Inbound, _) => ("inbound", "customer".to_owned()),
        (Direction::Outbound, Some(agent)) => ("outbound", format!("agent {}", agent.masked())),
        (Direction::Outbound, None) => ("outbound", "agent".to_owned()),
    };
    ExportedMessage {
        at: message.at,
        direction,
        from,
        text: message.body.clone(),
        attachments: message.attachments.iter().map(|a| a.content_type.clone()).collect(),
        deliveries: message.legs.iter().map(|leg| exported_delivery(leg, customer)).collect(),
    }
}

fn exported_delivery(leg: &ThreadLeg, customer: &E164) -> ExportedDelivery {
    ExportedDelivery {
        kind: leg.kind.as_str(),
        to: recipient(&leg.to, customer),
        state: leg.state.as_str(),
        status: leg.status.map(|s| s.as_str()),
        error: leg.error.as_ref().map(|e| format!("{}: {}", e.class, e.reason)),
    }
}

/// The customer by name, anyone else masked.
fn recipient(to: &str, customer: &E164) -> String {
    if to == customer.as_str() || to == customer.as_str().trim_start_matches('+') {
        return "customer".to_owned();
    }
    match (WaId::parse(to), E164::parse(to)) {
        (Ok(agent), _) => agent.masked(),
        (_, Ok(number)) => number.masked(),
        _ => "someone".to_owned(),
    }
}

impl Export {
    pub fn render(&self, format: ExportFormat) -> Result<String, String> {
        match format {
            ExportFormat::Json => serde_json::to_string_pretty(self).map(|s| s + "\n").map_err(|e| e.to_string()),
            ExportFormat::Csv => self.csv(),
        }
    }

    /// One row a message: what a spreadsheet shows. The deliveries are summed up in one cell.
    fn csv(&self) -> Result<String, String> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let error = |e: csv::Error| e.to_string();
        out.write_record(["at", "direction", "from", "text", "attachments", "deliveries"]).map_err(error)?;
        for message in &self.messages {
            let deliveries: Vec<String> = message
                .deliveries
                .iter()
                .map(|d| format!("{} to {}: {}", d.kind, d.to, d.status.unwrap_or(d.state)))
                .collect();
            out.write_record([
                message.at.to_string().as_str(),
                message.direction,
                &message.from,
                &message.text,
                &message.attachments.join("; "),
                &deliveries.join("; "),
            ])
            .map_err(error)?;
        }
        String::from_utf8(out.into_inner().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    }
}
