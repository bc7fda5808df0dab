//! Command line and environment of the local stack. Every variable of the SPEC §2 contract
//! set in the environment wins over the local default.

use std::collections::HashMap;
use std::path::PathBuf;

use shared::adapters::twilio::{compute_signature, encode_form};
use shared::config::process_env;

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
];

const USAGE: &str = "\
usage: local-stack [--port PORT] [--lines FILE]
       local-stack sms [--port PORT] [--from +E164] [--to +E164] TEXT

Starts the bridge locally (SPEC §11), or sends a Twilio-signed SMS to one that runs.";

pub enum Command {
    Serve(Settings),
    SendSms(SendSms),
}

pub struct Settings {
    pub port: u16,
    pub lines: Option<PathBuf>,
}

pub struct SendSms {
    pub port: u16,
    pub from: String,
    pub to: Option<String>,
    pub text: String,
}

pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut args = args.peekable();
    let send = args.peek().is_some_and(|a| a == "sms");
    if send {
        args.next();
    }
    let (mut port, mut lines, mut from, mut to, mut text) =
        (DEFAULT_PORT, None, "+14155550134".to_owned(), None, Vec::new());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|_| format!("--port must be a port number\n\n{USAGE}"))?
            }
            "--lines" if !send => lines = Some(PathBuf::from(value("--lines")?)),
            "--from" if send => from = value("--from")?,
            "--to" if send => to = Some(value("--to")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if send && !other.starts_with("--") => text.push(other.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if send {
        if text.is_empty() {
            return Err(format!("sms needs the TEXT to send\n\n{USAGE}"));
        }
        Ok(Command::SendSms(SendSms {
            port,
            from,
            to,
            text: text.join(" "),
        }))
    } else {
        Ok(Command::Serve(Settings { port, lines }))
    }
}

/// The environment the functions see: command-line choices, then the process environment,
/// then local defaults.
pub struct LocalEnv {
    forced: HashMap<String, String>,
    defaults: HashMap<String, String>,
}

impl LocalEnv {
    pub fn get(&self, name: &str) -> Option<String> {
        self.forced
            .get(name)
            .cloned()
            .or_else(|| process_env(name))
            .or_else(|| self.defaults.get(name).cloned())
    }

    /// Adds a default (the environment still wins).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.defaults.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl Settings {
    pub fn environment(&self) -> Result<LocalEnv, String> {
        let mut defaults: HashMap<String, String> = LOCAL_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let base = format!("http://127.0.0.1:{}", self.port);
        defaults.insert("PUBLIC_BASE_URL".into(), base.clone());
        // Until the simulator exists, WhatsApp sends go to the recorder on our own port.
        defaults.insert("GRAPH_API_BASE".into(), format!("{base}{}", crate::recorder::PREFIX));
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

pub fn index_text() -> String {
    "sms-whatsapp-bridge local stack\n\n\
     POST /sms/inbound   Twilio inbound SMS webhook (X-Twilio-Signature)\n\
     GET  /whatsapp      Meta webhook verification\n\
     POST /whatsapp      Meta webhook notifications (X-Hub-Signature-256)\n"
        .to_owned()
}

/// Signs an inbound SMS the way Twilio does and posts it to a running local stack.
pub async fn send_sms(sms: SendSms) -> Result<(), String> {
    let settings = Settings {
        port: sms.port,
        lines: None,
    };
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
    let params = [
        ("MessageSid", sid.as_str()),
        ("SmsMessageSid", sid.as_str()),
        ("AccountSid", "AC00000000000000000000000000000000"),
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
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}
