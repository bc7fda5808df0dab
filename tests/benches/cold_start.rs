//! Cold start of each function's release binary, as Lambda runs it: the process starts, reads
//! its configuration, builds its clients, opens its connections (the warm-up), then asks the
//! Runtime API for events. A fake Runtime API hands it two events and times:
//!
//! - init: process start → its first `GET /runtime/invocation/next` (Lambda's "Init Duration");
//! - first request: event handed over → response posted (a cold start's first invocation);
//! - second request: the same, warm.
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
use support::{FUNCTIONS, FakeRuntime, events_for, lambda_env, release_binary};

#[tokio::main]
async fn main() {
    let runs: usize = support::size_arg(10, 1);
    support::build_release_binaries();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = lambda_env(&aws, &providers);

    println!("\n{runs} cold starts per function, release binaries, moto + HTTP fakes on loopback");
    println!("{:<18} {:>22} {:>22} {:>22}", "function", "init ms (p50 / max)", "1st request ms", "2nd request ms");
    let mut next_customer = 0;
    for function in FUNCTIONS {
        let mut samples = Vec::new();
        for _ in 0..runs {
            let events = events_for(function, &aws, next_customer, 2, 1).await;
            next_customer += 2;
            let runtime = FakeRuntime::start(events).await;
            let (mut child, started) = runtime.spawn(&release_binary(function), &env);
            runtime.wait_answers(2, function).await;
            let _ = child.kill();
            let _ = child.wait();
            let timings = runtime.timings(started);
            samples.push((timings.init_ms, timings.invocations_ms[0], timings.invocations_ms[1]));
        }
        let stat = |pick: fn(&(f64, f64, f64)) -> f64| {
            let values: Vec<f64> = samples.iter().map(pick).collect();
            let [p50, _, _, max] = support::percentiles(&values);
            format!("{p50:.1} / {max:.1}")
        };
        println!("{function:<18} {:>22} {:>22} {:>22}", stat(|s| s.0), stat(|s| s.1), stat(|s| s.2));
    }
}
