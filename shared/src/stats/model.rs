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

/// What one action of a chunk's transaction writes, in the order the store writes them, so
/// that the indexes of the refused actions tell what was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkAction {
    /// The duplicate markers of one hour and bucket (conditioned: not yet held, room left).
    Bucket(String, u8),
    /// The field counts of one endpoint (conditioned: room for its new field names).
    Endpoint(String, String),
    /// An unconditioned write (counters, descriptions, debits).
    Other,
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

impl Refusal {
    /// Records one refused action: `held` gives the markers a refused bucket holds now.
    pub fn record(
        &mut self,
        action: Option<&ChunkAction>,
        held: impl FnOnce() -> Vec<String>,
    ) -> Result<(), crate::error::DexError> {
        match action {
            Some(ChunkAction::Bucket(hour, bucket)) => {
                let held = held();
                self.bucket_sizes
                    .insert((hour.clone(), *bucket), held.len());
                self.counted.extend(held);
            }
            Some(ChunkAction::Endpoint(namespace, endpoint)) => {
                self.full_endpoints
                    .insert((namespace.clone(), endpoint.clone()));
            }
            Some(ChunkAction::Other) | None => {
                return Err(crate::error::DexError::internal(
                    "an unconditioned write failed its condition in stats ingestion",
                ));
            }
        }
        Ok(())
    }
}
