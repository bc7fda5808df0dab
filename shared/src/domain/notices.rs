//! What the bridge itself says to agents and strangers, in one place.

use super::conversation::Handle;
use super::line::{DeliveryReceipts, Line};
use super::message::Wamid;
use super::phone::E164;
use super::sms_text::is_gsm7;
use super::status::{DeliveryStatus, failure_notice};
use super::whatsapp_message::{PickableConversation, WhatsAppMessage, conversation_picker};

/// The one reply a day someone who is not an agent of the line gets (docs/using.md).
pub fn not_an_agent(line: &Line) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "Hello! This WhatsApp number is only used by our team, so messages sent here aren't read. \
         To reach us, please text {}.",
        line.sms_number.pretty()
    ))
}

/// The delivery result of an agent's reply, shown on their message (docs/using.md): when
/// delivered, the message marked read or a ✅ (the line's `delivery_receipts`); when it
/// failed, ❌ and the reason quoted, whatever the option.
pub fn delivery_result(
    status: DeliveryStatus,
    previous: Option<DeliveryStatus>,
    error_code: Option<i64>,
    agent_message: &Wamid,
    receipts: DeliveryReceipts,
) -> Vec<WhatsAppMessage> {
    let Some(emoji) = status.agent_reaction(previous) else {
        return Vec::new();
    };
    if status.is_failure() {
        let reaction = WhatsAppMessage::Reaction { message: agent_message.clone(), emoji: emoji.to_owned() };
        return vec![reaction, WhatsAppMessage::reply(&failure_notice(error_code), agent_message)];
    }
    match receipts {
        DeliveryReceipts::ReadMark => vec![WhatsAppMessage::ReadMark { message: agent_message.clone() }],
        DeliveryReceipts::Reaction => {
            vec![WhatsAppMessage::Reaction { message: agent_message.clone(), emoji: emoji.to_owned() }]
        }
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

/// A kind of WhatsApp message the bridge doesn't relay at all (a location, contacts, an
/// order, what the Cloud API itself calls unsupported).
pub fn message_kind_not_sent(kind: &str) -> WhatsAppMessage {
    let kind: String = kind.chars().filter(|c| c.is_ascii_alphanumeric() || "_/ ".contains(*c)).take(40).collect();
    WhatsAppMessage::text(&format!(
        "That message ({kind}) can't be sent by SMS, so it was not sent. Send it as text instead."
    ))
}

/// Media the bridge doesn't relay: a sticker, anything when relay is off for the line.
pub fn media_not_sent(kind: &str, relay_on: bool) -> WhatsAppMessage {
    if relay_on {
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "An" } else { "A" };
        WhatsAppMessage::text(&format!("{article} {kind} can't be sent by SMS, so it was not sent."))
    } else {
        WhatsAppMessage::text(&format!(
            "This line sends customers text only, so your {kind} was not sent. Describe it in words instead."
        ))
    }
}

pub fn media_needs_a_conversation() -> WhatsAppMessage {
    WhatsAppMessage::text(
        "Which customer is this for? Swipe-reply to their message with the file, or start the caption with \
         their handle (\"#K7 here's the photo\"). Nothing was sent.",
    )
}

/// A reply over the line's segment threshold was sent; says what it cost and why (docs/using.md).
pub fn costly_reply(segments: usize, parts: usize, body: &str, agent_message: &Wamid) -> WhatsAppMessage {
    let why = match body.chars().find(|c| !is_gsm7(&c.to_string())) {
        Some(c) => format!(" It is sent as Unicode (70 characters per segment instead of 160) because of “{c}”."),
        None => String::new(),
    };
    let split = if parts > 1 { format!(" It goes in {parts} numbered messages.") } else { String::new() };
    WhatsAppMessage::reply(&format!("ℹ️ This reply costs {segments} SMS segments.{why}{split}"), agent_message)
}

/// The agent answered a customer who opted out: nothing was sent (docs/using.md).
pub fn customer_opted_out(handle: &Handle, agent_message: &Wamid) -> WhatsAppMessage {
    WhatsAppMessage::reply(
        &format!(
            "❌ Not sent: {handle} opted out of SMS (texted STOP). Nothing can be texted to them until they text START."
        ),
        agent_message,
    )
}

/// `/help`, and the answer to an unknown command (docs/using.md).
pub fn help(line: &Line, unknown: Option<&str>) -> WhatsAppMessage {
    let mut text = match unknown {
        Some(name) => format!("There is no command /{name}.\n\n"),
        None => String::new(),
    };
    text.push_str(
        "To answer a customer, swipe-reply to their message, or start with their handle: \
         \"#K7 Thanks, see you at 9!\". \"#K7\" alone makes your next messages go to them.\n\n\
         Commands:\n\
         /list – open conversations (/list 2 for more)\n\
         /close – close the conversation you're answering (/close #K7 for another)\n\
         /unclaim – give back the conversation you claimed (/unclaim #K7 for another)\n\
         /optout #K7 – stop all texts to a customer who asked in words, as their STOP would\n\
         /away – no customer texts until /back (unless nobody else is on duty)\n\
         /back – customer texts come to you again\n",
    );
    if line.allow_agent_initiated {
        text.push_str("/to +14155550134 text – text a customer who hasn't written\n");
    }
    text.push_str("/help – this message\n\nButtons on a customer's message: Claim it, Close it");
    if let Some(quick) = &line.quick_reply {
        text.push_str(&format!(", or send \"{}\"", quick.title));
    }
    text.push('.');
    WhatsAppMessage::text(&text)
}

pub fn how_to_type(usage: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("That command needs other details. Type it like this: {usage}"))
}

