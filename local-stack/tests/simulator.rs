//! The provider simulator over the wire (issue 6): the local stack as a newcomer starts it,
//! driven through the page's JSON API (what the two phones do) and the providers' own
//! endpoints. The failure modes show the delivery guarantees; the APIs refuse what Twilio and
//! Meta refuse, with their codes.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use base64::Engine;
use serde_json::{Value, json};

use common::{LocalStack, Page, until};

const CUSTOMER: &str = "+14155550134";
const LANDLINE: &str = "+14155550177";
const ANA: &str = "14155550111";
const BEN: &str = "14155550112";
const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// `--fail-rate`, `--fail-number` and `--closed-window` at once: everything still arrives
/// exactly once, the landline's failure reaches the agent with its code, and the agent whose
/// window never opens gets the template after WhatsApp refuses free-form text with 131047.
#[tokio::test]
async fn failure_modes_show_the_delivery_guarantees_at_work() {
    // A seed whose first roll fails: at least one send is refused, whatever the timing.
    let seed = (0..).find(|seed| fastrand::Rng::with_seed(*seed).f64() < 0.3).unwrap().to_string();
    let mut stack = LocalStack::start(
        &[
            "--fail-rate",
            "0.3",
            "--fail-seed",
            &seed,
            "--fail-number",
            &format!("{LANDLINE}=30006"),
            "--closed-window",
            BEN,
        ],
        &[("RETRY_BASE_SECONDS", "1"), ("RETRY_MAX_SECONDS", "2")],
    );
    let page = Page::new(&stack);
    let settings = page.state().await["settings"].clone();
    assert_eq!(settings["fail_rate"], 0.3);
    assert_eq!(settings["failing_numbers"][LANDLINE], 30006);
    assert_eq!(settings["closed_windows"], json!([BEN]));

    // Neither agent has written yet: both get the template, through random failures.
    page.customer_texts(CUSTOMER, "Is my bike ready?").await;
    let (ana_copy, _) = page.delivered_copy(ANA, "Is my bike ready?").await;
    let (ben_copy, _) = page.delivered_copy(BEN, "Is my bike ready?").await;
    assert_eq!((ana_copy["kind"].as_str(), ben_copy["kind"].as_str()), (Some("template"), Some("template")));

    // Ana swipe-replies: one SMS reaches the customer, however often Twilio answered 503/429,
    // and the bridge marks her reply read (blue ticks) once it is delivered.
    let reply = page.agent_sends(ANA, "Yes, ready at 9!", ana_copy["id"].as_str()).await;
    let sms = page.sms_to(CUSTOMER, "Yes, ready at 9!").await;
    assert_eq!(sms.len(), 1, "sent once: {sms:?}");
    assert_eq!(sms[0]["status"], "delivered");
    page.marked_read(ANA, &reply).await;

    // Ben writes: the bridge thinks his window is open, WhatsApp says it is not (131047).
    let handle = page.handle_of(CUSTOMER).await;
    page.agent_sends(BEN, &format!("{handle} I'll check"), None).await;
    page.sms_to(CUSTOMER, "I'll check").await;
    page.customer_texts(CUSTOMER, "Thanks, see you").await;
    let (copy, copies) = page.delivered_copy(BEN, "Thanks, see you").await;
    assert_eq!(copy["kind"], "template", "{copies:?}");
    let refused: Vec<&Value> = copies.iter().filter(|m| m["status"] == "failed").collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|m| m["error"]["code"] == 131047 && m["kind"] != "template"),
        "free-form first, refused with 131047: {copies:?}"
    );
    // Ana's window is open (she wrote): free-form with buttons, once.
    let (ana_copy, ana_copies) = page.delivered_copy(ANA, "Thanks, see you").await;
    assert_eq!(ana_copy["kind"], "buttons");
    assert_eq!(ana_copies.len(), 1, "{ana_copies:?}");

    // A landline: Twilio accepts, then reports undelivered 30006; Ana is told why.
    page.customer_texts(LANDLINE, "Call me back?").await;
    let (landline_copy, _) = page.delivered_copy(ANA, "Call me back?").await;
    let reply = page.agent_sends(ANA, "Calling you now", landline_copy["id"].as_str()).await;
    let sms = page.sms_to(LANDLINE, "Calling you now").await;
    assert_eq!((sms.len(), &sms[0]["status"], &sms[0]["error_code"]), (1, &json!("undelivered"), &json!(30006)));
    let notice = until("Ana's ❌ notice", 60, async || {
        let state = page.state().await;
        state["whatsapp"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["agent"] == ANA && m["context"] == reply.as_str() && m.to_string().contains("30006"))
            .cloned()
    })
    .await;
    assert!(notice["text"].as_str().unwrap().contains("not delivered"), "{notice}");

    let injected = page.state().await["failures_injected"].as_u64().unwrap();
    assert!(injected > 0, "the simulator failed sends at random, and the worker retried them");

    // Nothing twice: each customer text reached each agent's phone once (delivered).
    for text in ["Is my bike ready?", "Thanks, see you", "Call me back?"] {
        for agent in [ANA, BEN] {
            let delivered: Vec<Value> = page
                .to_agent(agent, text)
                .await
                .into_iter()
                .filter(|m| m["status"] == "delivered" || m["status"] == "read")
                .collect();
            assert_eq!(delivered.len(), 1, "{agent} {text}: {delivered:?}");
        }
    }
    stack.stop();
}

