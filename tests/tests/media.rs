//! Media between MMS and WhatsApp, over the wire (docs/media.md; issue 5 §6). A customer's
//! MMS part reaches the agents as WhatsApp media by a link of the bridge's own; an agent's
//! picture reaches the customer as an MMS whose `MediaUrl` is such a link. Each link is
//! fetched the way Meta and Twilio fetch it, through the deployed router, and the bridge
//! fetches the media from the provider holding it, with credentials only for that provider.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use bridge_testkit::testing::{
    AGENTS, CUSTOMER, PUBLIC_BASE_URL, TWILIO_ACCOUNT_SID, message_sid, twilio_basic_auth, twilio_inbound_params,
    whatsapp_text,
};
use common::{AGENT_MEDIA_ID, AGENT_PHOTO, Bridge, copies, graph_holds};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PHOTO: &[u8] = b"\xff\xd8\xff\xe0 a customer's photo \xff\xd9";

/// Where Twilio keeps a customer's MMS part (on the Twilio fake).
fn twilio_media_path(n: usize) -> String {
    format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages/MM0000000000000000000000000000000{n}/Media/ME{n:032}")
}

/// Twilio posts an MMS from `CUSTOMER` with `text` and these parts (URL, content type).
async fn customer_sends_mms(bridge: &Bridge, text: &str, parts: &[(String, &str)]) {
    let sid = message_sid();
    let mut params = twilio_inbound_params(&sid, CUSTOMER, text);
    let count = parts.len().to_string();
    params.retain(|(name, _)| *name != "NumMedia");
    params.push(("NumMedia", &count));
    let names: Vec<(String, String)> =
        (0..parts.len()).map(|i| (format!("MediaUrl{i}"), format!("MediaContentType{i}"))).collect();
    for ((url_name, type_name), (url, content_type)) in names.iter().zip(parts) {
        params.push((url_name, url));
        params.push((type_name, content_type));
    }
    assert_eq!(bridge.twilio_posts(&params).await, 200);
}

