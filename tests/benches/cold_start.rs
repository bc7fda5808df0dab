//! Cold start of each function's release binary, as Lambda runs it: the process starts, reads
//! its configuration, builds its clients, opens its connections (the warm-up), then asks the
//! Runtime API for events. A fake Runtime API hands it two events and times:
//!
//! - init: process start → its first `GET /runtime/invocation/next` (Lambda's "Init Duration");
//! - first request: event handed over → response posted (a cold start's first invocation);
//! - second request: the same, warm.
//!
//! A hello-world function (`examples/hello_world.rs`: the same runtime, a constant answer)
//! runs first, as the baseline each function's init is divided by. The warm-up's own time,
//! from the function's "connections opened during init" log line, is shown apart: init less
//! the warm-up is the binary's start, configuration and clients.
//!
//! The AWS side is the moto emulator and the providers are HTTP fakes, all on loopback over
//! plain HTTP: no TLS and no network latency, which the warm-up exists to take off the first
//! request in AWS. What this measures is the binaries' own start and first-request work.
//!
//! ```text
//! cargo bench -p e2e-tests --bench cold_start            # 10 cold starts per function
//! cargo bench -p e2e-tests --bench cold_start -- 30
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is the bench failing

mod support;

use bridge_testkit::testing::{FakeProviders, TestAws};
use serde_json::json;
use support::{FUNCTIONS, FakeRuntime, events_for, lambda_env, release_binary};

const HELLO_WORLD: &str = "hello-world";

#[tokio::main]
async fn main() {
    let runs: usize = support::size_arg(10, 1);
    support::build_release_binaries();
    build_hello_world();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = lambda_env(&aws, &providers);

    println!("\n{runs} cold starts per function, release binaries, moto + HTTP fakes on loopback");
    println!(
        "{:<18} {:>22} {:>14} {:>20} {:>14} {:>22} {:>22}",
        "function",
        "init ms (p50 / max)",
        "÷ hello-world",
        "of which warm-up ms",
        "rest ÷ hello",
        "1st request ms",
        "2nd request ms"
    );
    let mut next_customer = 0;
    let mut hello_world_init = f64::NAN;
    for function in [HELLO_WORLD].into_iter().chain(FUNCTIONS) {
        let mut samples = Vec::new();
        for _ in 0..runs {
            let (events, binary) = if function == HELLO_WORLD {
                (vec![json!({}); 2], release_binary("examples/hello_world"))
            } else {
                let events = events_for(function, &aws, next_customer, 2, 1).await;
                next_customer += 2;
                (events, release_binary(function))
            };
            let runtime = FakeRuntime::start(events).await;
            let log = std::env::temp_dir().join(format!("cold-start-{}-{function}.log", std::process::id()));
            let (mut child, started) =
                runtime.spawn_logging_to(&binary, &env, std::fs::File::create(&log).unwrap().into());
            runtime.wait_answers(2, function).await;
            let _ = child.kill();
            let _ = child.wait();
            let timings = runtime.timings(started);
            let warm_up = warm_up_ms(&std::fs::read_to_string(&log).unwrap_or_default());
            let _ = std::fs::remove_file(&log);
            samples.push((timings.init_ms, timings.invocations_ms[0], timings.invocations_ms[1], warm_up));
        }
        let stat = |pick: fn(&(f64, f64, f64, f64)) -> f64| {
            let values: Vec<f64> = samples.iter().map(pick).collect();
            let [p50, _, _, max] = support::percentiles(&values);
            (p50, format!("{p50:.1} / {max:.1}"))
        };
        let (init_p50, init) = stat(|s| s.0);
        if function == HELLO_WORLD {
            hello_world_init = init_p50;
        }
        let ratio = format!("{:.1}x", init_p50 / hello_world_init);
        let (_, warm_up) = stat(|s| s.3);
        let (rest_p50, _) = stat(|s| s.0 - s.3);
        let rest_ratio = format!("{:.1}x", rest_p50 / hello_world_init);
        println!(
            "{function:<18} {init:>22} {ratio:>14} {warm_up:>20} {rest_ratio:>14} {:>22} {:>22}",
            stat(|s| s.1).1,
            stat(|s| s.2).1
        );
    }
}

/// The warm-up's duration from the function's JSON log line (0 for the hello-world, which
/// has none).
fn warm_up_ms(log: &str) -> f64 {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["message"] == "connections opened during init")
        .and_then(|line| line["fields"]["elapsed_ms"].as_f64())
        .unwrap_or(0.0)
}

/// Builds the hello-world function (an example of this crate) as the functions are built.
fn build_hello_world() {
    let mut args = vec!["build", "-p", "e2e-tests", "--example", "hello_world"];
    if !support::smoke() {
        args.push("--release");
    }
    let built = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(&args)
        .status()
        .unwrap();
    assert!(built.success());
}