/// `--late-answer-rate` and `--aws-outage`: every provider send is accepted and answered past
/// the bridge's timeout, and SQS refuses the functions' calls while a text arrives. The text
/// is recorded and swept onto the queue; each uncertain send is settled from the simulator's
/// status reports (WhatsApp echoes `biz_opaque_callback_data`, Twilio calls back `?job=`) or
/// its Messages list, so each copy and the reply still arrive once.
#[tokio::test]
async fn late_answers_and_an_sqs_outage_lose_nothing_and_send_nothing_twice() {
    let mut stack = LocalStack::start(
        &["--late-answer-rate", "1", "--aws-outage", "sqs=3"],
        &[
            ("PROVIDER_TIMEOUT_SECONDS", "1"),
            ("RECONCILE_WAIT_SECONDS", "3"),
            ("RETRY_BASE_SECONDS", "1"),
            // The webhook gives up on SQS after 2 s (6 s deployed), before the outage ends.
            ("WEBHOOK_RETRY_SECONDS", "2"),
        ],
    );
    let page = Page::new(&stack);
    // During the outage: the webhook keeps trying SQS, then answers 200 with the text recorded.
    page.customer_texts(CUSTOMER, "Is my bike ready?").await;
    let (copy, _) = page.delivered_copy(ANA, "Is my bike ready?").await;
    page.delivered_copy(BEN, "Is my bike ready?").await;
    let reply = page.agent_sends(ANA, "Yes, ready at 9!", copy["id"].as_str()).await;
    let sms = page.sms_to(CUSTOMER, "Yes, ready at 9!").await;
    assert_eq!(sms.len(), 1, "sent once: {sms:?}");
    page.marked_read(ANA, &reply).await;
    // Give any wrongly repeated send time to show up (past the reconcile wait), then count.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for agent in [ANA, BEN] {
        let copies = page.to_agent(agent, "Is my bike ready?").await;
        assert_eq!(copies.len(), 1, "{agent}: {copies:?}");
    }
    assert_eq!(page.sms_to(CUSTOMER, "Yes, ready at 9!").await.len(), 1);
    // The receipt is a read mark (answered late too), never a ✅ message in its place.
    assert!(page.to_agent(ANA, "✅").await.is_empty());
    let injected = page.state().await["failures_injected"].as_u64().unwrap();
    assert!(injected >= 3, "every send was answered late: {injected}");
    stack.stop();
}

