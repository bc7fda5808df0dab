//! The delivery worker: its handler with built SQS events, DynamoDB and SQS on moto, the
//! providers as HTTP fakes; failpoints, store and answer faults, and its cold start.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod cold_start;
mod concurrency;
mod failpoints;
mod store_and_answer_faults;
mod worker;
