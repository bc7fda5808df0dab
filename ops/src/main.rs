//! `bridge-ops redrive` · `bridge-ops thread [--line LINE] +E164`
//!
//! Reads `TABLE_NAME`, `DELIVERY_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL` (the stack's
//! outputs) and the usual AWS settings; `AWS_ENDPOINT_URL` points it at an emulator.

use std::process::ExitCode;

use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore};
use shared::config::{process_env, required};
use shared::domain::{ConversationKey, E164, LineId};

const USAGE: &str = "usage: bridge-ops redrive
       bridge-ops thread [--line LINE] +E164

Environment: TABLE_NAME, DELIVERY_QUEUE_URL, DEAD_LETTER_QUEUE_URL, and AWS credentials
and region (or AWS_ENDPOINT_URL for an emulator).";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sdk = match process_env("AWS_ENDPOINT_URL") {
        Some(endpoint) => shared::aws::emulator_sdk_config(&endpoint).await,
        None => shared::aws::sdk_config().await,
    };
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["redrive"] => redrive(&sdk).await,
        ["thread", customer] => thread(&sdk, "main", customer).await,
        ["thread", "--line", line, customer] => thread(&sdk, line, customer).await,
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn redrive(sdk: &aws_config::SdkConfig) -> Result<String, String> {
    let queue = required(&process_env, "DELIVERY_QUEUE_URL").map_err(|e| e.to_string())?;
    let dead_letters = required(&process_env, "DEAD_LETTER_QUEUE_URL").map_err(|e| e.to_string())?;
    let moved = bridge_ops::redrive(&aws_sdk_sqs::Client::new(sdk), &dead_letters, &queue).await?;
    Ok(format!("moved {moved} message(s) from the dead-letter queue back to the delivery queue\n"))
}

async fn thread(sdk: &aws_config::SdkConfig, line: &str, customer: &str) -> Result<String, String> {
    let table = required(&process_env, "TABLE_NAME").map_err(|e| e.to_string())?;
    let conversation = ConversationKey {
        line: LineId::parse(line)?,
        customer: E164::parse(customer).map_err(|e| format!("{customer}: {e}"))?,
    };
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table, DEFAULT_MESSAGE_RETENTION);
    bridge_ops::thread_report(&store, &conversation).await
}
