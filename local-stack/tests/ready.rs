//! The README's first command, as a newcomer runs it: the binary starts its own emulator,
//! prints `ready`, takes a Twilio-signed SMS on its port, delivers it to the Graph API at
//! `GRAPH_API_BASE`, and stops everything on Ctrl-C.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use shared::adapters::twilio::{compute_signature, encode_form};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn starts_relays_a_signed_sms_and_stops_on_ctrl_c() {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/106540352242922/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": "wamid.local-test" }] })))
        .mount(&graph)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let mut stack = Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--port", &port.to_string()])
        .env("GRAPH_API_BASE", graph.uri())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("BRIDGE_LINES")
        .env_remove("BRIDGE_LINES_FILE")
        .env_remove("PUBLIC_BASE_URL")
        .env_remove("TWILIO_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = stack.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = ready_tx.send(line.clone());
            }
        }
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(120)).expect("prints ready");
    assert!(ready.contains(&format!("http://127.0.0.1:{port}")), "{ready}");

    // Signed over PUBLIC_BASE_URL + path with the local default token, as the README says.
    let params = [
        ("MessageSid", "SMcccccccccccccccccccccccccccccccc"),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", "+14155550134"),
        ("To", "+14155550100"),
        ("Body", "Hello from the README"),
        ("NumMedia", "0"),
    ];
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let url = format!("http://127.0.0.1:{port}/sms/inbound");
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            compute_signature("local-twilio-auth-token", &url, &owned),
        )
        .body(encode_form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered = Vec::new();
    while Instant::now() < deadline {
        delivered = graph.received_requests().await.unwrap_or_default();
        if delivered.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut agents: Vec<String> = delivered
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["to"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    agents.sort();
    assert_eq!(
        agents,
        ["14155550111", "14155550112"],
        "each agent of the sample line, once"
    );
    assert!(String::from_utf8_lossy(&delivered[0].body).contains("Hello from the README"));

    // Ctrl-C: the stack (and the emulator it started) stop.
    let interrupted = Command::new("kill")
        .args(["-INT", &stack.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = stack.try_wait().unwrap() {
            assert!(status.success(), "exits cleanly: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}
