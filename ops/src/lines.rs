//! `bridge-ops lines check FILE` and `bridge-ops lines put FILE` (docs/operating.md, "Change
//! the team without a redeploy"): the lines document validated as the functions validate
//! it (`Lines::from_json`, errors naming the field), and written to the SSM parameter the
//! functions read it from (`BRIDGE_LINES_PARAM`), which they pick up within their refresh
//! interval. What they print shows numbers masked only.

use std::fmt::Write as _;
use std::path::Path;

use aws_sdk_ssm::Client as Ssm;
use aws_sdk_ssm::error::DisplayErrorContext;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType};
use shared::domain::{Lines, scrub_numbers};

/// A lines file that passed the functions' validation.
pub struct CheckedLines {
    pub lines: Lines,
    /// The document as it is written to the parameter: compact, so that more fits in a
    /// Standard parameter's 4096 characters.
    pub compact_json: String,
}

/// Reads and validates `path`; the error names the field at fault (`team.json[0].agents[1]:
/// ...`), with any number in it masked.
pub fn check(path: &Path) -> Result<CheckedLines, String> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let json = std::fs::read_to_string(path).map_err(|e| format!("can't read {}: {e}", path.display()))?;
    let lines = Lines::from_json(&name, &json).map_err(|e| scrub_numbers(&e.to_string()))?;
    // Valid lines are valid JSON: re-written without the file's spacing.
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| format!("{name}: {e}"))?;
    Ok(CheckedLines { lines, compact_json: value.to_string() })
}

/// What `lines check` prints: each line, its SMS number masked and its agents, masked.
pub fn summary(lines: &Lines) -> String {
    let mut out = String::new();
    let count = lines.iter().count();
    let _ = writeln!(out, "{count} line{}", if count == 1 { "" } else { "s" });
    for line in lines.iter() {
        let agents: Vec<String> = line.agents.iter().map(|agent| agent.masked()).collect();
        let _ = writeln!(
            out,
            "  {}: SMS {}, WhatsApp number id {}, {} agent{}: {}",
            line.id,
            line.sms_number.masked(),
            line.whatsapp_phone_number_id.as_str(),
            agents.len(),
            if agents.len() == 1 { "" } else { "s" },
            if agents.is_empty() { "none".to_owned() } else { agents.join(", ") },
        );
    }
    out
}

/// The parameter as it is now: how a new version must be written to keep it as it was.
struct Existing {
    kind: ParameterType,
    key_id: Option<String>,
    tier: Option<ParameterTier>,
}

/// Validates `path`, then writes it as the next version of `parameter` (PutParameter with
/// Overwrite), keeping the parameter's type, KMS key and tier; a parameter that doesn't
/// exist yet is created as a SecureString (agents' numbers are personal data). Returns what
/// to print: the summary and the version written.
pub async fn put(ssm: &Ssm, parameter: &str, path: &Path) -> Result<String, String> {
    let checked = check(path)?;
    let error = |e: &dyn std::error::Error| scrub_numbers(&DisplayErrorContext(e).to_string());
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(parameter)
        .build()
        .map_err(|e| error(&e))?;
    let described = ssm.describe_parameters().parameter_filters(filter).send().await.map_err(|e| error(&e))?;
    let existing = described.parameters().iter().find(|p| p.name() == Some(parameter)).map(|p| Existing {
        kind: p.r#type().cloned().unwrap_or(ParameterType::String),
        key_id: p.key_id().map(str::to_owned),
        tier: p.tier().cloned(),
    });
    let created = existing.is_none();
    let existing = existing.unwrap_or(Existing { kind: ParameterType::SecureString, key_id: None, tier: None });
    let mut request = ssm
        .put_parameter()
        .name(parameter)
        .value(&checked.compact_json)
        .r#type(existing.kind.clone())
        .overwrite(!created)
        .set_tier(existing.tier);
    if existing.kind == ParameterType::SecureString {
        request = request.set_key_id(existing.key_id);
    }
    let written = request.send().await.map_err(|e| error(&e))?;
    let mut out = summary(&checked.lines);
    let _ = writeln!(
        out,
        "{} {parameter} ({}) version {}",
        if created { "created" } else { "wrote" },
        existing.kind.as_str(),
        written.version
    );
    let _ = writeln!(out, "the functions pick it up within their refresh interval (BRIDGE_LINES_REFRESH_SECONDS)");
    Ok(out)
}

/// `bridge-ops lines …`
#[derive(clap::Subcommand)]
pub enum LinesCommand {
    /// Validate a lines file as the functions do; print its lines and agents (numbers masked)
    Check {
        /// The lines document (JSON, as docs/configuration.md describes)
        file: std::path::PathBuf,
    },
    /// Validate a lines file, then write it as the next version of the SSM parameter named by
    /// BRIDGE_LINES_PARAM; the functions pick it up without a deploy
    Put {
        /// The lines document (JSON, as docs/configuration.md describes)
        file: std::path::PathBuf,
    },
}

/// Runs a `lines` subcommand; `Ok` is what to print.
pub async fn run(command: LinesCommand, sdk: &aws_config::SdkConfig) -> Result<String, String> {
    match command {
        LinesCommand::Check { file } => {
            let checked = check(&file)?;
            Ok(format!("{} is valid: {}", file.display(), summary(&checked.lines)))
        }
        LinesCommand::Put { file } => {
            let parameter = shared::config::required(&shared::config::process_env, "BRIDGE_LINES_PARAM")
                .map_err(|e| format!("{e} (the name of the lines' SSM parameter, the stack's BridgeLinesParameter)"))?;
            put(&Ssm::new(sdk), &parameter, &file).await
        }
    }
}