/// Twilio's and Meta's APIs refuse what the real ones refuse, with their codes and shapes;
/// Twilio handles STOP before the bridge does and refuses to text an opted-out number.
#[tokio::test]
async fn the_provider_apis_refuse_what_the_real_ones_refuse() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    let http = reqwest::Client::new();
    let twilio = format!("{}/_sim/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", stack.base());
    let graph = format!("{}/_sim/graph/v26.0/106540352242922/messages", stack.base());
    let sms = async |auth: Option<(&str, &str)>, form: &[(&str, &str)]| -> (u16, Value) {
        let mut request = http.post(&twilio).form(form);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };
    let whatsapp = async |url: &str, token: &str, body: Value| -> (u16, Value) {
        let response = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };
    let creds = Some((ACCOUNT_SID, "local-twilio-auth-token"));
    let token = "local-meta-access-token";

    let (status, body) = sms(None, &[("To", CUSTOMER), ("From", "+14155550100"), ("Body", "hi")]).await;
    assert_eq!((status, &body["code"], &body["status"]), (401, &json!(20003), &json!(401)));
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/20003");
    let (status, body) = sms(creds, &[("From", "+14155550100"), ("Body", "hi")]).await;
    assert_eq!((status, &body["code"]), (400, &json!(21604)));
    let (status, body) = sms(creds, &[("To", "0800 FLOWERS"), ("From", "+14155550100"), ("Body", "hi")]).await;
    assert_eq!((status, &body["code"]), (400, &json!(21211)));
    let (status, body) = sms(creds, &[("To", CUSTOMER), ("From", "+14155550199"), ("Body", "hi")]).await;
    assert_eq!((status, &body["code"]), (400, &json!(21606)), "not the account's number");
    let (status, body) = sms(creds, &[("To", CUSTOMER), ("From", "+14155550100"), ("Body", &"x".repeat(1601))]).await;
    assert_eq!((status, &body["code"]), (400, &json!(21617)));
    let (status, body) = sms(creds, &[("To", CUSTOMER), ("From", "+14155550100"), ("Body", "hi")]).await;
    assert_eq!(
        (status, &body["status"], body["sid"].as_str().map(|s| s.starts_with("SM"))),
        (201, &json!("queued"), Some(true))
    );

    let text = json!({ "messaging_product": "whatsapp", "to": ANA, "type": "text", "text": { "body": "hi" } });
    let (status, body) = whatsapp(&graph, "wrong-token", text.clone()).await;
    assert_eq!((status, &body["error"]["code"], &body["error"]["type"]), (401, &json!(190), &json!("OAuthException")));
    let other_number = graph.replace("106540352242922", "999999999999999");
    assert_eq!(whatsapp(&other_number, token, text.clone()).await.1["error"]["code"], 100);
    let buttons = json!({ "messaging_product": "whatsapp", "to": ANA, "type": "interactive", "interactive": {
        "type": "button", "body": { "text": "Pick one" },
        "action": { "buttons": [{ "type": "reply", "reply": { "id": "a", "title": "A title of 21 chars.." } }] } } });
    let (status, body) = whatsapp(&graph, token, buttons).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(131009)), "{body}");
    assert!(body["error"]["error_data"]["details"].as_str().unwrap().contains("title"), "{body}");
    let template = json!({ "messaging_product": "whatsapp", "to": ANA, "type": "template", "template": {
        "name": "not_approved", "language": { "code": "en" } } });
    assert_eq!(whatsapp(&graph, token, template).await.1["error"]["code"], 132001);
    let (status, body) = whatsapp(&graph, token, text).await;
    assert!(status == 200 && body["messages"][0]["id"].as_str().unwrap().starts_with("wamid."), "{body}");

    // Media: the customer's MMS part is Twilio's, behind Basic auth; Meta's, behind the token.
    let picture = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\n not really a png");
    let (status, answer) = page
        .post(
            "/_sim/customer/send",
            json!({ "from": CUSTOMER, "text": "", "media": [{ "content_type": "image/png", "data_base64": picture }] }),
        )
        .await;
    assert_eq!((status, answer["webhook_status"].as_u64()), (200, Some(200)), "{answer}");
    let mms_sid = answer["sid"].as_str().unwrap();
    let media_url = until("the MMS part's id", 10, async || {
        let state = page.state().await;
        let sms = state["sms"].as_array().unwrap().iter().find(|m| m["id"] == mms_sid).cloned()?;
        sms["media"][0]["preview_url"].as_str().map(|p| p.trim_start_matches("/_sim/media/").to_owned())
    })
    .await;
    let twilio_media =
        format!("{}/_sim/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{mms_sid}/Media/{media_url}", stack.base());
    assert_eq!(http.get(&twilio_media).send().await.unwrap().status(), 401);
    let fetched =
        http.get(&twilio_media).basic_auth(ACCOUNT_SID, Some("local-twilio-auth-token")).send().await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "image/png");

    // Pictures both ways, through the bridge's signed links: Ana answers the copy with a photo
    // (the customer's phone gets it as MMS), then the customer's next photo reaches her as
    // WhatsApp media (her window is open now).
    let (copy, _) = page.delivered_copy(ANA, "image 1/1").await;
    let photo = b"\xff\xd8\xff\xe0 a photo from Ana".to_vec();
    let (status, answer) = page
        .post(
            "/_sim/agent/media",
            json!({ "from": ANA, "context": copy["id"], "caption": "Here it is", "content_type": "image/jpeg",
                    "name": "bike.jpg", "data_base64": base64::engine::general_purpose::STANDARD.encode(&photo) }),
        )
        .await;
    assert_eq!((status, answer["webhook_status"].as_u64()), (200, Some(200)), "{answer}");
    let mms = page.sms_to(CUSTOMER, "Here it is").await;
    assert_eq!(page.media_bytes(&mms[0]["media"][0]).await, photo);
    let second = b"\x89PNG\r\n\x1a\n the customer's second photo".to_vec();
    let (status, _) = page
        .post(
            "/_sim/customer/send",
            json!({ "from": CUSTOMER, "text": "And this?", "media": [{ "content_type": "image/png",
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(&second) }] }),
        )
        .await;
    assert_eq!(status, 200);
    let image = until("the photo on Ana's phone", 30, async || {
        let state = page.state().await;
        state["whatsapp"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["agent"] == ANA && m["kind"] == "image" && m["status"] == "delivered")
            .cloned()
    })
    .await;
    assert_eq!(page.media_bytes(&image["media"]).await, second);

    // The page's own API says what is wrong.
    let (status, answer) = page.post("/_sim/customer/send", json!({ "from": "12345", "text": "hi" })).await;
    assert!(status == 400 && answer["ok"] == false && answer["error"].as_str().unwrap().contains("from"), "{answer}");
    let (status, answer) = page.post("/_sim/agent/send", json!({ "from": ANA, "text": "  " })).await;
    assert!(status == 400 && answer["error"] == "the message is empty", "{answer}");
    let (status, _) = page.post("/_sim/agent/send", json!({ "text": "no sender" })).await;
    assert_eq!(status, 400);

    // STOP: Twilio confirms it and opts the number out; the bridge learns it from the same
    // webhook and refuses the agent's reply itself; Twilio would refuse it too (21610).
    page.customer_texts(CUSTOMER, "Stop").await;
    let confirmation = until("Twilio's STOP confirmation", 10, async || {
        let state = page.state().await;
        state["sms"].as_array().unwrap().iter().find(|m| m["sender"] == "twilio").cloned()
    })
    .await;
    assert!(confirmation["body"].as_str().unwrap().contains("unsubscribed"));
    assert_eq!(page.state().await["opted_out"], json!([CUSTOMER]));
    let (status, body) = sms(creds, &[("To", CUSTOMER), ("From", "+14155550100"), ("Body", "hi")]).await;
    assert_eq!((status, &body["code"]), (400, &json!(21610)));
    let thread = page.get(&format!("/_sim/thread?customer={}", CUSTOMER.replace('+', "%2B"))).await;
    assert_eq!(thread["opted_out"], true, "{thread}");

    // The reads `bridge-ops redrive` checks the credentials with, each texting nobody.
    let account = format!("{}/_sim/twilio/2010-04-01/Accounts/{ACCOUNT_SID}.json", stack.base());
    let read = async |request: reqwest::RequestBuilder| -> (u16, Value) {
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };
    let (status, body) = read(http.get(&account).basic_auth(ACCOUNT_SID, Some("local-twilio-auth-token"))).await;
    assert_eq!((status, &body["status"]), (200, &json!("active")));
    let (status, body) = read(http.get(&account).basic_auth(ACCOUNT_SID, Some("wrong"))).await;
    assert_eq!((status, &body["code"]), (401, &json!(20003)));
    let number = format!("{}/_sim/graph/v26.0/106540352242922?fields=id", stack.base());
    let (status, body) = read(http.get(&number).bearer_auth(token)).await;
    assert_eq!((status, &body["id"]), (200, &json!("106540352242922")));
    let (status, body) = read(http.get(&number).bearer_auth("revoked")).await;
    assert_eq!((status, &body["error"]["code"]), (401, &json!(190)));
    stack.stop();
}

