//! DEX domain crate: models and rules, narrow ports for storage, secrets, clock, randomness
//! and outbound HTTP, and their AWS adapters. Function binaries are thin wrappers around it.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod hats;
pub mod keyring;
pub mod limits;
pub mod ports;
pub mod roles;
pub mod secrets;
pub mod stats;
pub mod store;
pub mod time;
pub mod txlog;
pub mod web;

pub use app::App;
pub use error::{DexError, DexResult};
