//! The SMS side's use cases (`shared::app::receive_sms`, `apply_sms_status`, `sweep_outbox`,
//! and the `RetryBudget` they spend) on the in-memory twins of the ports: each rule of
//! docs/using.md and docs/guarantees.md that these use cases carry, proven by what they
//! answer, what they leave in the store (read back through the ports), what they put on the
//! queue and what they leave in the outbox. No emulator, no HTTP: milliseconds.
//!
//! Time: receive_sms and apply_sms_status take their clock as an argument (the message's
//! `received_at`, the callback's `now`), so business hours and the outbox's grace are
//! tested with explicit timestamps. `RetryBudget` sleeps with `tokio::time::sleep` but
//! measures its budget with `std::time::Instant`, and the workspace doesn't enable tokio's
//! `test-util`, so a retry really waits (10–100 ms for a first retry): the tests that prove a
//! retry inject one or two refusals only, and a budget spent is proven with
//! `RetryBudget::none()` (exactly one try) or a budget of a few hundred milliseconds.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

#[path = "sms_use_cases/apply_sms_status.rs"]
mod apply_sms_status;
#[path = "sms_use_cases/fixture.rs"]
mod fixture;
#[path = "sms_use_cases/receive_sms.rs"]
mod receive_sms;
#[path = "sms_use_cases/sweep_outbox.rs"]
mod sweep_outbox;
