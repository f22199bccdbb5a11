//! DEX domain crate: models and rules, narrow ports for storage, secrets, clock, randomness
//! and outbound HTTP, and their AWS adapters. Function binaries are thin wrappers around it.

pub mod accounts;
pub mod adapters;
pub mod auth;
pub mod config;
pub mod error;
pub mod hats;
pub mod lambda;
pub mod page;
pub mod ports;
pub mod roles;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod txlog;

pub use error::{DexError, DexResult};
pub use lambda::{App, web};
