//! What an agent's message holds (docs/using.md, docs/media.md): reactions are never
//! relayed, stickers and unknown kinds are named to the agent, media routes by its caption
//! like text, and a reply's text loses WhatsApp formatting, is split over 1600 characters,
//! and tells the agent when it costs more segments than the line's warning.

use shared::app::receive_whatsapp::{MessageHandled, NotRelayed};
use shared::domain::media::WhatsAppMedia;
use shared::domain::routing::RouteRule;
use shared::domain::{InboundWhatsApp, JobId, WhatsAppContent, WhatsAppMessage, notices};

use super::fixture::*;

fn the_photo() -> WhatsAppMedia {
    WhatsAppMedia::parse("1234567890", "image/jpeg").unwrap()
}

#[tokio::test]
async fn a_reaction_is_recorded_silently_and_never_relayed() {
    let w = World::new();
    let (_, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    w.receive(text(0, "#K7"), t0()).await;
    w.take();
    let reaction =
        InboundWhatsApp { context: Some(copy), ..from_agent(0, WhatsAppContent::Reaction { emoji: "👍".into() }) };

    let handled = w.receive(reaction.clone(), t0() + secs(5)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Reaction });
    assert!(w.take().is_empty(), "no SMS, no notice");
    assert!(w.replies(0).await.is_empty());
    assert_eq!(w.agent_state(0).await.last_inbound_at, Some(t0() + secs(5)), "the agent's window is recorded");
    assert_eq!(w.receive(reaction, t0() + secs(6)).await, MessageHandled::Duplicate, "recorded once");
}

#[tokio::test]
async fn a_sticker_is_not_sent_and_the_agent_is_told_even_with_a_focus() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.receive(text(0, "#K7"), t0()).await;
    w.take();

    let handled = w.receive(media(0, "sticker", None), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Media });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::media_not_sent("sticker", true)]);
    assert_eq!(words(&notices_to(&jobs, 0)[0]), "A sticker can't be sent by SMS, so it was not sent.");
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn media_on_a_line_that_relays_none_is_not_sent_and_the_agent_is_told() {
    let mut line = test_line();
    line.media_relay = false;
    let w = World::with_line(line);
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    let handled = w.receive(media(0, "image", Some("#K7 the receipt")), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Media });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::media_not_sent("image", false)]);
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn an_unsupported_message_kind_is_named_to_the_agent_and_whatsapps_own_notices_are_silent() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.receive(text(0, "#K7"), t0()).await;
    w.take();

    let location = from_agent(0, WhatsAppContent::Unsupported { kind: "location".into() });
    let handled = w.receive(location, t0() + secs(1)).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Unsupported });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::message_kind_not_sent("location")]);
    assert!(sms_of(&jobs).is_empty());

    let system = from_agent(0, WhatsAppContent::Unsupported { kind: "system".into() });
    assert_eq!(w.receive(system, t0() + secs(2)).await, MessageHandled::NotRelayed { why: NotRelayed::System });
    assert!(w.take().is_empty());
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn media_with_a_handle_caption_goes_to_that_conversation_with_the_rest_as_its_text() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;
    w.receive(text(0, "#M3"), t0()).await;
    w.take();

    let handled = w.receive(media(0, "image", Some("#K7 Here's the *receipt*")), t0() + secs(1)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::Handle }
    );
    let jobs = w.take();
    let sms = sms_of(&jobs);
    assert_eq!(sms.len(), 1);
    assert_eq!((sms[0].text.as_str(), &sms[0].media), ("Here's the receipt", &vec![the_photo()]));
    assert_eq!(w.replies(0).await[0].body, "Here's the receipt");
    assert!(w.replies(1).await.is_empty());
}

#[tokio::test]
async fn media_routes_by_swipe_reply_bare_handle_or_focus_like_a_text() {
    let w = World::new();
    let (_, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;

    let swiped = InboundWhatsApp { context: Some(copy), ..media(0, "document", None) };
    let handled = w.receive(swiped, t0() + secs(1)).await;
    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::SwipeReply, .. }), "{handled:?}");
    let sms = sms_of(&w.take());
    assert_eq!((sms[0].conversation.clone(), sms[0].text.as_str()), (w.conversation(0), ""));
    assert_eq!(sms[0].media, [the_photo()]);

    // A bare handle as the caption: the media goes there, with no text.
    let handled = w.receive(media(1, "video", Some("#M3")), t0() + secs(2)).await;
    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(1), handle: handle("M3"), rule: RouteRule::Handle }
    );
    let sms = sms_of(&w.take());
    assert_eq!((sms[0].text.as_str(), sms[0].media.len()), ("", 1));

    // Agent 1 now answers #M3: the next picture follows the focus.
    let handled = w.receive(media(1, "image", Some("and the back")), t0() + secs(3)).await;
    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::Focus, .. }), "{handled:?}");
    assert_eq!(texted(&w.take()), [(customer(1), "and the back".to_owned())]);
    assert_eq!(w.replies(1).await.len(), 2);
}

