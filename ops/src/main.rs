//! `bridge-ops`: the operator's commands (docs/operating.md). Reads `TABLE_NAME`,
//! `DELIVERY_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL` (the stack's outputs) and the usual AWS
//! settings; `AWS_ENDPOINT_URL` points it at an emulator.

use std::process::ExitCode;

use bridge_ops::export::ExportFormat;
use clap::{Parser, Subcommand};
use shared::adapters::dynamodb::erasure::ErasureRequest;
use shared::adapters::dynamodb::{DEFAULT_MESSAGE_RETENTION, DynamoStore};
use shared::config::{process_env, required};
use shared::domain::{ConversationKey, E164, LineId};

const ENVIRONMENT: &str = "Environment: TABLE_NAME, DELIVERY_QUEUE_URL, DEAD_LETTER_QUEUE_URL, and AWS credentials
and region (or AWS_ENDPOINT_URL for an emulator).";

#[derive(Parser)]
#[command(name = "bridge-ops", about = "Operate a deployed bridge", after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Move every dead-lettered job back to the delivery queue (after fixing its cause)
    Redrive,
    /// Print a customer's conversation: each message, every copy's state and last error
    Thread {
        #[arg(long, default_value = "main", value_parser = LineId::parse)]
        line: LineId,
        /// The customer's number, E.164 (+14155550134)
        #[arg(value_parser = parse_customer)]
        customer: E164,
    },
    /// Erase everything the bridge holds about a customer (a data-erasure request)
    Erase {
        /// Only this line's data (default: every line)
        #[arg(long, value_parser = LineId::parse)]
        line: Option<LineId>,
        /// Count what would go; change nothing
        #[arg(long)]
        dry_run: bool,
        /// The customer's number, E.164 (+14155550134)
        #[arg(value_parser = parse_customer)]
        customer: E164,
    },
    /// Print a customer's thread with statuses and times (a data-access request)
    Export {
        #[arg(long, default_value = "main", value_parser = LineId::parse)]
        line: LineId,
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
        /// The customer's number, E.164 (+14155550134)
        #[arg(value_parser = parse_customer)]
        customer: E164,
    },
    /// Check a lines file, or write it to the lines' SSM parameter (BRIDGE_LINES_PARAM)
    Lines {
        #[command(subcommand)]
        command: bridge_ops::lines::LinesCommand,
    },
}

fn parse_customer(text: &str) -> Result<E164, String> {
    E164::parse(text).map_err(|e| format!("{text}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = match process_env("AWS_ENDPOINT_URL") {
        Some(endpoint) => shared::aws::emulator_sdk_config(&endpoint).await,
        None => shared::aws::sdk_config().await,
    };
    let result = match cli.command {
        Command::Redrive => redrive(&sdk).await,
        Command::Thread { line, customer } => thread(&sdk, ConversationKey { line, customer }).await,
        Command::Erase { line, dry_run, customer } => erase(&sdk, ErasureRequest { customer, line }, dry_run).await,
        Command::Export { line, format, customer } => export(&sdk, ConversationKey { line, customer }, format).await,
        Command::Lines { command } => bridge_ops::lines::run(command, &sdk).await,
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bridge-ops: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Result<String, String> {
    required(&process_env, name).map_err(|e| e.to_string())
}

fn store(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, String> {
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env("TABLE_NAME")?, DEFAULT_MESSAGE_RETENTION))
}

async fn redrive(sdk: &aws_config::SdkConfig) -> Result<String, String> {
    let (queue, dead_letters) = (env("DELIVERY_QUEUE_URL")?, env("DEAD_LETTER_QUEUE_URL")?);
    let moved = bridge_ops::redrive(&aws_sdk_sqs::Client::new(sdk), &dead_letters, &queue).await?;
    Ok(format!("moved {moved} message(s) from the dead-letter queue back to the delivery queue\n"))
}

async fn thread(sdk: &aws_config::SdkConfig, conversation: ConversationKey) -> Result<String, String> {
    bridge_ops::thread_report(&store(sdk)?, &conversation).await
}

async fn erase(sdk: &aws_config::SdkConfig, request: ErasureRequest, dry_run: bool) -> Result<String, String> {
    let report = store(sdk)?.erase_customer(&request, dry_run).await.map_err(|e| e.to_string())?;
    Ok(bridge_ops::erase::render(&request, &report))
}

async fn export(
    sdk: &aws_config::SdkConfig,
    conversation: ConversationKey,
    format: ExportFormat,
) -> Result<String, String> {
    bridge_ops::export::export(&store(sdk)?, &conversation).await?.render(format)
}