pub fn no_open_conversations(page: usize) -> WhatsAppMessage {
    if page > 1 {
        WhatsAppMessage::text(&format!("There is no page {page}: fewer open conversations than that."))
    } else {
        WhatsAppMessage::text("There are no open conversations.")
    }
}

/// Who did something, as other agents read it: their WhatsApp profile name, else their number.
pub fn agent_name(profile_name: Option<&str>, agent: &super::phone::WaId) -> String {
    match profile_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name.chars().take(40).collect(),
        None => format!("+{}", agent.as_str()),
    }
}

/// To the line's other agents: one of them has a new WhatsApp number, which gets no copies
/// until the line's configuration lists it (agents are configured by phone).
pub fn agent_changed_number(agent_name: &str, new_phone: &super::phone::WaId) -> WhatsAppMessage {
    let new = super::phone::E164::parse(&format!("+{}", new_phone.as_str()))
        .map(|n| n.pretty())
        .unwrap_or_else(|_| format!("+{}", new_phone.as_str()));
    WhatsAppMessage::text(&format!(
        "ℹ️ {agent_name} changed their WhatsApp number to {new}. Until the bridge's configuration lists the \
         new number, customers' texts are not copied to it."
    ))
}

/// To the line's other agents: one of them has a new WhatsApp user id, which the bridge now
/// recognises; nothing to do.
pub fn agent_changed_user_id(agent_name: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "ℹ️ {agent_name}'s WhatsApp account id changed. The bridge recognises the new one; nothing to do."
    ))
}

/// `only_you`: the line copies a claimed conversation's texts to its claimer only.
pub fn you_claimed(handle: &Handle, customer: &E164, only_you: bool) -> WhatsAppMessage {
    let copies = if only_you { " Their texts now come to you only; /unclaim gives them back." } else { "" };
    WhatsAppMessage::text(&format!(
        "You claimed {handle} · {}. The other agents were told; your next messages go to them.{copies}",
        customer.pretty()
    ))
}

pub fn you_opted_out(handle: &Handle, customer: &E164) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "You opted {handle} · {} out of SMS: nothing is texted to them until they text START.",
        customer.pretty()
    ))
}

pub fn opted_out_by(handle: &Handle, customer: &E164, name: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "{handle} · {} opted out of SMS by {name}: nothing is texted to them until they text START.",
        customer.pretty()
    ))
}

pub fn already_opted_out(handle: &Handle) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("{handle} is already opted out of SMS, so nothing changed."))
}

pub fn you_unclaimed(handle: &Handle, customer: &E164) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "You gave back {handle} · {}. Their texts go to every agent on duty again.",
        customer.pretty()
    ))
}

pub fn unclaimed_by(handle: &Handle, customer: &E164, name: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "{name} gave back {handle} · {}: their texts come to every agent on duty again.",
        customer.pretty()
    ))
}

pub fn not_claimed(handle: &Handle) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("{handle} isn't claimed, so nothing changed."))
}

pub fn unclaim_which() -> WhatsAppMessage {
    WhatsAppMessage::text("Which conversation? You aren't answering one right now. Type it like this: /unclaim #K7")
}

pub fn you_are_away() -> WhatsAppMessage {
    WhatsAppMessage::text(
        "You're away: customers' texts go to the agents on duty (to you too if nobody is). \
         Send /back when you're back.",
    )
}

pub fn you_are_back() -> WhatsAppMessage {
    WhatsAppMessage::text("You're back on duty: customers' texts come to you again.")
}

pub fn claimed_by(handle: &Handle, customer: &E164, name: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("{handle} · {} claimed by {name}.", customer.pretty()))
}

