//! The in-memory twins and the use cases on them: the store contract (memory and moto),
//! the use cases of shared::app in milliseconds, and the fuzz corpus replayed.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod delivery_use_cases;
mod fuzz_corpus;
mod live_lines;
mod sms_use_cases;
mod store_contract;
mod whatsapp_use_cases;
