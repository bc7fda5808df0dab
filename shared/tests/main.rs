//! The shared crate's adapters on the emulator: DynamoDB's item layout and the secrets
//! loader.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod dynamodb_store;
mod secrets;
