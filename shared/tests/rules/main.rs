//! The fast tier: every service's rules on the in-memory fakes (`dex::testing`), no server.
//! `cargo test -p dex` runs them.

mod accounts;
mod clusters;
mod first_use;
mod hat_calls;
mod last_admin;
mod login_limits;
mod offers;
mod plugs;
mod registration;
mod snapshot;
mod stats;
mod stats_limits;
mod support;
mod verifier;
mod verifier_refresh;
