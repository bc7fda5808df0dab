//! In-memory twins of the bridge's ports (`shared::ports`): the store's roles, the outbox
//! and the delivery queue, with the DynamoDB adapter's behaviour and none of its I/O. Use
//! cases are tested on them in milliseconds; `tests/store_contract.rs` runs one contract
//! suite on the twin and on DynamoDB (moto) so the two can't drift apart.

/// The fuzz targets' bodies (`fuzz/`), replayed on stable by `tests/fuzz_corpus.rs`.
pub mod fuzzing;
pub mod memory;
/// In-memory twins of the providers (`WhatsAppClient`, `SmsProvider`), scripted per call.
pub mod providers;
/// Helpers for tests over the wire: the emulator per test process, signed provider
/// requests, builders, captured logs.
pub mod testing;
