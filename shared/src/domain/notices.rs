//! What the bridge itself says to agents and strangers, in one place.

use super::conversation::Handle;
use super::line::Line;
use super::message::Wamid;
use super::phone::E164;
use super::sms_text::is_gsm7;
use super::status::{DeliveryStatus, failure_notice};
use super::whatsapp_message::{PickableConversation, WhatsAppMessage, conversation_picker};

/// The one reply a day someone who is not an agent of the line gets (SPEC §5.3).
pub fn not_an_agent(line: &Line) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "Hello! This WhatsApp number is only used by our team, so messages sent here aren't read. \
         To reach us, please text {}.",
        line.sms_number.pretty()
    ))
}

/// The delivery result of an agent's reply, shown on their message (SPEC §8).
pub fn delivery_result(
    status: DeliveryStatus,
    previous: Option<DeliveryStatus>,
    error_code: Option<i64>,
    agent_message: &Wamid,
) -> Vec<WhatsAppMessage> {
    let Some(emoji) = status.agent_reaction(previous) else {
        return Vec::new();
    };
    let reaction = WhatsAppMessage::Reaction { message: agent_message.clone(), emoji: emoji.to_owned() };
    if status.is_failure() {
        vec![reaction, WhatsAppMessage::reply(&failure_notice(error_code), agent_message)]
    } else {
        vec![reaction]
    }
}

/// "Which conversation?" with the open ones; `unknown` when the agent typed a handle that
/// doesn't exist.
pub fn which_conversation(
    unknown: Option<&Handle>,
    pending_text: &str,
    open: &[PickableConversation],
) -> WhatsAppMessage {
    let picker = conversation_picker(pending_text, open);
    match (unknown, picker) {
        (Some(handle), WhatsAppMessage::List { body, button, rows }) => {
            WhatsAppMessage::List { body: format!("There is no conversation {handle}. {body}"), button, rows }
        }
        (_, picker) => picker,
    }
}

pub fn no_open_conversation(unknown: Option<&Handle>) -> WhatsAppMessage {
    let prefix = unknown.map(|h| format!("There is no conversation {h}. ")).unwrap_or_default();
    WhatsAppMessage::text(&format!("{prefix}There is no open conversation to send this to, so nothing was sent."))
}

pub fn now_answering(handle: &Handle, customer: &E164) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("Now answering {handle} · {}. Your next messages go to them.", customer.pretty()))
}

pub fn conversation_gone(handle: Option<&Handle>) -> WhatsAppMessage {
    let which = handle.map(|h| format!(" {h}")).unwrap_or_default();
    WhatsAppMessage::text(&format!("That conversation{which} no longer exists, so nothing was sent."))
}

pub fn nothing_to_send() -> WhatsAppMessage {
    WhatsAppMessage::text("That message has no text to send, so nothing was sent.")
}

pub fn only_text_is_relayed(kind: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("Only text can be sent to customers for now, so your {kind} was not sent."))
}

/// A reply over the line's segment threshold was sent; says what it cost and why (SPEC §6).
pub fn costly_reply(segments: usize, parts: usize, body: &str, agent_message: &Wamid) -> WhatsAppMessage {
    let why = match body.chars().find(|c| !is_gsm7(&c.to_string())) {
        Some(c) => format!(" It is sent as Unicode (70 characters per segment instead of 160) because of “{c}”."),
        None => String::new(),
    };
    let split = if parts > 1 { format!(" It goes in {parts} numbered messages.") } else { String::new() };
    WhatsAppMessage::reply(&format!("ℹ️ This reply costs {segments} SMS segments.{why}{split}"), agent_message)
}

/// The agent answered a customer who opted out: nothing was sent (SPEC §6, §7).
pub fn customer_opted_out(handle: &Handle, agent_message: &Wamid) -> WhatsAppMessage {
    WhatsAppMessage::reply(
        &format!(
            "❌ Not sent: {handle} opted out of SMS (texted STOP). Nothing can be texted to them until they text START."
        ),
        agent_message,
    )
}

pub fn how_to_answer() -> WhatsAppMessage {
    WhatsAppMessage::text(
        "To answer a customer, swipe-reply to their message, or start with their handle, \
         e.g. \"#K7 Thanks, see you at 9!\". Commands are not available yet.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costly_replies_say_why() {
        let wamid = Wamid::parse("wamid.A").unwrap();
        let WhatsAppMessage::Text { body, reply_to } = costly_reply(4, 1, "Thanks 🙏 see you", &wamid) else {
            panic!()
        };
        assert_eq!(reply_to, Some(wamid.clone()));
        assert!(body.contains("costs 4 SMS segments") && body.contains("“🙏”"), "{body}");
        let WhatsAppMessage::Text { body, .. } = costly_reply(11, 2, "plain", &wamid) else { panic!() };
        assert!(!body.contains("Unicode") && body.contains("2 numbered messages"), "{body}");
    }

    #[test]
    fn delivered_gets_a_tick_and_failed_gets_a_cross_and_the_reason() {
        let wamid = Wamid::parse("wamid.A").unwrap();
        assert_eq!(
            delivery_result(DeliveryStatus::Delivered, Some(DeliveryStatus::Sent), None, &wamid),
            vec![WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "✅".into() }]
        );
        assert_eq!(
            delivery_result(DeliveryStatus::Undelivered, None, Some(30006), &wamid),
            vec![
                WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "❌".into() },
                WhatsAppMessage::reply("not delivered: landline or unreachable carrier (30006)", &wamid),
            ]
        );
        for quiet in [DeliveryStatus::Queued, DeliveryStatus::Sending, DeliveryStatus::Sent] {
            assert!(delivery_result(quiet, None, None, &wamid).is_empty(), "{quiet}");
        }
        assert!(delivery_result(DeliveryStatus::Read, Some(DeliveryStatus::Delivered), None, &wamid).is_empty());
    }
}
