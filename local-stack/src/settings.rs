//! Command line and environment of the local stack. Every variable of the docs/configuration.md contract
//! set in the environment wins over the local default.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use shared::config::process_env;

use crate::simulator::failures::{self, AwsFailureSettings, FailureSettings};

pub const DEFAULT_PORT: u16 = 8080;
pub const QUEUE_NAME: &str = "sms-whatsapp-bridge-delivery";
const SAMPLE_LINES: &str = include_str!("../lines.sample.json");

/// Local-only credentials: the webhooks check signatures with these exactly as in AWS.
const LOCAL_DEFAULTS: &[(&str, &str)] = &[
    ("TABLE_NAME", "sms-whatsapp-bridge"),
    ("TWILIO_AUTH_TOKEN", "local-twilio-auth-token"),
    ("META_APP_SECRET", "local-meta-app-secret"),
    ("META_VERIFY_TOKEN", "local-meta-verify-token"),
    ("META_ACCESS_TOKEN", "local-meta-access-token"),
    ("TWILIO_ACCOUNT_SID", LOCAL_ACCOUNT_SID),
    // AWS End User Messaging SMS lines: the simulated account's configuration set and the
    // SNS topics its numbers and event destination publish to (the simulator hands both to
    // the SMS webhook's SNS handler).
    ("AWS_SMS_CONFIGURATION_SET", "bridge-sms-local"),
    ("AWS_SMS_INBOUND_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:bridge-sms-inbound"),
    ("AWS_SMS_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:bridge-sms-events"),
    // Where agents' pictures to AWS SMS lines are staged as MMS (the emulator's S3).
    ("AWS_SMS_MEDIA_BUCKET", "bridge-mms-local"),
];

const LOCAL_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

pub const USAGE: &str = "\
usage: local-stack [--port PORT] [--lines FILE] [--listen ADDRESS] [--emulator-port PORT]
                   [--fail-rate RATE] [--fail-seed N] [--fail-number +E164[=CODE]]...
                   [--closed-window WA_ID]... [--late-answer-rate RATE]
                   [--aws-fail-rate RATE] [--aws-outage sqs|dynamodb=SECONDS[@AFTER]]...
                   [--aws-self-managed-opt-outs]
       local-stack sms [--port PORT] [--from +E164] [--to +E164 | --line LINE_ID] TEXT
       local-stack agent [--port PORT] [--from WA_ID] [--reply-to WAMID] TEXT

Starts the bridge locally (docs/local-stack.md) with its provider simulator and the two-phone page, or
plays a customer texting it (Twilio-signed, or by SNS for an AWS SMS line) or an agent
answering in WhatsApp (Meta-signed) against one that runs. `sms --to` or `--line` picks the
line the customer texts (default: the first line).

