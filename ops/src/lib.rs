//! Operator tools: list the dead-letter queue and put its jobs back on the delivery queue
//! after a fix (`dead_letters`, with `provider_checks` telling whether the fix took), read a
//! conversation's thread to see why a message failed, erase or export a customer's data on
//! request, and check or write the lines. They work against AWS (credentials and region as
//! the AWS CLI finds them) or an emulator (`AWS_ENDPOINT_URL`).

pub mod dead_letters;
pub mod provider_checks;

pub mod erase;
pub mod export;
pub mod lines;

use std::fmt::Write as _;

use shared::domain::ConversationKey;
use shared::ports::{Conversations, Direction, ThreadMessage};

/// A conversation's thread as text: each message with every copy's state, delivery status
/// and last error (class and code).
pub async fn thread_report<S: Conversations>(store: &S, conversation: &ConversationKey) -> Result<String, String> {
    let thread = store.thread(conversation).await.map_err(|e| e.to_string())?;
    let mut out = format!("conversation {} · {}\n", conversation.line, conversation.customer.pretty());
    if thread.is_empty() {
        out.push_str("  (no messages)\n");
    }
    for message in &thread {
        write_message(&mut out, message);
    }
    Ok(out)
}

fn write_message(out: &mut String, message: &ThreadMessage) {
    let who = match (&message.direction, &message.agent) {
        (Direction::Inbound, _) => "customer".to_owned(),
        (Direction::Outbound, Some(agent)) => format!("agent {}", agent.masked()),
        (Direction::Outbound, None) => "agent".to_owned(),
    };
    let _ = writeln!(out, "{}  {who}: {}", message.at, message.body.replace('\n', " "));
    for leg in &message.legs {
        let _ = write!(out, "    {} → {}: {}", leg.kind, leg.to, leg.state.as_str());
        if let Some(status) = leg.status {
            let _ = write!(out, ", {status}");
        }
        if let Some(error) = &leg.error {
            let code = error.code.map(|c| format!(" {c}")).unwrap_or_default();
            let _ = write!(out, " [{}{code}: {}]", error.class, error.reason);
        }
        out.push('\n');
    }
}