pub fn you_closed(handle: &Handle) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("Closed {handle}. It reopens when the customer texts again."))
}

pub fn closed_by(handle: &Handle, customer: &E164, name: &str) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("{handle} · {} closed by {name}.", customer.pretty()))
}

pub fn already_closed(handle: &Handle) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!(
        "{handle} is already closed, so nothing changed. It reopens when the customer texts again."
    ))
}

pub fn close_which() -> WhatsAppMessage {
    WhatsAppMessage::text("Which conversation? You aren't answering one right now. Type it like this: /close #K7")
}

pub fn unknown_button() -> WhatsAppMessage {
    WhatsAppMessage::text("That button isn't one the bridge knows, so nothing was done.")
}

pub fn no_quick_reply() -> WhatsAppMessage {
    WhatsAppMessage::text("This line has no quick reply configured, so nothing was sent.")
}

pub fn agent_initiated_not_allowed() -> WhatsAppMessage {
    WhatsAppMessage::text("This line doesn't allow texting customers who haven't written first, so nothing was sent.")
}

pub fn not_a_customer_number(customer: &E164) -> WhatsAppMessage {
    WhatsAppMessage::text(&format!("{} is one of the business's own numbers, so nothing was sent.", customer.pretty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_only_what_the_line_allows() {
        let lines = crate::domain::Lines::from_json(
            "t",
            r#"[{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
                "template": { "name": "new_customer_message", "language": "en" } }]"#,
        )
        .unwrap();
        let line = lines.iter().next().unwrap();
        let WhatsAppMessage::Text { body, .. } = help(line, Some("frobnicate")) else { panic!() };
        assert!(body.starts_with("There is no command /frobnicate."), "{body}");
        assert!(body.contains("/list") && body.contains("/close") && !body.contains("/to "), "{body}");
        let mut open = line.clone();
        open.allow_agent_initiated = true;
        let WhatsAppMessage::Text { body, .. } = help(&open, None) else { panic!() };
        assert!(body.contains("/to +1"), "{body}");
        assert!(body.chars().count() <= crate::domain::whatsapp_message::TEXT_BODY_MAX_CHARS);
    }

    #[test]
    fn an_unrelayed_kind_is_named_but_only_in_plain_characters() {
        let WhatsAppMessage::Text { body, .. } = message_kind_not_sent("location") else { panic!() };
        assert!(body.starts_with("That message (location) can't be sent by SMS"), "{body}");
        let WhatsAppMessage::Text { body, .. } = message_kind_not_sent("*bold*\n<script>") else { panic!() };
        assert!(body.starts_with("That message (boldscript) can't"), "{body}");
    }

    #[test]
    fn unsent_media_is_named_with_its_article() {
        for (kind, expected) in
            [("image", "An image can't"), ("audio", "An audio can't"), ("sticker", "A sticker can't")]
        {
            let WhatsAppMessage::Text { body, .. } = media_not_sent(kind, true) else { panic!() };
            assert!(body.starts_with(expected), "{body}");
        }
    }

    #[test]
    fn agents_are_named_by_profile_or_number() {
        let agent = crate::domain::WaId::parse("14155550111").unwrap();
        assert_eq!(agent_name(Some(" Ana "), &agent), "Ana");
        assert_eq!(agent_name(Some(""), &agent), "+14155550111");
        assert_eq!(agent_name(None, &agent), "+14155550111");
    }

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
            delivery_result(
                DeliveryStatus::Delivered,
                Some(DeliveryStatus::Sent),
                None,
                &wamid,
                DeliveryReceipts::Reaction
            ),
            vec![WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "✅".into() }]
        );
        assert_eq!(
            delivery_result(DeliveryStatus::Undelivered, None, Some(30006), &wamid, DeliveryReceipts::ReadMark),
            vec![
                WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "❌".into() },
                WhatsAppMessage::reply("not delivered: landline or unreachable carrier (30006)", &wamid),
            ]
        );
        for quiet in [DeliveryStatus::Queued, DeliveryStatus::Sending, DeliveryStatus::Sent] {
            assert!(delivery_result(quiet, None, None, &wamid, DeliveryReceipts::ReadMark).is_empty(), "{quiet}");
        }
        let again = delivery_result(
            DeliveryStatus::Read,
            Some(DeliveryStatus::Delivered),
            None,
            &wamid,
            DeliveryReceipts::ReadMark,
        );
        assert!(again.is_empty());
        // The default: the agent's message marked read, no message sent.
        assert_eq!(
            delivery_result(DeliveryStatus::Delivered, None, None, &wamid, DeliveryReceipts::ReadMark),
            vec![WhatsAppMessage::ReadMark { message: wamid.clone() }]
        );
    }
}