/// An agent who adopts a WhatsApp username (2026): every webhook names them by their
/// business-scoped user id, and with the switch on, not by number at all. Having written once
/// with both, Ana is still recognised by her user id alone: her `#handle` reply reaches the
/// customer, and the statuses of the bridge's sends to her, which name her by user id only,
/// are still applied to the stored thread.
#[tokio::test]
async fn an_agent_who_hides_their_number_is_recognised_by_their_user_id() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    let ana = page.agent(ANA).await;
    let user_id = ana["user_id"].as_str().unwrap();
    assert!(user_id.starts_with("US.") && !user_id.contains(&ANA[1..]), "{ana}");
    assert_eq!((&ana["username"], &ana["number_hidden"]), (&json!("@ana"), &json!(false)));

    // Ana answers once with her number shown: her message carries her number and user id.
    page.customer_texts(CUSTOMER, "Is my bike ready?").await;
    let (copy, _) = page.delivered_copy(ANA, "Is my bike ready?").await;
    page.agent_sends(ANA, "Yes, ready at 9!", copy["id"].as_str()).await;
    page.sms_to(CUSTOMER, "Yes, ready at 9!").await;

    page.hide_number(ANA, true).await;
    assert_eq!(page.agent(ANA).await["number_hidden"], true);
    let handle = page.handle_of(CUSTOMER).await;
    page.agent_sends(ANA, &format!("{handle} See you then"), None).await;
    let sms = page.sms_to(CUSTOMER, "See you then").await;
    assert_eq!((sms.len(), &sms[0]["status"]), (1, &json!("delivered")), "{sms:?}");

    // A copy to Ana now: its statuses name her by user id only, and the bridge applies them.
    page.customer_texts(CUSTOMER, "Great, thanks").await;
    let (copy, _) = page.delivered_copy(ANA, "Great, thanks").await;
    let path = format!("/_sim/thread?customer={}", CUSTOMER.replace('+', "%2B"));
    until("the copy's leg delivered in the stored thread", 30, async || {
        let thread = page.get(&path).await;
        let legs =
            thread["messages"].as_array()?.iter().flat_map(|m| m["legs"].as_array().cloned().unwrap_or_default());
        legs.into_iter().find(|leg| leg["provider_id"] == copy["id"] && leg["status"] == "delivered")
    })
    .await;

    page.hide_number(ANA, false).await;
    assert_eq!(page.agent(ANA).await["number_hidden"], false);
    let (status, answer) =
        page.post("/_sim/agent/username", json!({ "agent": "14155550199", "number_hidden": true })).await;
    assert!(status == 400 && answer["error"].as_str().unwrap().contains("not an agent"), "{answer}");
    stack.stop();
}

