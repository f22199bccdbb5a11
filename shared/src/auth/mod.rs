//! Credentials: password hashes, DEX's own signing keys and tokens.

pub mod dex_token;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod sealing;
pub mod tokens;
