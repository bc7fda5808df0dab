//! The Lambda's cold start refuses a bad configuration and names the field at fault.

use bridge_testkit::testing::{cold_start, lines_json, lines_with};

#[test]
fn invalid_lines_fail_the_cold_start_with_the_field_named() {
    let lines = lines_with("agents", r#"["14155550111", "+1 415 555 0112"]"#);
    let (ok, printed) = cold_start(
        env!("CARGO_BIN_EXE_delivery-worker"),
        &[("BRIDGE_LINES", &lines), ("TABLE_NAME", "t"), ("META_ACCESS_TOKEN", "x")],
    );
    assert!(!ok, "started with invalid lines");
    assert!(printed.contains("BRIDGE_LINES[0].agents[1]"), "{printed}");
}

#[test]
fn a_missing_access_token_fails_the_cold_start() {
    let lines = lines_json();
    let (ok, printed) = cold_start(
        env!("CARGO_BIN_EXE_delivery-worker"),
        &[
            ("BRIDGE_LINES", &lines),
            ("TABLE_NAME", "t"),
            ("DELIVERY_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q"),
        ],
    );
    assert!(!ok);
    assert!(printed.contains("META_ACCESS_TOKEN"), "{printed}");
}

#[test]
fn a_start_without_lambdas_credentials_fails_naming_the_variable() {
    let lines = lines_json();
    // An empty value counts as unset, as Lambda's variables are never empty.
    let (ok, printed) = cold_start(
        env!("CARGO_BIN_EXE_delivery-worker"),
        &[("AWS_ACCESS_KEY_ID", ""), ("BRIDGE_LINES", &lines), ("TABLE_NAME", "t"), ("META_ACCESS_TOKEN", "x")],
    );
    assert!(!ok, "started without credentials");
    assert!(printed.contains("AWS_ACCESS_KEY_ID"), "{printed}");
    assert!(!printed.contains("ASIAEXAMPLE") && !printed.contains("testing"), "no credential printed: {printed}");
}
