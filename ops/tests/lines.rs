//! `bridge-ops lines check FILE` and `bridge-ops lines put FILE` (docs/operating.md, "Change
//! the team without a redeploy"): a bad file exits non-zero naming the field; a good one is
//! summarised with numbers masked, and `put` writes it as the parameter's next version.

use std::path::PathBuf;
use std::process::{Command, Output};

use bridge_testkit::testing::{AGENTS, KNOWN_NUMBERS, lines_json};

fn bridge_ops(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bridge-ops"));
    command.args(args).env_remove("BRIDGE_LINES_PARAM").env_remove("AWS_ENDPOINT_URL").env("AWS_REGION", "us-east-1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn file_holding(json: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lines-{}-{}.json", std::process::id(), fastrand_suffix()));
    std::fs::write(&path, json).unwrap();
    path
}

fn fastrand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn printed(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn no_number_in(text: &str) {
    for number in KNOWN_NUMBERS {
        assert!(!text.contains(number.trim_start_matches('+')), "{number} in {text}");
    }
}

#[test]
fn check_summarises_a_good_file_with_numbers_masked() {
    let file = file_holding(&lines_json());
    let output = bridge_ops(&["lines", "check", file.to_str().unwrap()], &[]);
    let (stdout, stderr) = printed(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("is valid: 1 line"), "{stdout}");
    assert!(stdout.contains("main: SMS +1415") && stdout.contains("2 agents: 1415"), "{stdout}");
    no_number_in(&stdout);
    std::fs::remove_file(file).unwrap();
}

#[test]
fn check_refuses_a_bad_file_naming_the_field_with_a_non_zero_exit() {
    let bad = lines_json().replace(&format!("\"{}\"", AGENTS[1]), "\"+1 415 555 0112\"");
    let file = file_holding(&bad);
    let output = bridge_ops(&["lines", "check", file.to_str().unwrap()], &[]);
    let (stdout, stderr) = printed(&output);
    assert!(!output.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(&format!("{name}[0].agents[1]: ")), "{stderr}");
    assert!(!stderr.contains("555 0112"), "{stderr}");
    std::fs::remove_file(&file).unwrap();

    let missing = bridge_ops(&["lines", "check", file.to_str().unwrap()], &[]);
    assert!(!missing.status.success());
    assert!(printed(&missing).1.contains("can't read"), "{}", printed(&missing).1);
}

#[test]
fn put_needs_the_parameters_name() {
    let file = file_holding(&lines_json());
    let output = bridge_ops(&["lines", "put", file.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    assert!(printed(&output).1.contains("BRIDGE_LINES_PARAM"), "{}", printed(&output).1);
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn put_writes_the_next_version_and_keeps_the_parameters_type() {
    let endpoint = tokio::task::spawn_blocking(bridge_testkit::testing::emulator_endpoint).await.unwrap();
    let parameter = format!("/bridge-ops-{}-{}/lines", std::process::id(), fastrand_suffix());
    let env = [("AWS_ENDPOINT_URL", endpoint), ("BRIDGE_LINES_PARAM", parameter.as_str())];
    let file = file_holding(&lines_json());

    let first = bridge_ops(&["lines", "put", file.to_str().unwrap()], &env);
    let (stdout, stderr) = printed(&first);
    assert!(first.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("created {parameter} (SecureString) version 1")), "{stdout}");
    no_number_in(&stdout);

    let ssm = aws_sdk_ssm::Client::new(&shared::aws::emulator_sdk_config(endpoint).await);
    // An operator made it a plain String meanwhile: the next put keeps it one.
    let value = ssm.get_parameter().name(&parameter).with_decryption(true).send().await.unwrap();
    let value = value.parameter.unwrap().value.unwrap();
    ssm.delete_parameter().name(&parameter).send().await.unwrap();
    ssm.put_parameter()
        .name(&parameter)
        .value(&value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let one_agent = lines_json().replace(&format!(", \"{}\"", AGENTS[1]), "");
    std::fs::write(&file, &one_agent).unwrap();
    let second = bridge_ops(&["lines", "put", file.to_str().unwrap()], &env);
    let (stdout, stderr) = printed(&second);
    assert!(second.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("wrote {parameter} (String) version 2")) && stdout.contains("1 agent:"),
        "{stdout}"
    );

    let stored = ssm.get_parameter().name(&parameter).with_decryption(true).send().await.unwrap().parameter.unwrap();
    assert_eq!(stored.version, 2);
    let expected = shared::domain::Lines::from_json("file", &one_agent).unwrap();
    assert_eq!(shared::domain::Lines::from_json("stored", stored.value.as_deref().unwrap()).unwrap(), expected);
    std::fs::remove_file(file).unwrap();
}
