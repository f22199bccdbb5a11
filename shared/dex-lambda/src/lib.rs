//! The Lambda side of DEX: `App`, the one composition root (over the `dex-aws` adapters by
//! default), and `web`, the HTTP edge. The only crate that knows lambda_http.

pub mod app;
pub mod web;

pub use app::App;
