//! The delivery worker's use case (`shared::app::deliver_job`, `Deliverer`) on the in-memory
//! store and queue and the provider fakes: every rule of docs/guarantees.md's delivery
//! guarantee, each with the fault that would break it, in milliseconds and without an
//! emulator. Provider calls and accepted messages are counted to prove "never twice".
//!
//! Time: the tests pass explicit `now`s to the deliverer (leases, the reconciliation wait)
//! and use real time only where the deliverer sleeps or reads the monotonic clock itself
//! (pacing, a refused record's retry, the deadline): tokio's `test-util` isn't enabled in
//! the workspace, so `start_paused` isn't available. The slowest test waits about 0.9 s.
//!
//! - `once`: sent once and recorded; done jobs acknowledged; live leases waited for.
//! - `store_faults`: the store refusing the claim, calls before the send, the record after.
//! - `provider_errors`: retries and backoff, permanent errors, 131047, escalation, age.
//! - `uncertain`: lost answers, reconciled from status reports, Twilio's list, or resent.
//! - `pacing_and_deadline`: coalescing, pacing per number, the invocation's deadline.
//! - `digests`: copies of several conversations as one message under WhatsApp's pair limit.

#![allow(clippy::unwrap_used)]

#[path = "delivery_use_cases/world.rs"]
mod world;

#[path = "delivery_use_cases/once.rs"]
mod once;

#[path = "delivery_use_cases/store_faults.rs"]
mod store_faults;

#[path = "delivery_use_cases/provider_errors.rs"]
mod provider_errors;

#[path = "delivery_use_cases/uncertain.rs"]
mod uncertain;

#[path = "delivery_use_cases/pacing_and_deadline.rs"]
mod pacing_and_deadline;

#[path = "delivery_use_cases/digests.rs"]
mod digests;
