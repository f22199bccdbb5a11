//! DEX domain crate: models and rules, the narrow ports they need (storage, secrets, clock,
//! randomness, outbound HTTP to HATs) and the use cases over them. It knows neither AWS nor
//! Lambda: the adapters are `dex-aws`, the wiring and HTTP edge `dex-lambda`.

pub mod accounts;
pub mod apps;
pub mod auth;
pub mod config;
pub mod error;
pub mod hats;
pub mod limits;
pub mod notices;
pub mod offers;
pub mod page;
pub mod plugs;
pub mod ports;
pub mod retry;
pub mod roles;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod txlog;

pub use error::{DexError, DexResult};
