//! The functions' log lines, as `lambda_runtime`'s default subscriber sets them (JSON when
//! Lambda's `AWS_LAMBDA_LOG_FORMAT` is `JSON`, no time or target: Lambda adds its own), with a
//! filter that needs no regex engine: `tracing_subscriber`'s `EnvFilter` was ~0.38 MB of each
//! binary (issue 17). The filter is `AWS_LAMBDA_LOG_LEVEL` (the template's `LoggingConfig`),
//! else `RUST_LOG` as plain directives (`info`, `info,shared=debug`), else INFO.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process's subscriber; call once, first thing in `main`.
pub fn init_logs() {
    let filter = filter(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(), std::env::var("RUST_LOG").ok());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let lines = tracing_subscriber::fmt::layer().with_target(false).without_time();
    let registry = tracing_subscriber::registry().with(filter);
    if json { registry.with(lines.json()).init() } else { registry.with(lines).init() }
}

/// Lambda's level wins over `RUST_LOG` (read as `EnvFilter` reads plain directives); with
/// neither, or a Lambda level that isn't one, INFO.
fn filter(lambda_level: Option<String>, rust_log: Option<String>) -> Targets {
    // Lambda's levels are TRACE…ERROR and FATAL, which tracing calls ERROR.
    let lambda_level = lambda_level
        .map(|l| if l.eq_ignore_ascii_case("fatal") { "error".to_owned() } else { l })
        .and_then(|l| LevelFilter::from_str(&l).ok());
    if let Some(level) = lambda_level {
        return Targets::new().with_default(level);
    }
    rust_log
        .and_then(|directives| Targets::from_str(&directives).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn allows(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn lambdas_level_wins_then_rust_log_then_info() {
        let lambda = filter(Some("WARN".into()), Some("debug".into()));
        assert!(allows(&lambda, "shared", Level::WARN) && !allows(&lambda, "shared", Level::INFO));
        let fatal = filter(Some("FATAL".into()), None);
        assert!(allows(&fatal, "shared", Level::ERROR) && !allows(&fatal, "shared", Level::WARN));
        let per_target = filter(None, Some("warn,shared=debug".into()));
        assert!(allows(&per_target, "shared::app", Level::DEBUG) && !allows(&per_target, "hyper", Level::INFO));
        for unset_or_bad in [filter(None, None), filter(Some("loud".into()), None)] {
            assert!(allows(&unset_or_bad, "shared", Level::INFO) && !allows(&unset_or_bad, "shared", Level::DEBUG));
        }
    }
}
