//! `bridge-ops`: the operator's commands (docs/operating.md). Reads `TABLE_NAME`,
//! `DELIVERY_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL` (the stack's outputs) and the usual AWS
//! settings; `AWS_ENDPOINT_URL` points it at an emulator.

use std::process::ExitCode;

use bridge_ops::dead_letters::{self, RedriveOptions};
use bridge_ops::export::ExportFormat;
use bridge_ops::provider_checks::ProviderChecks;
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
    /// The dead-letter queue: what waits there and why
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Move the dead-lettered jobs back to the delivery queue, once the providers they need work
    Redrive {
        /// Move at most this many jobs
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max: Option<u32>,
        /// Move them without checking the providers first
        #[arg(long)]
        force: bool,
        /// Check the providers and count what would move; move nothing
        #[arg(long)]
        dry_run: bool,
    },
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

#[derive(Subcommand)]
enum DlqCommand {
    /// Each dead-lettered job's age, kind, line, masked recipient and why it failed; moves nothing
    List {
        /// One JSON document instead of a table
        #[arg(long)]
        json: bool,
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
        Command::Dlq { command: DlqCommand::List { json } } => dlq_list(&sdk, json).await,
        Command::Redrive { max, force, dry_run } => {
            let max = max.map(|n| n as usize);
            redrive(&sdk, RedriveOptions { max, force, dry_run, wait: dead_letters::LONGEST_POLL }).await
        }
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

async fn dlq_list(sdk: &aws_config::SdkConfig, json: bool) -> Result<String, String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    // A short long poll: enough to avoid a false empty answer, not to wait for arrivals.
    let wait = std::time::Duration::from_secs(2);
    let listing = dead_letters::list(&sqs, &env("DEAD_LETTER_QUEUE_URL")?, &store(sdk)?, wait).await?;
    Ok(if json { format!("{:#}\n", listing.to_json()) } else { listing.to_string() })
}

async fn redrive(sdk: &aws_config::SdkConfig, options: RedriveOptions) -> Result<String, String> {
    let (queue, dead_letter_queue) = (env("DELIVERY_QUEUE_URL")?, env("DEAD_LETTER_QUEUE_URL")?);
    // The worker's own settings, its secrets read from SSM where a `_PARAM` names them.
    let environment = shared::secrets::resolve(&aws_sdk_ssm::Client::new(sdk), &process_env).await;
    let providers = match &environment {
        Ok(environment) => ProviderChecks::from_lookup(&|name| environment.get(name)),
        Err(_) if options.force => ProviderChecks::from_lookup(&process_env),
        Err(e) => return Err(format!("{e} (or move the jobs unchecked with --force)")),
    };
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let report = dead_letters::redrive(&sqs, &dead_letter_queue, &queue, &providers, options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(report.to_string())
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
