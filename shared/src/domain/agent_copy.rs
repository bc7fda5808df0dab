//! The copy of a customer's SMS an agent receives: labelled text with buttons inside the
//! agent's 24 h window, the line's template outside it (docs/using.md). Built from a
//! `ForwardToAgent` job into a `WhatsAppMessage`, so it sits above both.

use super::compliance::{CustomerKeyword, reads_like_opt_out};
use super::conversation::Handle;
use super::delivery::ForwardToAgent;
use super::line::Line;
use super::media::WhatsAppMediaKind;
use super::whatsapp_message::{
    BUTTON_TITLE_MAX_CHARS, ButtonAction, INTERACTIVE_BODY_MAX_CHARS, ReplyButton, TEMPLATE_PARAMETER_MAX_CHARS,
    TEXT_BODY_MAX_CHARS, WhatsAppMessage, single_line, truncate_chars,
};

/// What the copy of a customer's SMS shows besides the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyFacts {
    /// The agent wrote to the business within 24 h: free-form and interactive messages allowed.
    pub window_open: bool,
    /// The customer opted out of SMS: replies can't be sent, so the copy says so.
    pub opted_out: bool,
}

/// The copy of a customer's SMS an agent receives (docs/using.md): labelled text with
/// Claim / Close / quick-reply buttons inside the agent's window, the line's template
/// outside it. A text too long for an interactive body goes without buttons.
pub fn agent_copy(line: &Line, handle: &Handle, job: &ForwardToAgent, facts: CopyFacts) -> WhatsAppMessage {
    let customer = job.conversation.customer.pretty();
    let mut text = annotated_text(job);
    if facts.opted_out && job.keyword.is_none() {
        text.push_str("\n\n");
        text.push_str(OPTED_OUT_NOTE);
    }
    // Plain words asking to stop (domain::compliance): the agents decide, one tap away.
    let asks_to_stop = !facts.opted_out && reads_like_opt_out(&job.text);
    if asks_to_stop {
        text.push_str("\n\n");
        text.push_str(&if facts.window_open {
            format!("ℹ️ This reads like a request to stop texts. Tap Opt out (or send /optout {handle}) to stop all texts to them, as STOP does.")
        } else {
            format!("ℹ️ This reads like a request to stop texts. Send /optout {handle} to stop all texts to them, as STOP does.")
        });
    }
    if !facts.window_open {
        return WhatsAppMessage::Template {
            name: line.template.name.clone(),
            language: line.template.language.clone(),
            parameters: vec![
                handle.to_string(),
                customer,
                truncate_chars(&template_safe(&text), TEMPLATE_PARAMETER_MAX_CHARS),
            ],
        };
    }
    let body = format!("{handle} · {customer}\n{text}");
    if body.chars().count() > INTERACTIVE_BODY_MAX_CHARS {
        return WhatsAppMessage::text(&body);
    }
    let mut buttons = vec![
        ReplyButton { id: ButtonAction::Claim.button_id(handle), title: "Claim".to_owned() },
        ReplyButton { id: ButtonAction::Close.button_id(handle), title: "Close".to_owned() },
    ];
    if asks_to_stop {
        // In the quick reply's place: a canned answer is no answer to "stop texting me".
        buttons.insert(0, ReplyButton { id: ButtonAction::OptOut.button_id(handle), title: "Opt out".to_owned() });
    } else if let Some(quick) = &line.quick_reply
        && !facts.opted_out
    {
        let title = truncate_chars(quick.title.trim(), BUTTON_TITLE_MAX_CHARS);
        buttons.push(ReplyButton { id: ButtonAction::QuickReply.button_id(handle), title });
    }
    WhatsAppMessage::Buttons { body, buttons }
}

const OPTED_OUT_NOTE: &str = "🚫 Opted out of SMS: replies can't be sent until they text START.";

/// One conversation's copy in a digest.
#[derive(Debug, Clone, Copy)]
pub struct DigestEntry<'a> {
    pub handle: &'a Handle,
    pub forward: &'a ForwardToAgent,
    pub opted_out: bool,
}

/// What a digest says after its copies: a swipe-reply can't tell which one is answered.
pub const DIGEST_FOOTER: &str = "↩️ Start your reply with the #handle: a swipe-reply to this message is asked which.";

