//! The local stack binary as its tests start it: a free port, a clean environment (its own
//! emulator, simulator and sample line unless a test says otherwise), `ready` awaited, and
//! Ctrl-C to stop it.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it; unwrap failing = test failing

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalStack {
    child: Child,
    pub port: u16,
    /// The line it printed when ready.
    pub ready_line: String,
}

impl LocalStack {
    /// Starts `local-stack --port <free> <args>` with `env` added to a clean environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-stack"));
        command.args(["--port", &port.to_string()]).args(args);
        for name in [
            "AWS_ENDPOINT_URL",
            "GRAPH_API_BASE",
            "TWILIO_API_BASE",
            "BRIDGE_LINES",
            "BRIDGE_LINES_FILE",
            "PUBLIC_BASE_URL",
            "META_APP_SECRET",
            "META_ACCESS_TOKEN",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = ready_tx.send(line);
                }
            }
        });
        let ready_line = ready_rx.recv_timeout(Duration::from_secs(120)).expect("the local stack prints ready");
        Self { child, port, ready_line }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Ctrl-C, as a person would: everything it started must stop, cleanly.
    pub fn stop(&mut self) {
        let interrupted = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(interrupted.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exits cleanly on Ctrl-C: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "still running 15 s after Ctrl-C");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it finds something, for at most `seconds`.
pub async fn until<T>(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out after {seconds} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