#[tokio::test]
async fn media_naming_no_conversation_is_refused_with_how_to_address_it_and_does_not_wait() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    for caption in [None, Some("the receipt"), Some("#ZZ the receipt"), Some("/help")] {
        let handled = w.receive(media(0, "image", caption), t0()).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::MediaWhich }, "{caption:?}");
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 0), [notices::media_needs_a_conversation()], "{caption:?}");
        assert!(sms_of(&jobs).is_empty());
    }
    assert_eq!(w.agent_state(0).await.pending, None, "media can't wait in a list");
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn whatsapp_formatting_is_stripped_and_typography_smart_encoded_before_the_sms() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    w.receive(text(0, "#K7 Yes! It's *ready*, we close at 6 — see you soon…"), t0()).await;
    w.receive(text(0, "#K7 _Also_: ~no~ `code` here, but 5 * 2 = 10 and snake_case stay"), t0()).await;

    assert_eq!(
        texted(&w.take()),
        [
            (customer(0), "Yes! It's ready, we close at 6 - see you soon...".to_owned()),
            (customer(0), "Also: no code here, but 5 * 2 = 10 and snake_case stay".to_owned()),
        ]
    );
    let bodies: Vec<String> = w.replies(0).await.into_iter().map(|m| m.body).collect();
    assert_eq!(
        bodies,
        ["Yes! It's ready, we close at 6 - see you soon...", "Also: no code here, but 5 * 2 = 10 and snake_case stay"],
        "the thread keeps what was sent"
    );
}

#[tokio::test]
async fn without_smart_encoding_the_typography_is_sent_as_typed() {
    let mut line = test_line();
    line.smart_encoding = false;
    let w = World::with_line(line);
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    w.receive(text(0, "#K7 We close at 6 — see you soon…"), t0()).await;

    assert_eq!(texted(&w.take()), [(customer(0), "We close at 6 — see you soon…".to_owned())]);
}

#[tokio::test]
async fn a_reply_over_1600_characters_goes_as_numbered_parts_of_one_message_media_with_the_first() {
    let w = World::new();
    w.customer_texts(0, "Tell me everything", t0()).await;
    let long = "word ".repeat(340).trim_end().to_owned(); // 1699 characters
    let message = media(0, "image", Some(&format!("#K7 {long}")));
    let agent_wamid = message.wamid.clone();

    w.receive(message, t0()).await;

    let jobs = w.take();
    let sms = sms_of(&jobs);
    assert_eq!(sms.len(), 2, "{jobs:?}");
    assert!(sms[0].text.starts_with("(1/2) word") && sms[1].text.starts_with("(2/2) word"));
    assert!(sms.iter().all(|s| s.text.chars().count() <= 1600));
    let rejoined: Vec<&str> = sms.iter().flat_map(|s| s.text[6..].split(' ')).collect();
    assert_eq!(rejoined.len(), 340, "split between words, none lost");
    assert_eq!((sms[0].media.len(), sms[1].media.len()), (1, 0), "the media goes with the first part");
    assert_eq!(sms[0].message_id, sms[1].message_id, "one message");
    assert_eq!(
        [jobs[0].job_id.clone(), jobs[1].job_id.clone()],
        [JobId::for_leg(&sms[0].message_id, 0), JobId::for_leg(&sms[0].message_id, 1)]
    );
    let replies = w.replies(0).await;
    assert_eq!((replies.len(), replies[0].legs.len()), (1, 2));
    assert_eq!(replies[0].body, long);
    // Twelve segments in all: the agent is told, and why.
    let told = notices_to(&jobs, 0);
    assert_eq!(told.len(), 1);
    let WhatsAppMessage::Text { body, reply_to } = &told[0] else { panic!("a text") };
    assert_eq!(reply_to.as_ref(), Some(&agent_wamid));
    assert!(
        body.starts_with("ℹ️ This reply costs 12 SMS segments.") && body.ends_with("It goes in 2 numbered messages.")
    );
}

#[tokio::test]
async fn a_reply_costing_more_segments_than_the_lines_warning_is_sent_and_the_agent_told_why() {
    let w = World::new();
    assert_eq!(w.line.segment_warning, 3);
    w.customer_texts(0, "Hi", t0()).await;
    let costly = format!("😀 {}", "a".repeat(200)); // UCS-2: 203 units, 4 segments
    let message = text(0, &format!("#K7 {costly}"));
    let agent_wamid = message.wamid.clone();

    w.receive(message, t0()).await;

    let jobs = w.take();
    assert_eq!(texted(&jobs), [(customer(0), costly.clone())], "still sent");
    assert_eq!(
        notices_to(&jobs, 0),
        [WhatsAppMessage::reply(
            "ℹ️ This reply costs 4 SMS segments. It is sent as Unicode (70 characters per segment instead of 160) \
             because of “😀”.",
            &agent_wamid
        )]
    );

    // Three GSM-7 segments are within the warning: no notice.
    w.receive(text(0, &format!("#K7 {}", "a".repeat(459))), t0() + secs(1)).await;
    let jobs = w.take();
    assert_eq!(sms_of(&jobs).len(), 1);
    assert!(notices_to(&jobs, 0).is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn a_reply_with_nothing_left_to_send_is_answered_with_a_notice() {
    let w = World::new();
    let (_, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;

    let handled = w.receive(swipe(0, "   ", &copy), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Empty });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::nothing_to_send()]);
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}
