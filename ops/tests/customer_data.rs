//! `bridge-ops export` and `bridge-ops erase` (docs/operating.md, "A customer's data on
//! request") as an operator runs them against a table: the export in both formats, an
//! erasure's dry run changing nothing, the erasure, and bad arguments refused.

use std::process::{Command, Output};

use bridge_testkit::testing::{CUSTOMER, TestAws, record_customer_text};

fn bridge_ops(args: &[&str], aws: &TestAws) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bridge-ops"))
        .args(args)
        .env("AWS_ENDPOINT_URL", aws.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", &aws.table)
        .output()
        .unwrap()
}

fn printed(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn export_then_erase_through_the_binary() {
    let aws = TestAws::new().await;
    record_customer_text(&aws, CUSTOMER, "where is my order, it's late").await;
    record_customer_text(&aws, CUSTOMER, "hello?").await;

    let csv = bridge_ops(&["export", "--line", "main", "--format", "csv", CUSTOMER], &aws);
    assert!(csv.status.success(), "{}", printed(&csv));
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two messages: {csv}");
    assert!(csv.contains(",\"where is my order, it's late\","), "a text with a comma, quoted: {csv}");
    let json = bridge_ops(&["export", "--line", "main", CUSTOMER], &aws);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["messages"].as_array().unwrap().len(), 2);
    assert_eq!(parsed["customer"], CUSTOMER);

    let items = aws.items().await.len();
    let dry = bridge_ops(&["erase", "--line", "main", "--dry-run", CUSTOMER], &aws);
    assert!(dry.status.success(), "{}", printed(&dry));
    assert!(printed(&dry).contains("dry run: nothing changed"), "{}", printed(&dry));
    assert_eq!(aws.items().await.len(), items, "a dry run changes nothing");

    let erased = bridge_ops(&["erase", "--line", "main", CUSTOMER], &aws);
    let out = printed(&erased);
    assert!(erased.status.success(), "{out}");
    assert!(out.contains("erased +1415*****34 on line main (done)") && out.contains("conversation"), "{out}");
    assert!(!out.contains(CUSTOMER.trim_start_matches('+')), "the number printed: {out}");
    let after = bridge_ops(&["export", "--line", "main", CUSTOMER], &aws);
    let parsed: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!((parsed["conversation"].is_null(), parsed["messages"].as_array().unwrap().len()), (true, 0));
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let aws_free = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_bridge-ops")).args(args).output().unwrap();
    let not_a_number = aws_free(&["erase", "4155550134"]);
    assert_eq!(not_a_number.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_number.stderr).contains("must start with '+'"));
    let bad_format = aws_free(&["export", "--format", "xml", CUSTOMER]);
    assert_eq!(bad_format.status.code(), Some(2));
    let no_table = Command::new(env!("CARGO_BIN_EXE_bridge-ops"))
        .args(["erase", CUSTOMER])
        .env_remove("TABLE_NAME")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(no_table.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_table.stderr).contains("TABLE_NAME"), "names what is missing");
}
