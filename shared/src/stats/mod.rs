//! Statistics (docs/decisions.md §7): exactly-once ingestion of HAT reports and the public figures.

pub mod ingest;
pub mod limits;
pub mod model;
pub mod ports;
pub mod report;
pub mod service;
pub mod snapshot;
pub mod tree;

pub use model::{ChunkAction, ChunkCommit, DebitState, IngestOutcome, Refusal};
pub use ports::StatsStore;
pub use snapshot::{PublicStats, SnapshotCache, SnapshotStore};

/// Counter names of the public figures.
pub const DATA_IN: &str = "data-in";
pub const DATA_OUT: &str = "data-out";
pub const DATA_PLUGS: &str = "plugs";
pub const OFFER_CLAIMS: &str = "offer-claims";
/// Registered HATs, counted when a HAT registers.
pub const HATS_COUNTER: &str = "hats";
