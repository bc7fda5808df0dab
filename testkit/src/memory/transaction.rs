//! The conditions of one of the adapter's writes, checked before anything is written.
//!
//! A cancelled `TransactWriteItems` reports every item's condition, and the adapter decides
//! by the index of the first one it looks at (`failed_condition(&reasons, i)`). The twin lists
//! the same conditions in the adapter's item order, so the same index means the same
//! outcome, and an outcome the adapter doesn't name is the same `cancelled` error.

use shared::ports::StoreError;

#[derive(Debug, Default)]
pub(super) struct Conditions {
    /// One per item of the transaction, in the adapter's order: `true` when it fails.
    failed: Vec<bool>,
}

impl Conditions {
    /// Adds the next item's condition; `false` for an item written without one.
    pub(super) fn push(&mut self, fails: bool) -> &mut Self {
        self.failed.push(fails);
        self
    }

    pub(super) fn failed(&self, index: usize) -> bool {
        self.failed.get(index).copied().unwrap_or(false)
    }

    pub(super) fn any_failed(&self) -> bool {
        self.failed.contains(&true)
    }

    /// What the adapter answers for a cancellation it has no outcome for
    /// (`dynamodb/mod.rs`'s `cancelled`).
    pub(super) fn cancelled(&self) -> StoreError {
        let codes: Vec<&str> =
            self.failed.iter().map(|&failed| if failed { "ConditionalCheckFailed" } else { "None" }).collect();
        StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
    }
}
