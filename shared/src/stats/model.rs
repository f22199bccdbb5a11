//! What ingestion reports and what DEX knows of a data debit.

use super::report::DebitEvent;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
}

/// The latest known state of one data debit on one HAT.
#[derive(Debug, Clone, PartialEq)]
pub struct DebitState {
    pub event: DebitEvent,
    /// Epoch ms of the event on the HAT.
    pub time: i64,
}
