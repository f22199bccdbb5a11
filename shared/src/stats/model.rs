//! What ingestion reports and what DEX knows of a data debit.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::report::DebitEvent;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Items not counted because a cap was reached (index into the ingested items, reason).
    pub skipped: Vec<(usize, String)>,
}

/// What committing one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkCommit {
    /// Every item of the chunk is counted now, with its marker.
    Committed,
    /// Nothing was written: a condition of the chunk failed.
    Refused(Refusal),
}

/// Why a chunk was refused, as far as the refused items tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusal {
    /// The markers the refused buckets hold (a superset of the chunk's items counted before).
    pub counted: HashSet<String>,
    /// How many markers each refused bucket holds (its cap may be reached).
    pub bucket_sizes: BTreeMap<(String, u8), usize>,
    /// Endpoints whose field item has no room for the chunk's new field names.
    pub full_endpoints: BTreeSet<(String, String)>,
}

/// The latest known state of one data debit on one HAT.
#[derive(Debug, Clone, PartialEq)]
pub struct DebitState {
    pub event: DebitEvent,
    /// Epoch ms of the event on the HAT.
    pub time: i64,
}
