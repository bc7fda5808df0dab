//! The Lambda's cold start refuses a bad configuration and names the field at fault.

use bridge_testkit::testing::{cold_start, lines_with};

#[test]
fn invalid_lines_fail_the_cold_start_with_the_field_named() {
    let lines = lines_with("sms_number", "4155550100");
    let (ok, printed) = cold_start(
        env!("CARGO_BIN_EXE_sms-webhook"),
        &[
            ("BRIDGE_LINES", &lines),
            ("TABLE_NAME", "t"),
            ("DELIVERY_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/q"),
            ("PUBLIC_BASE_URL", "https://example.com"),
            ("TWILIO_AUTH_TOKEN", "x"),
        ],
    );
    assert!(!ok, "started with invalid lines");
    assert!(printed.contains("BRIDGE_LINES[0].sms_number"), "{printed}");
}

#[test]
fn a_missing_auth_token_fails_the_cold_start() {
    let lines = bridge_testkit::testing::lines_json();
    let (ok, printed) = cold_start(
        env!("CARGO_BIN_EXE_sms-webhook"),
        &[
            ("BRIDGE_LINES", &lines),
            ("TABLE_NAME", "t"),
            ("DELIVERY_QUEUE_URL", "q"),
            ("PUBLIC_BASE_URL", "https://example.com"),
        ],
    );
    assert!(!ok);
    assert!(printed.contains("TWILIO_AUTH_TOKEN") && !printed.contains("panicked"), "{printed}");
}

/// In AWS the auth token is an SSM SecureString named by `TWILIO_AUTH_TOKEN_PARAM`: read at
/// cold start (here from the emulator), or the start fails naming the variable.
#[tokio::test]
async fn the_auth_token_comes_from_ssm_when_named_by_its_param() {
    let endpoint = bridge_testkit::testing::emulator_endpoint();
    let sdk = shared::aws::emulator_sdk_config(endpoint).await;
    let name = format!("/bridge-{}/twilio-auth-token", uuid::Uuid::new_v4().simple());
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .value("from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let lines = bridge_testkit::testing::lines_json();
    let start = |parameter: &str| {
        cold_start(
            env!("CARGO_BIN_EXE_sms-webhook"),
            &[
                ("BRIDGE_LINES", &lines),
                ("TABLE_NAME", "t"),
                ("DELIVERY_QUEUE_URL", "q"),
                ("PUBLIC_BASE_URL", "https://example.com"),
                ("TWILIO_AUTH_TOKEN_PARAM", parameter),
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
        )
    };
    // Configured: it goes on to ask the Lambda runtime API for events, which isn't there.
    let (ok, printed) = start(&name);
    assert!(!ok && !printed.contains("invalid configuration"), "{printed}");
    assert!(printed.contains("connections opened during init"), "warmed up before serving: {printed}");
    assert!(!printed.contains("from-ssm"), "the secret is never printed: {printed}");

    let (ok, printed) = start("/bridge/never-created");
    assert!(!ok);
    assert!(printed.contains("TWILIO_AUTH_TOKEN_PARAM") && printed.contains("not found"), "{printed}");
}
