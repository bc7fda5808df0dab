//! The Lambda's cold start refuses a bad configuration and names the field at fault.

use shared::testing::{cold_start, lines_with};

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
    let lines = shared::testing::lines_json();
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