/// Copies of several conversations to one agent as one message (docs/using.md, "A busy
/// line: digests"), for an agent whose window is open: each copy under its handle and
/// customer, in order, as many as one message holds (at least the first), and the first
/// one's Claim and Close buttons when the whole fits an interactive body. Returns the
/// message and how many entries it carries.
pub fn digest_copy(entries: &[DigestEntry<'_>]) -> (WhatsAppMessage, usize) {
    let parts: Vec<String> = entries.iter().map(digest_part).collect();
    let header = |n: usize| format!("📥 {n} conversations");
    // Each part after a blank line, the footer last; count what fits the text limit.
    let mut taken = 0;
    let mut length = header(entries.len()).chars().count() + 2 + DIGEST_FOOTER.chars().count();
    for part in &parts {
        let added = part.chars().count() + 2;
        if taken > 0 && length + added > TEXT_BODY_MAX_CHARS {
            break;
        }
        length += added;
        taken += 1;
    }
    let taken = taken.max(1).min(entries.len());
    let mut body = header(taken);
    for part in &parts[..taken] {
        body.push_str("\n\n");
        body.push_str(part);
    }
    body.push_str("\n\n");
    body.push_str(DIGEST_FOOTER);
    let Some(first) = entries.first() else { return (WhatsAppMessage::text(&body), 0) };
    if body.chars().count() > INTERACTIVE_BODY_MAX_CHARS {
        return (WhatsAppMessage::text(&body), taken);
    }
    let handle = first.handle;
    let buttons = vec![
        ReplyButton { id: ButtonAction::Claim.button_id(handle), title: format!("Claim {handle}") },
        ReplyButton { id: ButtonAction::Close.button_id(handle), title: format!("Close {handle}") },
    ];
    (WhatsAppMessage::Buttons { body, buttons }, taken)
}

/// One copy in a digest: as the copy of one conversation reads, with its notes; a text
/// that reads like "stop" says which command opts the customer out.
fn digest_part(entry: &DigestEntry<'_>) -> String {
    let (handle, job) = (entry.handle, entry.forward);
    let mut text = annotated_text(job);
    if entry.opted_out && job.keyword.is_none() {
        text.push('\n');
        text.push_str(OPTED_OUT_NOTE);
    } else if !entry.opted_out && reads_like_opt_out(&job.text) {
        text.push_str(&format!("\nℹ️ This reads like a request to stop texts: /optout {handle} stops them."));
    }
    format!("{handle} · {}\n{text}", job.conversation.customer.pretty())
}

/// The customer's text with its attachments and what a keyword in it changed.
pub fn annotated_text(job: &ForwardToAgent) -> String {
    let mut text = customer_text(job);
    let note = match job.keyword {
        Some(CustomerKeyword::OptOut) => Some(OPTED_OUT_NOTE),
        Some(CustomerKeyword::OptIn) => Some("✅ Opted back in to SMS: replies can be sent again."),
        Some(CustomerKeyword::Help) => Some("ℹ️ Asked for help (HELP)."),
        None => None,
    };
    if let Some(note) = note {
        text.push_str("\n\n");
        text.push_str(note);
    }
    text
}

fn customer_text(job: &ForwardToAgent) -> String {
    let mut text = job.text.clone();
    for (i, item) in job.media.iter().enumerate() {
        if !text.is_empty() {
            text.push('\n');
        }
        let kind = WhatsAppMediaKind::for_content_type(&item.content_type).map_or("attachment", |k| k.as_str());
        text.push_str(&format!("[{kind} {}/{}]", i + 1, job.media.len()));
    }
    for attachment in &job.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("[attachment: {attachment}]"));
    }
    if text.trim().is_empty() { "(empty message)".to_owned() } else { text }
}

