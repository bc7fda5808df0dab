//! Operator tools: put dead-lettered jobs back on the delivery queue after a fix, read a
//! conversation's thread to see why a message failed, and erase or export a customer's data
//! on request. They work against AWS
//! (credentials and region as the AWS CLI finds them) or an emulator (`AWS_ENDPOINT_URL`).

pub mod erase;
pub mod export;
pub mod lines;

use std::fmt::Write as _;

use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use shared::domain::ConversationKey;
use shared::ports::{Conversations, Direction, ThreadMessage};

/// Moves every message from the dead-letter queue back to the delivery queue, oldest first,
/// each in its own FIFO group. Jobs that finished meanwhile are acknowledged by the worker
/// without a second send. Returns how many moved.
pub async fn redrive(sqs: &Sqs, dead_letter_url: &str, queue_url: &str) -> Result<usize, String> {
    let error = |e: &dyn std::error::Error| DisplayErrorContext(e).to_string();
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(dead_letter_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| error(&e))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            let id = message.message_id().unwrap_or("unknown");
            let mut send = sqs.send_message().queue_url(queue_url).message_body(message.body().unwrap_or_default());
            if queue_url.ends_with(".fifo") {
                let group = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .map_or("redriven", String::as_str);
                // A new deduplication id: the job's own id may still be in SQS's window.
                send = send.message_group_id(group).message_deduplication_id(format!("{id}-redrive"));
            }
            send.send().await.map_err(|e| error(&e))?;
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dead_letter_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| error(&e))?;
            }
            moved += 1;
        }
    }
}

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
