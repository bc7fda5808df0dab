//! The whole bridge on one machine (docs/local-stack.md): a moto emulator for DynamoDB and SQS, the
//! webhooks on one HTTP server, an SQS poller feeding the worker, a simulator of Twilio, AWS
//! End User Messaging SMS (its SNS notifications handed to the SMS webhook's SNS handler) and
//! the WhatsApp Cloud API, and the two-phone page. Each function runs as its deployed
//! handler code.
//!
//! ```text
//! cargo run -p local-stack                      # serve on 127.0.0.1:8080, the page at /
//! cargo run -p local-stack -- --port 9000 --lines my-lines.json --fail-rate 0.2
//! cargo run -p local-stack -- sms "Hello!"      # a customer texts (Twilio-signed) a running stack
//! cargo run -p local-stack -- sms --line aws-demo "Hi"  # ... the AWS SMS line (by SNS)
//! cargo run -p local-stack -- agent "#K7 Hi!"   # an agent answers (Meta-signed)
//! ```

mod console;
mod settings;
mod simulator;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bridge_emulator::MotoServer;
use bridge_emulator::faults::{AwsFaults, FaultKind, FaultWhen};
use delivery_worker::DeliveryWorker;
use delivery_worker::sqs_poller::SqsPoller;
use settings::{Command, Settings};
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use simulator::{AwsSmsSettings, Simulator, SimulatorConfig, SnsAnswer, SnsSubscriber};
use sms_webhook::SmsWebhook;
use whatsapp_webhook::WhatsAppWebhook;

