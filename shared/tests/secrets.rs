//! Secrets and lines from SSM at cold start (`<NAME>_PARAM`, docs/configuration.md), against the moto emulator.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;
use shared::secrets::resolve;

async fn ssm() -> aws_sdk_ssm::Client {
    let sdk = shared::aws::emulator_sdk_config(bridge_testkit::testing::emulator_endpoint()).await;
    aws_sdk_ssm::Client::new(&sdk)
}

async fn put_secure_string(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn secrets_named_by_param_are_read_from_ssm_in_one_call() {
    let ssm = ssm().await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (twilio, meta) = (format!("/bridge-{run}/twilio-auth-token"), format!("/bridge-{run}/meta-access-token"));
    put_secure_string(&ssm, &twilio, "twilio-secret\n").await;
    put_secure_string(&ssm, &meta, "meta-secret").await;
    let lines = format!("/bridge-{run}/lines");
    ssm.put_parameter()
        .name(&lines)
        .value(bridge_testkit::testing::lines_json())
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    let vars = env(&[
        ("TWILIO_AUTH_TOKEN_PARAM", &twilio),
        ("META_ACCESS_TOKEN_PARAM", &meta),
        ("BRIDGE_LINES_PARAM", &lines),
        ("TABLE_NAME", "bridge"),
    ]);
    let lookup = |name: &str| vars.get(name).cloned();
    let resolved = resolve(&ssm, &lookup).await.unwrap();
    assert_eq!(resolved.get("TWILIO_AUTH_TOKEN").as_deref(), Some("twilio-secret"), "decrypted and trimmed");
    assert_eq!(resolved.get("META_ACCESS_TOKEN").as_deref(), Some("meta-secret"));
    assert_eq!(resolved.get("TABLE_NAME").as_deref(), Some("bridge"), "everything else as it was");
    // The lines may live in a plain String parameter; they parse as BRIDGE_LINES would.
    let parsed = shared::config::lines(&|name| resolved.get(name)).unwrap();
    assert_eq!(parsed.iter().count(), 1);
    assert_eq!(resolved.get("META_APP_SECRET"), None);
}

#[tokio::test]
async fn a_missing_parameter_or_a_secret_given_twice_fails_the_cold_start_naming_the_variable() {
    let ssm = ssm().await;
    let vars = env(&[("META_APP_SECRET_PARAM", "/bridge/never-created")]);
    let lookup = |name: &str| vars.get(name).cloned();
    let error = resolve(&ssm, &lookup).await.err().unwrap();
    assert_eq!(error.name, "META_APP_SECRET_PARAM");
    assert!(error.reason.contains("/bridge/never-created") && error.reason.contains("not found"), "{error}");

    let vars = env(&[("META_APP_SECRET_PARAM", "/bridge/x"), ("META_APP_SECRET", "plain")]);
    let lookup = |name: &str| vars.get(name).cloned();
    let error = resolve(&ssm, &lookup).await.err().unwrap();
    assert_eq!(error.name, "META_APP_SECRET_PARAM");
    assert!(error.reason.contains("not both"), "{error}");
}

#[tokio::test]
async fn without_param_names_no_call_is_made() {
    // A client whose every call would fail: resolving must not use it.
    let sdk = shared::aws::emulator_sdk_config("http://127.0.0.1:9").await;
    let unreachable = aws_sdk_ssm::Client::new(&sdk);
    let vars = env(&[("TWILIO_AUTH_TOKEN", "plain")]);
    let lookup = |name: &str| vars.get(name).cloned();
    let resolved = resolve(&unreachable, &lookup).await.unwrap();
    assert_eq!(resolved.get("TWILIO_AUTH_TOKEN").as_deref(), Some("plain"));
}
