//! The fast tier: every service's rules on the in-memory fakes (`dex::testing`), no server.
//! `cargo test -p dex` runs them.

mod accounts;
mod apps;
mod clusters;
mod first_use;
mod hat_calls;
mod last_admin;
mod login_limits;
mod notices;
mod offer_service;
mod offers;
mod offers_confirm;
mod offers_sweep;
mod plugs;
mod registration;
mod snapshot;
mod stats;
mod stats_limits;
mod support;
mod update_application;
mod verifier;
mod verifier_refresh;