/// The WhatsApp media messages `agent` received: (type, link, caption).
async fn media_sent_to(bridge: &Bridge, agent: &str) -> Vec<(String, String, String)> {
    let sent = bridge.sent_to(agent).await;
    sent.iter()
        .filter(|m| ["image", "video", "audio", "document"].contains(&m["type"].as_str().unwrap()))
        .map(|m| {
            let kind = m["type"].as_str().unwrap();
            let object = &m[kind];
            (
                kind.to_owned(),
                object["link"].as_str().unwrap().to_owned(),
                object["caption"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A link of the bridge's, as the path and query its router serves.
fn local(link: &str) -> String {
    link.strip_prefix(PUBLIC_BASE_URL).unwrap_or_else(|| panic!("{link} is not on PUBLIC_BASE_URL")).to_owned()
}

/// Twilio keeps the part behind Basic auth (as with "HTTP Basic Authentication for media").
async fn twilio_holds(bridge: &Bridge, media_path: &str, body: &[u8], content_type: &str) {
    Mock::given(method("GET"))
        .and(path(media_path))
        .and(header("authorization", twilio_basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), content_type))
        .mount(&bridge.providers.twilio)
        .await;
}

/// Requests a fake received whose path starts with `prefix`.
async fn requests_to(server: &MockServer, prefix: &str) -> Vec<wiremock::Request> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.into_iter().filter(|r| r.url.path().starts_with(prefix)).collect()
}

// ---------------------------------------------------------------------------------------------
// customer → agents (docs/media.md)

#[tokio::test]
async fn a_customers_photo_reaches_every_agent_as_whatsapp_media_by_a_signed_link() {
    let bridge = Bridge::start().await;
    let photo = format!("{}{}", bridge.providers.twilio.uri(), twilio_media_path(1));
    let vcard = format!("{}{}", bridge.providers.twilio.uri(), twilio_media_path(2));
    twilio_holds(&bridge, &twilio_media_path(1), PHOTO, "image/jpeg").await;
    // Agents see free-form messages only inside their window: open agent 0's.
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    bridge.run_worker().await;

    customer_sends_mms(&bridge, "Here's the damage", &[(photo.clone(), "image/jpeg"), (vcard, "text/vcard")]).await;
    bridge.run_worker().await;

    let handle = bridge.conversation(CUSTOMER).await.handle.to_string();
    let copy = copies(&bridge.sent_to(AGENTS[0]).await);
    assert_eq!(copy.len(), 1, "{copy:?}");
    assert!(copy[0].contains("Here's the damage\n[image 1/1]\n[attachment: text/vcard]"), "{copy:?}");
    let media = media_sent_to(&bridge, AGENTS[0]).await;
    assert_eq!(media.len(), 1, "the vCard is named in the copy, not sent: {media:?}");
    let (kind, link, caption) = &media[0];
    assert_eq!(kind, "image");
    assert_eq!(caption, &format!("{handle} · +1 415-555-0134 (1/1)"));
    assert!(link.starts_with(&format!("{PUBLIC_BASE_URL}/media/sms/")), "{link}");
    assert!(
        !link.contains("twilio") && !link.contains(TWILIO_ACCOUNT_SID),
        "the link hides the provider's URL: {link}"
    );

    // Meta fetches the link: the bridge fetches the part from Twilio with Basic auth.
    let (status, content_type, body) = bridge.get(&local(link)).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(body, PHOTO);
    assert_eq!(requests_to(&bridge.providers.twilio, &twilio_media_path(1)).await.len(), 1);

    // Agent 1's window is closed: the template copy names the photo (no media outside the window).
    let copy = copies(&bridge.sent_to(AGENTS[1]).await);
    assert!(copy[0].contains("Here's the damage [image 1/1] [attachment: text/vcard]"), "{copy:?}");
    assert!(media_sent_to(&bridge, AGENTS[1]).await.is_empty());
    // The thread keeps the message; nothing of the media send failed the copy.
    let thread = bridge.thread(CUSTOMER).await;
    assert!(thread[0].legs.iter().all(|leg| leg.state == shared::domain::LegState::Sent), "{:?}", thread[0].legs);
}

#[tokio::test]
async fn links_that_are_forged_altered_or_expired_fetch_nothing() {
    let bridge = Bridge::start().await;
    let photo = format!("{}{}", bridge.providers.twilio.uri(), twilio_media_path(1));
    twilio_holds(&bridge, &twilio_media_path(1), PHOTO, "image/jpeg").await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    customer_sends_mms(&bridge, "", &[(photo, "image/png")]).await;
    bridge.run_worker().await;
    let media = media_sent_to(&bridge, AGENTS[0]).await;
    let link = local(&media[0].1);
    let (path_part, query) = link.split_once('?').unwrap();
    let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
    let exp = query.split('&').find_map(|p| p.strip_prefix("exp=")).unwrap();

    let mut flipped = sig.to_owned();
    flipped.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    let cases = [
        (format!("{path_part}?exp={exp}&sig={flipped}"), 403),
        (format!("{path_part}?exp={}&sig={sig}", exp.parse::<i64>().unwrap() + 3600), 403),
        (format!("{path_part}?exp={exp}"), 403),
        (path_part.to_owned(), 403),
        (format!("{}?{query}", path_part.replace("/media/sms/", "/media/wa/")), 403),
        (format!("{}?{query}", path_part.replace("/media/sms/", "/media/x/")), 403),
        // Signed by the bridge's key, but expired an hour ago.
        (expired_link(&bridge, &twilio_media_path(1)), 410),
    ];
    for (request, expected) in cases {
        assert_eq!(bridge.get(&request).await.0, expected, "{request}");
    }
    assert!(requests_to(&bridge.providers.twilio, &twilio_media_path(1)).await.is_empty(), "nothing was fetched");
    // The genuine link still works.
    assert_eq!(bridge.get(&link).await.0, 200);
}

fn expired_link(bridge: &Bridge, media_path: &str) -> String {
    use shared::domain::media::{MediaSource, MediaUrlKey};
    let key = MediaUrlKey::derive(&bridge_testkit::testing::TWILIO_AUTH_TOKEN.to_owned().into());
    let url = format!("{}{media_path}", bridge.providers.twilio.uri());
    let expired = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    local(&key.sign(PUBLIC_BASE_URL, MediaSource::Sms, &url, expired))
}

#[tokio::test]
async fn credentials_go_only_to_the_providers_hosts_and_not_across_a_redirect() {
    let bridge = Bridge::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PHOTO.to_vec(), "image/jpeg"))
        .mount(&elsewhere)
        .await;
    // Twilio's own media answers with a redirect to short-lived storage, as the real one does.
    let storage_path = "/storage/ME1.jpg";
    Mock::given(method("GET"))
        .and(path(twilio_media_path(1)))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}{storage_path}", elsewhere.uri())),
        )
        .mount(&bridge.providers.twilio)
        .await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    let at_twilio = format!("{}{}", bridge.providers.twilio.uri(), twilio_media_path(1));
    // An MMS part that names another host (Twilio never sends one; the bridge must not trust it).
    let foreign = format!("{}/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Media/ME2", elsewhere.uri());
    customer_sends_mms(&bridge, "two photos", &[(at_twilio, "image/jpeg"), (foreign, "image/jpeg")]).await;
    bridge.run_worker().await;
    let media = media_sent_to(&bridge, AGENTS[0]).await;
    assert_eq!(media.len(), 2, "{media:?}");

    let (status, _, body) = bridge.get(&local(&media[0].1)).await;
    assert_eq!((status, body.as_slice()), (200, PHOTO));
    let twilio_request = &requests_to(&bridge.providers.twilio, &twilio_media_path(1)).await[0];
    assert_eq!(twilio_request.headers.get("authorization").unwrap().to_str().unwrap(), twilio_basic_auth());
    let storage_requests = requests_to(&elsewhere, storage_path).await;
    assert_eq!(storage_requests.len(), 1);
    assert!(storage_requests[0].headers.get("authorization").is_none(), "credentials followed the redirect");

    assert_eq!(bridge.get(&local(&media[1].1)).await.0, 403);
    assert!(requests_to(&elsewhere, "/2010-04-01").await.is_empty(), "the foreign host was never asked");
}

