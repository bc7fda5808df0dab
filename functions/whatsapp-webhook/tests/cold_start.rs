//! The Lambda's cold start refuses a missing secret and names it.

use bridge_testkit::testing::cold_start;

#[test]
fn a_missing_app_secret_fails_the_cold_start() {
    let (ok, printed) = cold_start(env!("CARGO_BIN_EXE_whatsapp-webhook"), &[("META_VERIFY_TOKEN", "x")]);
    assert!(!ok);
    assert!(printed.contains("META_APP_SECRET"), "{printed}");
}
