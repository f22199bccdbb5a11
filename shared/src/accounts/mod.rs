//! DEX accounts (docs/decisions.md §3): the model, its storage port and the use cases.

pub mod model;
pub mod ports;
pub mod service;

pub use model::{Account, AccountChange, AccountView, Actor, NewAccount, normalise_username};
pub use ports::AccountStore;
pub use service::AccountService;
