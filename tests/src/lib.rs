//! Test support for DEX: the test HAT cluster and helpers for the end-to-end suites.

pub mod test_hat;
pub mod support;
pub mod stats_support;
pub mod hat_support;
