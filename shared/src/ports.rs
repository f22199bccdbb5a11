//! Narrow ports for the things a rule must not reach directly: time, randomness and secrets.
//! Each domain's own ports (storage, the outbound HTTP to HATs) live in its `ports.rs`.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DexResult;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    fn now_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stuck at one instant, for rules that depend on time.
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);

    fn bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        buf
    }

    /// A number in `0..n` (n > 0); the modulo bias of 64 random bits is negligible here.
    fn below(&self, n: u64) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b) % n
    }

    fn hex(&self, n_bytes: usize) -> String {
        hex::encode(self.bytes(n_bytes))
    }

    /// A random (v4) UUID.
    fn uuid(&self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
}

/// The operating system's CSPRNG (through aws-lc).
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        aws_lc_rs::rand::fill(buf).expect("the system random generator failed");
    }
}

/// Secrets are JSON documents; implementations never log or format a value.
pub trait SecretStore: Send + Sync {
    /// The secret's JSON value, `None` only when the secret does not exist or has no value
    /// yet. A value that cannot be read (access denied, decryption failure, throttling, not
    /// DEX's JSON) is an error, never `None`: callers that create a missing secret must not
    /// overwrite one they merely failed to read.
    fn get_json<T: DeserializeOwned + Send>(
        &self,
        name: &str,
    ) -> impl Future<Output = DexResult<Option<T>>> + Send;
    /// Creates the secret or stores a new version of it.
    fn put_json<T: Serialize + Sync>(
        &self,
        name: &str,
        value: &T,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Stores `value` as the version named `version` (Secrets Manager's ClientRequestToken,
    /// 32 to 64 characters) and makes it current, creating the secret if needed. `Ok(false)`
    /// when that version already exists with another value: of callers racing with one
    /// version name exactly one stores its value, and the others learn they lost. Repeating a
    /// version with the same value is `Ok(true)`.
    fn put_version<T: Serialize + Sync>(
        &self,
        name: &str,
        version: &str,
        value: &T,
    ) -> impl Future<Output = DexResult<bool>> + Send;
}

/// The version name of a secret's first value: every container that finds a secret empty
/// writes its candidate under this one name, so exactly one candidate is stored.
pub const FIRST_VERSION: &str = "00000000-0000-4000-8000-000000000001";
