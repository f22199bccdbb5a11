//! Data plugs (docs/decisions.md §8, §13 "Data plugs"): registered and approved by admins,
//! listed publicly without any hash, connected to HATs by their owner.

pub mod bcrypt_hash;
pub mod model;
pub mod ports;
pub mod service;

pub use model::{DataPlug, DataPlugView, PlugConnection, PlugListing};
pub use ports::PlugStore;
