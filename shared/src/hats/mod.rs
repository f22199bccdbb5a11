//! HATs: addresses, clusters, registration and verification of HAT-signed requests.

pub mod address;
