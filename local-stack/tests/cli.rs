//! The binary's command line, as a newcomer meets it: `--help` answers on stdout and exits 0,
//! and a port that is taken is reported at once, with the fix, before anything starts.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::process::Command;
use std::time::{Duration, Instant};

fn local_stack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_local-stack")).args(args).output().unwrap()
}

#[test]
fn help_is_the_usage_on_stdout_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = local_stack(&[flag]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(stdout.starts_with("usage: local-stack [--port PORT]"), "{flag}: {stdout}");
        assert!(out.stderr.is_empty(), "{flag}: nothing on stderr");
    }
    let wrong = local_stack(&["--no-such-flag"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8(wrong.stderr).unwrap().contains("unknown argument `--no-such-flag`"));
}

#[test]
fn a_taken_port_is_reported_with_the_fix_before_the_emulator_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    // No AWS_ENDPOINT_URL: had it got that far, it would start its own emulator first.
    let out = Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--port", &port.to_string()])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("port {port} is already in use")), "{stderr}");
    assert!(stderr.contains(&format!("--port {}", port + 1)), "the fix is named: {stderr}");
    assert!(!stderr.contains("moto"), "nothing started: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "at once, not after the emulator: {:?}", started.elapsed());
    drop(taken);
}

/// `--emulator-port` and `--listen` (for `sam local invoke`, docs/deploying.md) refuse what
/// isn't a port or an address, naming the option, before anything starts; that they work is
/// tests/sam_env.rs, which starts the stack with `--emulator-port`.
#[test]
fn the_sam_options_refuse_bad_values() {
    for (args, message) in [
        (["--emulator-port", "0"], "--emulator-port must be a port number"),
        (["--emulator-port", "http"], "--emulator-port must be a port number"),
        (["--listen", "localhost:80"], "--listen must be an IP address"),
    ] {
        let out = local_stack(&args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
