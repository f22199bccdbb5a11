//! Test support for DEX: the test HAT cluster and helpers for the end-to-end suites.

pub mod aws_proxy;
pub mod gateway_event;
pub mod hat_support;
pub mod market;
pub mod routes;
pub mod runtime_api;
pub mod secrets_ledger;
pub mod secrets_scan;
pub mod serve;
pub mod stats_support;
pub mod support;
pub mod test_hat;
