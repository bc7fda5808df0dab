//! End-to-end tests: the handlers wired as deployed, DynamoDB and SQS on moto, the
//! providers as HTTP fakes, every request signed.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod aws_sms;
mod bad_input;
mod business_texts;
mod common;
mod delivery_under_faults;
mod digests;
mod erasure;
mod fault_injection;
mod fewer_copies;
mod media;
mod operator_tools;
mod plain_words_opt_out;
mod round_trip;
mod sms_to_whatsapp;
mod team_changes;
mod template;
mod usernames;
mod window_closed;
