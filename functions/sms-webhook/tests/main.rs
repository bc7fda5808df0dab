//! The SMS webhook: its router driven with signed requests, DynamoDB and SQS on moto,
//! and its Lambda binary's cold start.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod cold_start;
mod inbound;
mod status;