// One thread, as each function runs in Lambda (their `main`s): the stack's work is waiting on
// the emulator and the providers, and a multi-threaded runtime's wake-ups cost CPU on every
// call (BENCHMARKS.md, "Local stack round trip").
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command = match settings::parse_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    if let Command::Help = command {
        println!("{}", settings::USAGE);
        return ExitCode::SUCCESS;
    }
    console::init();
    let result = match command {
        Command::Help => Ok(()),
        Command::Serve(settings) => serve(settings).await,
        Command::SendSms(sms) => settings::send_sms(sms).await,
        Command::AgentMessage(message) => settings::send_agent_message(message).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-stack: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The AWS SMS lines' media bucket, as the stack's template makes it; one made by an earlier
/// run on the same emulator is kept.
async fn create_media_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()) => Ok(()),
        Err(e) => Err(format!("creating bucket {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))),
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let env = settings.environment()?;
    // The port first: a taken one is reported before the emulator starts.
    let listener = listen(settings.listen, settings.port).await?;

    // The emulator: the caller's (AWS_ENDPOINT_URL) or our own pinned moto.
    let (endpoint, _moto) = match env.get("AWS_ENDPOINT_URL") {
        Some(_) if settings.emulator_port.is_some() => {
            return Err("--emulator-port starts the local stack's own emulator, but AWS_ENDPOINT_URL names another: \
                        drop one of them"
                .to_owned());
        }
        Some(url) => (url, None),
        None => {
            let log = bridge_emulator::tools_dir().join("moto-local-stack.log");
            let (address, port) = (settings.listen, settings.emulator_port);
            let moto = tokio::task::spawn_blocking(move || MotoServer::start_on(address, port, Some(&log)))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            tracing::info!(endpoint = moto.endpoint(), "moto emulator started");
            (moto.endpoint().to_owned(), Some(moto))
        }
    };
    let sdk = shared::aws::emulator_sdk_config(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let table = env.get("TABLE_NAME").unwrap_or_default();
    shared::adapters::dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
        .await
        .map_err(|e| format!("creating table {table}: {e}"))?;
    if let Some(bucket) = env.get("AWS_SMS_MEDIA_BUCKET") {
        create_media_bucket(&shared::aws::s3_client(&sdk), &bucket).await?;
    }
    let (queue_url, dead_letter_url) = match (env.get("DELIVERY_QUEUE_URL"), env.get("DEAD_LETTER_QUEUE_URL")) {
        (Some(queue), Some(dlq)) => (queue, dlq),
        // As deployed: the redrive is a backstop for poison; the worker decides by age.
        _ => shared::adapters::sqs::create_queues(&sqs, settings::QUEUE_NAME, 1000).await.map_err(|e| e.to_string())?,
    };
    let env = env.with("DELIVERY_QUEUE_URL", &queue_url).with("DEAD_LETTER_QUEUE_URL", &dead_letter_url);
    let lookup = |name: &str| env.get(name);
    // The functions' AWS calls pass through the AWS failure modes; the emulator set-up, the
    // queue's event source (the poller) and the page's reads don't.
    let functions_sdk = aws_faults(&settings.aws_failures).sdk_config(&sdk);

    // The same constructors the Lambdas' main functions use.
    let sms_config = SmsWebhookConfig::from_lookup(&lookup).map_err(|e| e.to_string())?;
    let whatsapp_config = WhatsAppWebhookConfig::from_lookup(&lookup).map_err(|e| e.to_string())?;
    let worker_config = DeliveryWorkerConfig::from_lookup(&lookup).map_err(|e| e.to_string())?;
    let lines_summary: Vec<String> = sms_config
        .lines
        .iter()
        .map(|l| {
            format!("{} ({} by {}, {} agents)", l.id, l.sms_number.as_str(), l.sms_provider.as_str(), l.agents.len())
        })
        .collect();
    let lines = sms_config.lines.clone();
    let first_line = lines.iter().next().map(|line| line.id.to_string()).unwrap_or_default();
    let first_aws_line = lines
        .iter()
        .find(|l| l.sms_provider == shared::domain::SmsProviderKind::AwsEndUserMessaging)
        .map(|line| line.id.to_string());
    // An entry is swept once it is older than the webhooks keep trying, so a webhook still
    // trying never races the sweep.
    let sweep_grace = sms_config.retry_budget.max(whatsapp_config.retry_budget) + Duration::from_secs(1);
    let sms = Arc::new(SmsWebhook::from_config(sms_config, &functions_sdk));
    let whatsapp = Arc::new(WhatsAppWebhook::from_config(whatsapp_config, &functions_sdk));
    let worker = Arc::new(DeliveryWorker::from_config(worker_config, &functions_sdk));

    // SNS's subscription of the SMS webhook to the AWS SMS topics: the simulator hands each
    // notification to the handler the Lambda's main calls for an SNS event.
    let subscribed = Arc::clone(&sms);
    let subscriber: SnsSubscriber = Arc::new(move |event: String| {
        let webhook = Arc::clone(&subscribed);
        Box::pin(async move {
            match webhook.handle_sns(&event).await {
                Ok(handled) if handled.refused > 0 => SnsAnswer::Refused,
                Ok(_) => SnsAnswer::Handled,
                Err(e) => SnsAnswer::Failed(e.to_string()),
            }
        })
    });
    let aws_sms = AwsSmsSettings {
        configuration_set: env.get("AWS_SMS_CONFIGURATION_SET").unwrap_or_default(),
        inbound_topic: env.get("AWS_SMS_INBOUND_TOPIC_ARN").unwrap_or_default(),
        events_topic: env.get("AWS_SMS_EVENTS_TOPIC_ARN").unwrap_or_default(),
        self_managed_opt_outs: settings.aws_self_managed_opt_outs,
        subscriber: Some(subscriber),
        s3: Some(shared::aws::s3_client(&sdk)),
    };
    let own_url = settings.own_url();
    let simulator = Simulator::new(
        SimulatorConfig {
            lines,
            bridge_url: own_url.clone(),
            public_base_url: env.get("PUBLIC_BASE_URL").unwrap_or_default(),
            own_url: own_url.clone(),
            twilio_account_sid: env.get("TWILIO_ACCOUNT_SID").unwrap_or_default(),
            twilio_auth_token: env.get("TWILIO_AUTH_TOKEN").unwrap_or_default(),
            meta_access_token: env.get("META_ACCESS_TOKEN").unwrap_or_default(),
            meta_app_secret: env.get("META_APP_SECRET").unwrap_or_default(),
            failures: settings.failures.clone(),
            aws_sms,
        },
        shared::adapters::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &table,
            shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION,
        ),
    );
    let app = sms_webhook::router(sms).merge(whatsapp_webhook::router(whatsapp)).merge(simulator.router());

    // Ctrl-C stops the page's live streams and the server, then the poller; the emulator
    // stops when `_moto` drops.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = simulator.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        println!("local-stack: stopping");
        stopping.stop();
        let _ = stop_tx.send(true);
    });
    // Short polls: the emulator serves one request at a time, so a long poll would hold
    // up every other call; an idle poller looks again after a moment.
    let poller = SqsPoller::new(sqs, &queue_url, 0);
    let mut poller_stop = stop_rx.clone();
    let worked = simulator.clone();
    // The outbox sweep, as EventBridge Scheduler runs it in AWS (more often here).
    let sweeper = worker.clone();
    let mut sweep_stop = stop_rx.clone();
    let sweep_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sweep_stop.changed() => break,
                _ = tokio::time::sleep(SWEEP_EVERY) => {
                    let _ = sweeper.sweep_outbox(sweep_grace, shared::app::deliver_job::Deadline::after(SWEEP_TIME)).await;
                }
            }
        }
    });
    let poller_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = poller_stop.changed() => break,
                polled = poller.poll_once(&worker) => match polled {
                    Ok(0) => tokio::time::sleep(Duration::from_millis(25)).await,
                    // The worker recorded sends: the page's thread pane reloads.
                    Ok(_) => worked.touch(),
                    Err(e) => {
                        tracing::warn!(error = %e, "queue poll failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    });

    let base = env.get("PUBLIC_BASE_URL").unwrap_or_default();
    println!("local-stack ready: open {own_url}/ (a customer's SMS phone and an agent's WhatsApp)");
    println!("  lines:     {}", lines_summary.join(", "));
    println!("  webhooks:  POST {base}/sms/inbound · GET|POST {base}/whatsapp · SNS (AWS SMS) in process");
    println!("  WhatsApp:  {}", env.get("GRAPH_API_BASE").unwrap_or_default());
    println!("  SMS:       Twilio {}", env.get("TWILIO_API_BASE").unwrap_or_default());
    println!(
        "             AWS {} (configuration set {})",
        env.get(shared::adapters::aws_sms::ENDPOINT_ENV).unwrap_or_default(),
        env.get("AWS_SMS_CONFIGURATION_SET").unwrap_or_default()
    );
    println!("  emulator:  {endpoint} (table {table})");
    println!(
        "  ops:       AWS_ENDPOINT_URL={endpoint} TABLE_NAME={table} DELIVERY_QUEUE_URL={queue_url} \\\n             DEAD_LETTER_QUEUE_URL={dead_letter_url} cargo run -p bridge-ops -- thread --line {first_line} +14155550134"
    );
    let port_arg =
        if settings.port == settings::DEFAULT_PORT { String::new() } else { format!(" --port {}", settings.port) };
    println!("  try:       cargo run -p local-stack -- sms{port_arg} \"Hello from a customer\"");
    if let Some(aws_line) = first_aws_line {
        println!("             cargo run -p local-stack -- sms{port_arg} --line {aws_line} \"Hello, AWS line\"");
    }
    println!("             cargo run -p local-stack -- agent{port_arg} \"#HANDLE Thanks, see you at 9!\"");

    let mut server_stop = stop_rx;
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = server_stop.changed().await;
        })
        .await;
    let _ = poller_task.await;
    let _ = sweep_task.await;
    served.map_err(|e| e.to_string())
}