#[tokio::test]
async fn unsupported_types_and_oversize_media_never_fail_the_conversation() {
    let bridge = Bridge::start().await;
    let big_path = twilio_media_path(3);
    let big = vec![0u8; shared::adapters::media::MAX_MEDIA_BYTES + 1];
    twilio_holds(&bridge, &big_path, &big, "video/mp4").await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    let base = bridge.providers.twilio.uri();
    let parts = [
        (format!("{base}{}", twilio_media_path(1)), "image/gif"),
        (format!("{base}{}", twilio_media_path(2)), "application/zip"),
        (format!("{base}{big_path}"), "video/mp4"),
    ];
    customer_sends_mms(&bridge, "", &parts).await;
    bridge.run_worker().await;

    let copy = copies(&bridge.sent_to(AGENTS[0]).await);
    assert!(copy[0].ends_with("[video 1/1]\n[attachment: image/gif]\n[attachment: application/zip]"), "{copy:?}");
    let media = media_sent_to(&bridge, AGENTS[0]).await;
    assert_eq!(media.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(), ["video"]);
    assert_eq!(bridge.get(&local(&media[0].1)).await.0, 413, "too large for a Lambda answer: refused, not truncated");
    assert!(bridge.thread(CUSTOMER).await[0].legs.iter().all(|leg| leg.state == shared::domain::LegState::Sent));
}