/// Newlines and tabs become spaces and runs of spaces collapse: Meta rejects template
/// parameters that contain them (error 132018).
fn template_safe(text: &str) -> String {
    single_line(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::whatsapp_message::{BUTTON_ID_MAX_CHARS, BUTTONS_MAX, TEXT_BODY_MAX_CHARS};
    use crate::domain::{ConversationKey, E164, LineId, Lines, MessageId, WaId};
    use jiff::Timestamp;

    fn line() -> Line {
        let lines = Lines::from_json(
            "t",
            r#"[{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
                "template": { "name": "new_customer_message", "language": "en" } }]"#,
        )
        .unwrap();
        lines.iter().next().unwrap().clone()
    }

    fn job(text: &str) -> ForwardToAgent {
        ForwardToAgent {
            conversation: ConversationKey {
                line: LineId::parse("main").unwrap(),
                customer: E164::parse("+14155550134").unwrap(),
            },
            message_id: MessageId::new_v7(),
            agent: WaId::parse("14155550111").unwrap(),
            text: text.to_owned(),
            attachments: Vec::new(),
            media: Vec::new(),
            received_at: Timestamp::UNIX_EPOCH,
            keyword: None,
        }
    }

    fn k7() -> Handle {
        Handle::parse("K7").unwrap()
    }

    fn of(customer: &str, text: &str) -> ForwardToAgent {
        let mut forward = job(text);
        forward.conversation.customer = E164::parse(customer).unwrap();
        forward
    }

    #[test]
    fn a_digest_carries_each_conversation_under_its_handle_with_the_first_ones_buttons() {
        let (a, b) = (Handle::parse("AB").unwrap(), Handle::parse("CD").unwrap());
        let (first, second) = (of("+14155550134", "Is it ready?"), of("+14155550135", "please stop texting me"));
        let entries = [
            DigestEntry { handle: &a, forward: &first, opted_out: false },
            DigestEntry { handle: &b, forward: &second, opted_out: false },
        ];
        let (WhatsAppMessage::Buttons { body, buttons }, 2) = digest_copy(&entries) else { panic!() };
        assert!(body.starts_with("📥 2 conversations\n\n#AB · "), "{body}");
        let (at_a, at_b) = (body.find("#AB · ").unwrap(), body.find("#CD · ").unwrap());
        assert!(at_a < body.find("Is it ready?").unwrap() && at_b > at_a, "in order, each under its handle: {body}");
        assert!(body.contains("/optout #CD"), "{body}");
        assert!(body.ends_with(DIGEST_FOOTER));
        let pressed: Vec<_> = buttons.iter().filter_map(|b| ButtonAction::parse_button_id(&b.id)).collect();
        assert_eq!(pressed, [(ButtonAction::Claim, a.clone()), (ButtonAction::Close, a.clone())]);
        assert!(buttons.iter().all(|b| b.title.chars().count() <= BUTTON_TITLE_MAX_CHARS));
    }

    #[test]
    fn a_digest_takes_what_one_message_holds_and_always_the_first() {
        let handles: Vec<Handle> = ["AB", "CD", "EF", "GH"].iter().map(|h| Handle::parse(h).unwrap()).collect();
        let forwards: Vec<ForwardToAgent> = (0..4).map(|i| of(&format!("+1415555013{i}"), &"w".repeat(1500))).collect();
        let entries: Vec<DigestEntry<'_>> = handles
            .iter()
            .zip(&forwards)
            .map(|(handle, forward)| DigestEntry { handle, forward, opted_out: false })
            .collect();
        let (message, taken) = digest_copy(&entries);
        let WhatsAppMessage::Text { body, .. } = &message else { panic!("too long for buttons: {message:?}") };
        assert_eq!(taken, 2, "two 1,500-character texts fit 4,096 characters, three don't");
        assert!(body.chars().count() <= TEXT_BODY_MAX_CHARS && body.starts_with("📥 2 conversations"));
        assert!(body.contains("#CD · ") && !body.contains("#EF · "));
        let huge = of("+14155550139", &"z".repeat(TEXT_BODY_MAX_CHARS));
        let alone = [DigestEntry { handle: &handles[0], forward: &huge, opted_out: true }];
        assert_eq!(digest_copy(&alone).1, 1, "the first always goes");
    }

    const OPEN: CopyFacts = CopyFacts { window_open: true, opted_out: false };
    const CLOSED: CopyFacts = CopyFacts { window_open: false, opted_out: false };

    #[test]
    fn buttons_respect_the_cloud_api_limits_and_round_trip() {
        let mut with_quick = line();
        with_quick.quick_reply =
            Some(crate::domain::line::QuickReply { title: "On our way!".into(), text: "We're on our way.".into() });
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &job("Hi"), OPEN) else {
            panic!()
        };
        assert!(body.chars().count() <= INTERACTIVE_BODY_MAX_CHARS);
        assert_eq!(buttons.len(), BUTTONS_MAX);
        for button in &buttons {
            assert!(button.title.chars().count() <= BUTTON_TITLE_MAX_CHARS);
            assert!(button.id.len() <= BUTTON_ID_MAX_CHARS);
            assert_eq!(ButtonAction::parse_button_id(&button.id).map(|(_, h)| h), Some(k7()));
        }
        assert_eq!(ButtonAction::parse_button_id(&buttons[2].id).map(|(a, _)| a), Some(ButtonAction::QuickReply));
        // An opted-out customer can't be answered: no quick reply, and the copy says why.
        let opted_out = CopyFacts { window_open: true, opted_out: true };
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &job("Hi"), opted_out) else {
            panic!()
        };
        assert_eq!(buttons.len(), 2);
        assert!(body.contains("Opted out of SMS"), "{body}");
        // Over the interactive body limit: plain text, no buttons.
        let long = "y".repeat(INTERACTIVE_BODY_MAX_CHARS);
        assert!(matches!(agent_copy(&with_quick, &k7(), &job(&long), OPEN), WhatsAppMessage::Text { .. }));
        for bad in ["claim:K7", "act:claim", "act:claim:", "act:fly:K7", "act:claim:K0", "act:close:#K7 x", ""] {
            assert_eq!(ButtonAction::parse_button_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_text_asking_to_stop_in_words_gets_an_opt_out_button_and_a_hint() {
        let mut with_quick = line();
        with_quick.quick_reply =
            Some(crate::domain::line::QuickReply { title: "On our way!".into(), text: "x".into() });
        let asks = job("please stop texting me");
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &asks, OPEN) else { panic!() };
        let actions: Vec<_> =
            buttons.iter().filter_map(|b| ButtonAction::parse_button_id(&b.id)).map(|(a, _)| a).collect();
        assert_eq!(actions, [ButtonAction::OptOut, ButtonAction::Claim, ButtonAction::Close], "no quick reply to that");
        assert_eq!(buttons[0].title, "Opt out");
        assert!(body.contains("reads like a request to stop texts. Tap Opt out (or send /optout #K7)"), "{body}");
        // Outside the window the template can't carry buttons: the command is named instead.
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&with_quick, &k7(), &asks, CLOSED) else {
            panic!()
        };
        assert!(parameters[2].contains("Send /optout #K7"), "{parameters:?}");
        // Already opted out: nothing to offer.
        let done = CopyFacts { window_open: true, opted_out: true };
        let WhatsAppMessage::Buttons { body, buttons } = agent_copy(&with_quick, &k7(), &asks, done) else { panic!() };
        assert_eq!(buttons.len(), 2);
        assert!(!body.contains("/optout"), "{body}");
    }

    #[test]
    fn keywords_are_explained_on_the_copy() {
        let mut stop = job(" Stop. ");
        stop.keyword = Some(CustomerKeyword::OptOut);
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &stop, OPEN) else { panic!() };
        assert!(body.starts_with("#K7 · +1 415-555-0134\n Stop. \n\n🚫 Opted out of SMS"), "{body}");
        assert_eq!(body.matches("Opted out").count(), 1, "said once even though the store says opted out too");
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&line(), &k7(), &stop, CLOSED) else { panic!() };
        assert!(parameters[2].contains("Opted out of SMS"));
    }

    #[test]
    fn open_window_gets_labelled_text() {
        let copy = agent_copy(&line(), &k7(), &job("Is my order ready?"), OPEN);
        assert_eq!(
            copy,
            WhatsAppMessage::Buttons {
                body: "#K7 · +1 415-555-0134\nIs my order ready?".into(),
                buttons: vec![
                    ReplyButton { id: "act:claim:K7".into(), title: "Claim".into() },
                    ReplyButton { id: "act:close:K7".into(), title: "Close".into() },
                ],
            }
        );
    }

    #[test]
    fn closed_window_gets_the_template_with_safe_parameters() {
        let copy = agent_copy(&line(), &k7(), &job("line one\n\nline\ttwo     end"), CLOSED);
        assert_eq!(
            copy,
            WhatsAppMessage::Template {
                name: "new_customer_message".into(),
                language: "en".into(),
                parameters: vec!["#K7".into(), "+1 415-555-0134".into(), "line one line two end".into()],
            }
        );
    }

    #[test]
    fn attachments_and_empty_texts_are_visible() {
        let mut j = job("");
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &j, OPEN) else { panic!() };
        assert!(body.ends_with("(empty message)"));
        j.attachments = vec!["image/jpeg".into()];
        let WhatsAppMessage::Buttons { body, .. } = agent_copy(&line(), &k7(), &j, OPEN) else { panic!() };
        assert!(body.ends_with("[attachment: image/jpeg]"));
    }

    #[test]
    fn long_texts_are_cut_to_the_cloud_api_limits() {
        let long = "x".repeat(5000);
        let WhatsAppMessage::Text { body, .. } = agent_copy(&line(), &k7(), &job(&long), OPEN) else { panic!() };
        assert_eq!(body.chars().count(), TEXT_BODY_MAX_CHARS);
        let WhatsAppMessage::Template { parameters, .. } = agent_copy(&line(), &k7(), &job(&long), CLOSED) else {
            panic!()
        };
        assert_eq!(parameters[2].chars().count(), TEMPLATE_PARAMETER_MAX_CHARS);
    }
}