/// The page's and webhooks' port on `address` (127.0.0.1 unless `--listen`), with the fix in
/// the message when it is taken.
async fn listen(address: std::net::IpAddr, port: u16) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind((address, port)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let other = if port == u16::MAX { port - 1 } else { port + 1 };
            format!(
                "port {port} is already in use (another local stack?): stop it, or choose another \
                 port with `cargo run -p local-stack -- --port {other}`"
            )
        } else {
            format!("can't listen on {}: {e}", std::net::SocketAddr::new(address, port))
        }
    })
}

/// How often the local stack sweeps the outbox (AWS: every minute or two), and how long one
/// sweep may run.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
const SWEEP_TIME: Duration = Duration::from_secs(10);

/// The AWS failure modes as a fault plan for the functions' DynamoDB and SQS calls (AWS SMS
/// sends fail by the simulator's own `--fail-rate`, with that API's exceptions).
fn aws_faults(settings: &simulator::failures::AwsFailureSettings) -> AwsFaults {
    let faults = AwsFaults::default();
    if settings.fail_rate > 0.0 {
        for service in ["DynamoDB", "AmazonSQS"] {
            faults.inject(service, FaultWhen::Rate(settings.fail_rate), FaultKind::Refuse);
        }
    }
    for outage in &settings.outages {
        let window = FaultWhen::Window { start: std::time::Instant::now() + outage.after, length: outage.length };
        faults.inject(outage.service, window, FaultKind::Refuse);
    }
    faults
}