#[tokio::test]
async fn with_media_relay_off_the_copy_names_each_part() {
    let bridge = Bridge::with_line(json!({ "media_relay": false })).await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    let photo = format!("{}{}", bridge.providers.twilio.uri(), twilio_media_path(1));
    customer_sends_mms(&bridge, "see photo", &[(photo, "image/jpeg")]).await;
    bridge.run_worker().await;
    let copy = copies(&bridge.sent_to(AGENTS[0]).await);
    assert!(copy[0].contains("see photo\n[attachment: image/jpeg]"), "{copy:?}");
    assert!(media_sent_to(&bridge, AGENTS[0]).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// agent → customer (docs/media.md)

fn agent_image(from: &str, caption: Option<&str>, context: Option<&str>) -> Value {
    let mut message = whatsapp_text(from, "", context);
    message["type"] = json!("image");
    message.as_object_mut().unwrap().remove("text");
    message["image"] = json!({ "id": AGENT_MEDIA_ID, "mime_type": "image/png", "sha256": "abc" });
    if let Some(caption) = caption {
        message["image"]["caption"] = json!(caption);
    }
    message
}

#[tokio::test]
async fn an_agents_picture_reaches_the_customer_as_mms_fetched_from_the_graph_api() {
    let bridge = Bridge::start().await;
    let download = format!("{}/whatsapp_business/attachments/?mid={AGENT_MEDIA_ID}", bridge.providers.graph.uri());
    graph_holds(&bridge, AGENT_MEDIA_ID, &download).await;
    bridge.customer_texts("What does it look like?").await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], "What does it look like?").await;

    bridge.agent_writes(agent_image(AGENTS[0], Some("*This* one"), Some(&copy))).await;
    bridge.run_worker().await;

    let sent = bridge.providers.sms_sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["To"], CUSTOMER);
    assert_eq!(sent[0]["Body"], "This one", "the caption is the text, formatting stripped");
    let link = &sent[0]["MediaUrl"];
    assert!(link.starts_with(&format!("{PUBLIC_BASE_URL}/media/wa/")), "{link}");

    // Twilio fetches the link: the bridge asks the Graph API for the media, then downloads it.
    let (status, content_type, body) = bridge.get(&local(link)).await;
    assert_eq!((status, content_type.as_str(), body.as_slice()), (200, "image/png", AGENT_PHOTO));
    let thread = bridge.thread(CUSTOMER).await;
    assert_eq!(thread.last().unwrap().body, "This one");
}

#[tokio::test]
async fn a_picture_without_caption_goes_alone_and_a_foreign_download_url_gets_no_token() {
    let bridge = Bridge::start().await;
    let elsewhere = MockServer::start().await;
    graph_holds(&bridge, AGENT_MEDIA_ID, &format!("{}/whatsapp_business/attachments/?mid=1", elsewhere.uri())).await;
    bridge.customer_texts("Photo please").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(CUSTOMER).await.handle.to_string();
    // A bare handle as the caption addresses the picture and sends no text.
    bridge.agent_writes(agent_image(AGENTS[0], Some(&handle), None)).await;
    bridge.run_worker().await;

    let sent = bridge.providers.sms_sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!sent[0].contains_key("Body"), "media alone: no empty text part {sent:?}");
    assert_eq!(bridge.get(&local(&sent[0]["MediaUrl"])).await.0, 403);
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the token never left Meta's hosts");
}

#[tokio::test]
async fn media_the_bridge_cant_send_is_refused_with_a_reason_and_nothing_goes_out() {
    let bridge = Bridge::start().await;
    bridge.customer_texts("Hi").await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], "Hi").await;
    let notices_before = bridge.sent_to(AGENTS[1]).await.len();

    // No conversation named: nothing can wait for a pick as media.
    bridge.agent_writes(agent_image(AGENTS[1], Some("here"), None)).await;
    // A sticker is not MMS material.
    let mut sticker = agent_image(AGENTS[1], None, Some(&copy));
    sticker["type"] = json!("sticker");
    sticker["sticker"] = sticker["image"].take();
    bridge.agent_writes(sticker).await;
    bridge.run_worker().await;

    assert!(bridge.providers.sms_sent().await.is_empty());
    let told: Vec<String> = bridge.sent_to(AGENTS[1]).await[notices_before..]
        .iter()
        .map(|m| m["text"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[0].starts_with("Which customer is this for?"), "{told:?}");
    assert!(told[1].contains("sticker can't be sent by SMS"), "{told:?}");
}

#[tokio::test]
async fn with_media_relay_off_an_agents_picture_is_not_sent_and_the_agent_is_told() {
    let bridge = Bridge::with_line(json!({ "media_relay": false })).await;
    bridge.customer_texts("Hi").await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], "Hi").await;
    bridge.agent_writes(agent_image(AGENTS[0], Some("look"), Some(&copy))).await;
    bridge.run_worker().await;
    assert!(bridge.providers.sms_sent().await.is_empty());
    let last = bridge.sent_to(AGENTS[0]).await.pop().unwrap();
    assert!(last["text"]["body"].as_str().unwrap().contains("sends customers text only"), "{last}");
}
