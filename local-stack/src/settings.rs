//! Command line and environment of the local stack. Every variable of the SPEC §2 contract
//! set in the environment wins over the local default.

use std::collections::HashMap;
use std::path::PathBuf;

use shared::adapters::twilio::{compute_signature, encode_form};
use shared::config::process_env;

use crate::simulator::failures::{self, FailureSettings};

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
];

const LOCAL_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

const USAGE: &str = "\
usage: local-stack [--port PORT] [--lines FILE]
                   [--fail-rate RATE] [--fail-number +E164[=CODE]]... [--closed-window WA_ID]...
       local-stack sms [--port PORT] [--from +E164] [--to +E164] TEXT
       local-stack agent [--port PORT] [--from WA_ID] [--reply-to WAMID] TEXT

Starts the bridge locally (SPEC §11) with its provider simulator and the two-phone page, or
plays a customer texting it (Twilio-signed) or an agent answering in WhatsApp (Meta-signed)
against one that runs.

Simulator failure modes (to watch the delivery guarantees work):
  --fail-rate 0.2          a fifth of all provider sends fail at random (HTTP 503 or 429)
  --fail-number +E164=CODE SMS to this number are accepted, then fail with CODE (default 30006)
  --closed-window WA_ID    this agent's 24-hour window never opens: free-form messages to
                           them fail with 131047, so the bridge falls back to the template";

pub enum Command {
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
    pub lines: Option<PathBuf>,
    pub failures: FailureSettings,
}

pub struct SendSms {
    pub port: u16,
    pub from: String,
    pub to: Option<String>,
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
    let mut failure_modes = FailureSettings::default();
    let invalid = |e: String| format!("{e}\n\n{USAGE}");
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"));
        match (mode.as_str(), arg.as_str()) {
            (_, "--port") => {
                port = value("--port")?.parse().map_err(|_| format!("--port must be a port number\n\n{USAGE}"))?
            }
            ("serve", "--lines") => lines = Some(PathBuf::from(value("--lines")?)),
            ("serve", "--fail-rate") => {
                failure_modes.fail_rate = failures::parse_fail_rate(&value("--fail-rate")?).map_err(invalid)?
            }
            ("serve", "--fail-number") => {
                let (number, code) = failures::parse_failing_number(&value("--fail-number")?).map_err(invalid)?;
                failure_modes.failing_numbers.insert(number, code);
            }
            ("serve", "--closed-window") => {
                failure_modes
                    .closed_windows
                    .insert(failures::parse_wa_id(&value("--closed-window")?).map_err(invalid)?);
            }
            ("sms" | "agent", "--from") => from = Some(value("--from")?),
            ("sms", "--to") => to = Some(value("--to")?),
            ("agent", "--reply-to") => reply_to = Some(value("--reply-to")?),
            (_, "-h" | "--help") => return Err(USAGE.to_owned()),
            ("sms" | "agent", other) if !other.starts_with("--") => text.push(other.to_owned()),
            (_, other) => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if mode != "serve" && text.is_empty() {
        return Err(format!("{mode} needs the TEXT to send\n\n{USAGE}"));
    }
    let text = text.join(" ");
    Ok(match mode.as_str() {
        "sms" => Command::SendSms(SendSms { port, from: from.unwrap_or_else(|| "+14155550134".to_owned()), to, text }),
        "agent" => Command::AgentMessage(AgentMessage { port, from, reply_to, text }),
        _ => Command::Serve(Settings { port, lines, failures: failure_modes }),
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
    pub fn environment(&self) -> Result<LocalEnv, String> {
        let mut defaults: HashMap<String, String> =
            LOCAL_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let base = format!("http://127.0.0.1:{}", self.port);
        defaults.insert("PUBLIC_BASE_URL".into(), base.clone());
        // The providers are the simulator on our own port, unless the environment names others.
        defaults.insert("GRAPH_API_BASE".into(), format!("{base}{}", crate::simulator::GRAPH_PREFIX));
        defaults.insert("TWILIO_API_BASE".into(), format!("{base}{}", crate::simulator::TWILIO_PREFIX));
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

/// Signs an inbound SMS the way Twilio does and posts it to a running local stack.
pub async fn send_sms(sms: SendSms) -> Result<(), String> {
    let settings = Settings { port: sms.port, lines: None, failures: FailureSettings::default() };
    let env = settings.environment()?;
    let to = match sms.to {
        Some(to) => to,
        None => shared::config::lines(&|name| env.get(name))
            .map_err(|e| e.to_string())?
            .iter()
            .next()
            .map(|l| l.sms_number.as_str().to_owned())
            .ok_or("no line configured")?,
    };
    let base = env.get("PUBLIC_BASE_URL").unwrap_or_default();
    let token = env.get("TWILIO_AUTH_TOKEN").unwrap_or_default();
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    let account_sid = env.get("TWILIO_ACCOUNT_SID").unwrap_or_default();
    let params = [
        ("MessageSid", sid.as_str()),
        ("SmsMessageSid", sid.as_str()),
        ("AccountSid", account_sid.as_str()),
        ("From", sms.from.as_str()),
        ("To", to.as_str()),
        ("Body", sms.text.as_str()),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ];
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let url = format!("{base}/sms/inbound");
    let signature = compute_signature(&token, &url, &owned);
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/sms/inbound", sms.port))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(encode_form(&params))
        .send()
        .await
        .map_err(|e| format!("is the local stack running on port {}? {e}", sms.port))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{status} {body}");
    if status.is_success() { Ok(()) } else { Err(format!("the webhook answered {status}")) }
}

/// Posts a Meta-signed notification of an agent's WhatsApp message to a running local stack.
pub async fn send_agent_message(message: AgentMessage) -> Result<(), String> {
    let settings = Settings { port: message.port, lines: None, failures: FailureSettings::default() };
    let env = settings.environment()?;
    let lines = shared::config::lines(&|name| env.get(name)).map_err(|e| e.to_string())?;
    let line = lines.iter().next().ok_or("no line configured")?;
    let from = match message.from {
        Some(from) => from,
        None => line.agents.first().map(|a| a.as_str().to_owned()).ok_or("the line has no agents")?,
    };
    let wamid = format!("wamid.local-agent.{}", uuid::Uuid::new_v4().simple());
    let mut whatsapp_message = serde_json::json!({
        "from": from, "id": wamid, "timestamp": jiff::Timestamp::now().as_second().to_string(),
        "type": "text", "text": { "body": message.text },
    });
    if let Some(quoted) = message.reply_to {
        whatsapp_message["context"] = serde_json::json!({ "from": line.sms_number.digits(), "id": quoted });
    }
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": line.sms_number.digits(), "phone_number_id": line.whatsapp_phone_number_id.as_str() },
            "contacts": [{ "profile": { "name": "Local Agent" }, "wa_id": from }],
            "messages": [whatsapp_message],
        }}]}],
    })
    .to_string();
    let secret = env.get("META_APP_SECRET").unwrap_or_default();
    let signature = shared::adapters::whatsapp::signature::compute_signature(&secret, body.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/whatsapp", message.port))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("is the local stack running on port {}? {e}", message.port))?;
    let status = response.status();
    println!("{status} (message {wamid})");
    if status.is_success() { Ok(()) } else { Err(format!("the webhook answered {status}")) }
}
