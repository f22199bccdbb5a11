//! A real HTTP server that behaves like a HAT2.0 cluster, for tests.
//!
//! [`TestHatCluster::start`] serves many HATs on one `127.0.0.1` port, selected by the
//! `Host` header exactly as a multi-tenant HAT2.0 deployment does (the HAT address
//! carries the port: `alice.hubat.net:40123`). Each HAT has its own RSA key, serves it at
//! `GET /publickey`, logs its platform user in at `GET /users/access_token`, mints tokens
//! in HAT2.0's format (header, claims, `\/` escapes), records every request and can be
//! told to misbehave.
//!
//! ```no_run
//! # async fn demo() {
//! use dex_tests::test_hat::{Behaviour, TestHatCluster};
//!
//! let cluster = TestHatCluster::start().await;
//! let alice = cluster.add_hat("alice.hubat.net");
//! // What alice sends DEX with her stats: `X-Auth-Token: <token>`.
//! let token = alice.dex_token("https://dex.example.com");
//! // ... point DEX's HAT calls at 127.0.0.1:cluster.port(), register alice, post stats ...
//! # let _ = token;
//! alice.set_behaviour(Behaviour::WrongKey); // now /publickey lies about her key
//! let calls = cluster.requests_for(alice.address()); // what DEX sent her
//! # let _ = calls;
//! # }
//! ```
//!
//! The wire formats follow `docs/hats.md` §1-§2 ("Fake-HAT checklist").

mod api;
mod cluster;
mod keys;
mod server;
mod token;

pub use api::{HatUserRecord, RouteFail};
pub use cluster::{Behaviour, DEFAULT_PLATFORM_USERNAME, RecordedRequest, TestHat, TestHatCluster};
pub use keys::{
    RSA1024_PUBLIC_KEY_PEM, fresh_ec_p256_public_key_pem, fresh_rsa2048_public_key_pem, pem_encode,
    public_key_pem,
};
pub use token::{Alg, TOKEN_LIFETIME_SECS, TokenBuilder, TokenParts, split_token, tamper_payload};
