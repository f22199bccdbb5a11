//! What ingestion reports and what DEX knows of a data debit.

use std::collections::HashSet;

use super::report::DebitEvent;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
}

/// What committing one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkCommit {
    /// Every item of the chunk is counted now, with its marker.
    Committed,
    /// Nothing was written: some markers were there already. These are the markers the
    /// refused buckets hold (a superset of the chunk's items counted before).
    AlreadyCounted(HashSet<String>),
}

/// The latest known state of one data debit on one HAT.
#[derive(Debug, Clone, PartialEq)]
pub struct DebitState {
    pub event: DebitEvent,
    /// Epoch ms of the event on the HAT.
    pub time: i64,
}