For `sam local invoke` (docs/deploying.md, events/*.env.json), whose container reaches this
machine as host.docker.internal:
  --emulator-port 8081     the DynamoDB/SQS emulator on this port (default: any free port)
  --listen 0.0.0.0         the page, webhooks, simulator and emulator on this address
                           (default 127.0.0.1; Linux containers need one they can reach)

Simulator failure modes (to watch the delivery guarantees work):
  --fail-rate 0.2          a fifth of all provider sends fail at random (HTTP 503 or 429)
  --fail-seed 7            the same random failures on every run
  --fail-number +E164=CODE SMS to this number are accepted, then fail with CODE (default 30006;
                           on an AWS SMS line, the matching event: TEXT_CARRIER_UNREACHABLE...)
  --closed-window WA_ID    this agent's 24-hour window never opens: free-form messages to
                           them fail with 131047, so the bridge falls back to the template
  --late-answer-rate 0.1   a tenth of provider sends are accepted but answered after 12 s,
                           past the bridge's timeout: it reconciles from the status reports
                           (WhatsApp, Twilio) or Twilio's message list instead of resending

AWS failure modes (the functions' DynamoDB and SQS calls; the queue's event source isn't):
  --aws-fail-rate 0.05     that share of calls fail with 503 ServiceUnavailable
  --aws-outage sqs=30@60   SQS refuses every call for 30 s, one minute in (the outbox
                           sweep enqueues what the webhooks recorded meanwhile);
                           dynamodb=SECONDS[@AFTER] likewise

AWS End User Messaging SMS lines:
  --aws-self-managed-opt-outs  the numbers manage opt-outs themselves: AWS publishes HELP and
                           STOP to the bridge instead of answering them and keeping the
                           customer on its opt-out list (the default)";

pub enum Command {
    /// `--help`: the usage on stdout, nothing started.
    Help,
    Serve(Settings),
    SendSms(SendSms),
    AgentMessage(AgentMessage),
}

pub struct AgentMessage {
    pub port: u16,
    /// The agent's wa_id (default: the first agent of the first line).
    pub from: Option<String>,
    /// A forwarded copy's wamid, to swipe-reply to it.
    pub reply_to: Option<String>,
    pub text: String,
}

pub struct Settings {
    pub port: u16,
    /// The address the server and the emulator listen on (`--listen`).
    pub listen: IpAddr,
    /// The emulator's port (`--emulator-port`); any free one when `None`.
    pub emulator_port: Option<u16>,
    pub lines: Option<PathBuf>,
    pub failures: FailureSettings,
    pub aws_failures: AwsFailureSettings,
    /// `--aws-self-managed-opt-outs`.
    pub aws_self_managed_opt_outs: bool,
}

pub struct SendSms {
    pub port: u16,
    pub from: String,
    /// The line's number (`--to`) or its id (`--line`); neither: the first line.
    pub to: Option<String>,
    pub line: Option<String>,
    pub text: String,
}

pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut args = args.peekable();
    let mode = match args.peek().map(String::as_str) {
        Some(mode @ ("sms" | "agent")) => mode.to_owned(),
        _ => "serve".to_owned(),
    };
    if mode != "serve" {
        args.next();
    }
    let (mut port, mut lines, mut from, mut to, mut reply_to, mut text) =
        (DEFAULT_PORT, None, None, None, None, Vec::new());
    let (mut line, mut aws_self_managed_opt_outs) = (None, false);
    let (mut listen, mut emulator_port) = (IpAddr::V4(Ipv4Addr::LOCALHOST), None);
    let mut failure_modes = FailureSettings::default();
    let mut aws_failures = AwsFailureSettings::default();
    let invalid = |e: String| format!("{e}\n\n{USAGE}");
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"));
        match (mode.as_str(), arg.as_str()) {
            (_, "--port") => {
                port = value("--port")?.parse().map_err(|_| format!("--port must be a port number\n\n{USAGE}"))?
            }
            ("serve", "--lines") => lines = Some(PathBuf::from(value("--lines")?)),
            ("serve", "--listen") => {
                listen = value("--listen")?
                    .parse()
                    .map_err(|_| format!("--listen must be an IP address (0.0.0.0, 127.0.0.1)\n\n{USAGE}"))?
            }
            ("serve", "--emulator-port") => {
                emulator_port = Some(
                    value("--emulator-port")?
                        .parse()
                        .ok()
                        .filter(|port| *port != 0)
                        .ok_or_else(|| format!("--emulator-port must be a port number\n\n{USAGE}"))?,
                )
            }
            ("serve", "--fail-rate") => {
                failure_modes.fail_rate = failures::parse_fail_rate(&value("--fail-rate")?).map_err(invalid)?
            }
            ("serve", "--fail-number") => {
                let (number, code) = failures::parse_failing_number(&value("--fail-number")?).map_err(invalid)?;
                failure_modes.failing_numbers.insert(number, code);
            }
            ("serve", "--fail-seed") => {
                failure_modes.seed = Some(failures::parse_seed(&value("--fail-seed")?).map_err(invalid)?)
            }
            ("serve", "--late-answer-rate") => {
                failure_modes.late_answer_rate =
                    failures::parse_rate("--late-answer-rate", &value("--late-answer-rate")?).map_err(invalid)?
            }
            ("serve", "--aws-fail-rate") => {
                aws_failures.fail_rate =
                    failures::parse_rate("--aws-fail-rate", &value("--aws-fail-rate")?).map_err(invalid)?
            }
            ("serve", "--aws-outage") => {
                aws_failures.outages.push(failures::parse_aws_outage(&value("--aws-outage")?).map_err(invalid)?)
            }
            ("serve", "--closed-window") => {
                failure_modes
                    .closed_windows
                    .insert(failures::parse_wa_id(&value("--closed-window")?).map_err(invalid)?);
            }
            ("serve", "--aws-self-managed-opt-outs") => aws_self_managed_opt_outs = true,
            ("sms" | "agent", "--from") => from = Some(value("--from")?),
            ("sms", "--to") => to = Some(value("--to")?),
            ("sms", "--line") => line = Some(value("--line")?),
            ("agent", "--reply-to") => reply_to = Some(value("--reply-to")?),
            (_, "-h" | "--help") => return Ok(Command::Help),
            ("sms" | "agent", other) if !other.starts_with("--") => text.push(other.to_owned()),
            (_, other) => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if to.is_some() && line.is_some() {
        return Err(format!("sms takes --to or --line, not both\n\n{USAGE}"));
    }
    if mode != "serve" && text.is_empty() {
        return Err(format!("{mode} needs the TEXT to send\n\n{USAGE}"));
    }
    let text = text.join(" ");
    Ok(match mode.as_str() {
        "sms" => {
            Command::SendSms(SendSms { port, from: from.unwrap_or_else(|| "+14155550134".to_owned()), to, line, text })
        }
        "agent" => Command::AgentMessage(AgentMessage { port, from, reply_to, text }),
        _ => Command::Serve(Settings {
            port,
            listen,
            emulator_port,
            lines,
            failures: failure_modes,
            aws_failures,
            aws_self_managed_opt_outs,
        }),
    })
}

/// The environment the functions see: command-line choices, then the process environment,
/// then local defaults.
pub struct LocalEnv {
    forced: HashMap<String, String>,
    defaults: HashMap<String, String>,
}

impl LocalEnv {
    pub fn get(&self, name: &str) -> Option<String> {
        self.forced.get(name).cloned().or_else(|| process_env(name)).or_else(|| self.defaults.get(name).cloned())
    }

    /// Adds a default (the environment still wins).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.defaults.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl Settings {
    /// Where this machine reaches the server: `--listen`'s address, or 127.0.0.1 when it
    /// listens on every interface.
    pub fn own_url(&self) -> String {
        format!("http://{}", std::net::SocketAddr::new(bridge_emulator::reachable(self.listen), self.port))
    }

    pub fn environment(&self) -> Result<LocalEnv, String> {
        let mut defaults: HashMap<String, String> =
            LOCAL_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let base = self.own_url();
        defaults.insert("PUBLIC_BASE_URL".into(), base.clone());
        // The providers are the simulator on our own port, unless the environment names others.
        defaults.insert("GRAPH_API_BASE".into(), format!("{base}{}", crate::simulator::GRAPH_PREFIX));
        defaults.insert("TWILIO_API_BASE".into(), format!("{base}{}", crate::simulator::TWILIO_PREFIX));
        defaults.insert(
            shared::adapters::aws_sms::ENDPOINT_ENV.into(),
            format!("{base}{}", crate::simulator::AWS_SMS_PREFIX),
        );
        let mut forced = HashMap::new();
        match &self.lines {
            Some(path) => {
                let json = std::fs::read_to_string(path).map_err(|e| format!("--lines {}: {e}", path.display()))?;
                forced.insert("BRIDGE_LINES".to_owned(), json);
            }
            // The sample only when the environment names no lines at all: BRIDGE_LINES
            // would otherwise shadow a BRIDGE_LINES_FILE.
            None if process_env("BRIDGE_LINES").is_none() && process_env("BRIDGE_LINES_FILE").is_none() => {
                defaults.insert("BRIDGE_LINES".into(), SAMPLE_LINES.to_owned());
            }
            None => {}
        }
        Ok(LocalEnv { forced, defaults })
    }
}

/// The customer's phone of a running local stack texts the business: its simulator posts
/// the SMS to the webhook, signed as Twilio signs it (or, to an AWS SMS line, publishes it to
/// SNS for the webhook's SNS handler), and the page shows it.
pub async fn send_sms(sms: SendSms) -> Result<(), String> {
    let mut request = serde_json::json!({ "from": sms.from, "text": sms.text });
    if let Some(to) = sms.to {
        request["to"] = serde_json::json!(to);
    }
    if let Some(line) = sms.line {
        request["line"] = serde_json::json!(line);
    }
    let answer = post_to_phone(sms.port, "/_sim/customer/send", &request).await?;
    if answer["answered_by"] == "aws" {
        println!("sent {}: AWS answered the keyword itself and published nothing to the bridge", answer["sid"]);
    } else {
        println!("sent {} (the SMS webhook answered {})", answer["sid"], answer["webhook_status"]);
    }
    Ok(())
}

/// An agent's WhatsApp of a running local stack writes to the business: its simulator posts
/// the notification, signed as Meta signs it (`--reply-to` makes it a swipe-reply).
pub async fn send_agent_message(message: AgentMessage) -> Result<(), String> {
    let from = match message.from {
        Some(from) => from,
        None => {
            let settings = Settings {
                port: message.port,
                listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
                emulator_port: None,
                lines: None,
                failures: FailureSettings::default(),
                aws_failures: AwsFailureSettings::default(),
                aws_self_managed_opt_outs: false,
            };
            let env = settings.environment()?;
            let lines = shared::config::lines(&|name| env.get(name)).map_err(|e| e.to_string())?;
            let line = lines.iter().next().ok_or("no line configured")?;
            line.agents.first().map(|a| a.as_str().to_owned()).ok_or("the line has no agents")?
        }
    };
    let request = serde_json::json!({ "from": from, "text": message.text, "context": message.reply_to });
    let answer = post_to_phone(message.port, "/_sim/agent/send", &request).await?;
    println!("sent {} (the WhatsApp webhook answered {})", answer["wamid"], answer["webhook_status"]);
    Ok(())
}

async fn post_to_phone(port: u16, path: &str, request: &serde_json::Value) -> Result<serde_json::Value, String> {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .json(request)
        .send()
        .await
        .map_err(|e| format!("is the local stack running on port {port}? {e}"))?;
    let answer: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    match answer["ok"].as_bool() {
        Some(true) if answer["webhook_status"] == 200 || answer["answered_by"] == "aws" => Ok(answer),
        Some(true) => Err(format!("the bridge's webhook answered {}", answer["webhook_status"])),
        _ => Err(answer["error"].as_str().unwrap_or("the simulator refused").to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn sms_picks_the_line_by_number_or_id_but_not_both() {
        let Ok(Command::SendSms(sms)) = parse(&["sms", "--line", "aws-demo", "Hi", "there"]) else { panic!() };
        assert_eq!((sms.line.as_deref(), sms.to.as_deref(), sms.text.as_str()), (Some("aws-demo"), None, "Hi there"));
        let Ok(Command::SendSms(sms)) = parse(&["sms", "--to", "+14155550200", "Hi"]) else { panic!() };
        assert_eq!((sms.line, sms.to.as_deref()), (None, Some("+14155550200")));
        let both = parse(&["sms", "--to", "+14155550200", "--line", "aws-demo", "Hi"]).err().unwrap();
        assert!(both.starts_with("sms takes --to or --line, not both"), "{both}");
        assert!(parse(&["agent", "--line", "aws-demo", "Hi"]).is_err(), "agents write to their own line");
    }

    #[test]
    fn self_managed_opt_outs_is_a_serve_switch() {
        let Ok(Command::Serve(settings)) = parse(&["--aws-self-managed-opt-outs"]) else { panic!() };
        assert!(settings.aws_self_managed_opt_outs);
        let Ok(Command::Serve(settings)) = parse(&[]) else { panic!() };
        assert!(!settings.aws_self_managed_opt_outs);
        assert!(parse(&["sms", "--aws-self-managed-opt-outs", "Hi"]).is_err());
    }
}
