//! One warm instance of each function's release binary, as Lambda runs it (one event at a
//! time through the Runtime API), fed a stream of events against the moto emulator and
//! instantly answering provider fakes:
//!
//! - duration per invocation (what Lambda bills): p50 / p95 / p99 / max;
//! - the function's own CPU time per invocation (user + system, from /proc: the emulator and
//!   the fakes run in other processes and are not counted);
//! - peak resident memory (VmHWM) after the whole run: what the 256 MB setting must hold.
//!
//! ```text
//! cargo bench -p e2e-tests --bench lambda_load              # 300 invocations per webhook
//! cargo bench -p e2e-tests --bench lambda_load -- 1000
//! ```
//!
//! The worker gets a tenth as many batches of 10 jobs (the template's `WorkerBatchSize`),
//! each job a different customer, so its figures are per batch and per job.

#![allow(clippy::unwrap_used)] // a failed unwrap is the bench failing

mod support;

use bridge_testkit::testing::{FakeProviders, TestAws};
use support::{FUNCTIONS, FakeRuntime, cpu_seconds, events_for, lambda_env, peak_rss_kib, percentiles, release_binary};

const WORKER_BATCH: usize = 10;

#[tokio::main]
async fn main() {
    let invocations: usize = support::size_arg(300, 4);
    support::build_release_binaries();
    let providers = FakeProviders::start().await;

    println!(
        "\n{invocations} invocations per webhook (a tenth as many for the worker), one warm instance each, release binaries"
    );
    println!("(moto + HTTP fakes on loopback; the worker's events are batches of {WORKER_BATCH} jobs)\n");
    println!(
        "{:<18} {:>10} {:>34} {:>16} {:>12}",
        "function", "per second", "duration ms p50 / p95 / p99 / max", "CPU ms / invoc.", "peak RSS MB"
    );
    let mut first_customer = 0;
    for function in FUNCTIONS {
        // A table of its own per function: moto slows down as a table grows.
        let aws = TestAws::new().await;
        let env = lambda_env(&aws, &providers);
        // The worker's jobs must be recorded first, one moto transaction each (and moto's
        // transactions slow down as the table grows): a tenth as many batches of ten jobs.
        let (batch, invocations) = if function == "delivery-worker" {
            (WORKER_BATCH, (invocations / WORKER_BATCH).max(if support::smoke() { 1 } else { 10 }))
        } else {
            (1, invocations)
        };
        let events = events_for(function, &aws, first_customer, invocations + 1, batch).await;
        first_customer += (invocations + 1) * batch;

        let runtime = FakeRuntime::start(events).await;
        let (mut child, started) = runtime.spawn(&release_binary(function), &env);
        // The first invocation is the cold one: the figures are for the warm ones after it.
        runtime.wait_answers(1, function).await;
        let cpu_before = cpu_seconds(child.id());
        let warm_from = std::time::Instant::now();
        runtime.wait_answers(invocations + 1, function).await;
        let wall = warm_from.elapsed().as_secs_f64();
        let cpu = cpu_seconds(child.id()) - cpu_before;
        let rss = peak_rss_kib(child.id());
        let _ = child.kill();
        let _ = child.wait();

        let timings = runtime.timings(started);
        let [p50, p95, p99, max] = percentiles(&timings.invocations_ms[1..]);
        println!(
            "{function:<18} {:>10.1} {:>34} {:>16.2} {:>12.1}",
            invocations as f64 / wall,
            format!("{p50:.1} / {p95:.1} / {p99:.1} / {max:.1}"),
            cpu * 1000.0 / invocations as f64,
            rss as f64 / 1024.0
        );
        if batch > 1 {
            println!(
                "{:<18} {:>10.1} {:>34} {:>16.2}",
                "  per job",
                (invocations * batch) as f64 / wall,
                format!("{:.1} (mean)", timings.invocations_ms[1..].iter().sum::<f64>() / (invocations * batch) as f64),
                cpu * 1000.0 / (invocations * batch) as f64
            );
        }
    }
}
