//! The Lambda side: `App`, the one composition root, and `web`, the HTTP edge. The only
//! modules that know lambda_http.

pub mod app;
pub mod web;

pub use app::App;