/// Meta's "Mark messages as read" on the simulated Cloud API: the business marks an agent's
/// message read, which marks her earlier messages read too; Graph answers `{"success": true}`
/// and nothing is sent (no wamid). An id that is not a message the number received is refused
/// with 131009, as Meta documents.
#[tokio::test]
async fn the_business_marks_an_agents_message_read_without_sending_anything() {
    let mut stack = LocalStack::start(&[], &[]);
    let page = Page::new(&stack);
    let http = reqwest::Client::new();
    let graph = format!("{}/_sim/graph/v26.0/106540352242922/messages", stack.base());
    let mark = async |token: &str, message_id: &str| -> (u16, Value) {
        let body = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id });
        let response = http.post(&graph).bearer_auth(token).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };
    let token = "local-meta-access-token";

    let first = page.agent_sends(BEN, "/help", None).await;
    let second = page.agent_sends(BEN, "/list", None).await;
    let (status, answer) = mark(token, &second).await;
    assert_eq!((status, &answer), (200, &json!({ "success": true })));
    assert_eq!(page.agents_message(BEN, &second).await["read_by_business"], "marked");
    assert_eq!(page.agents_message(BEN, &first).await["read_by_business"], "earlier", "earlier messages are read too");

    let (status, answer) = mark(token, "wamid.HBgLnot-a-message").await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!(131009)), "{answer}");
    let bridge_answer = until("the bridge's answer to /help", 30, async || {
        let state = page.state().await;
        let messages = state["whatsapp"].as_array()?.clone();
        messages.into_iter().find(|m| m["agent"] == BEN && m["direction"] == "to_agent")
    })
    .await;
    let (status, answer) = mark(token, bridge_answer["id"].as_str().unwrap()).await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!(131009)), "the business's own message: {answer}");
    assert_eq!(mark("wrong-token", &second).await.1["error"]["code"], 190);
    stack.stop();
}
