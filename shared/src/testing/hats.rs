//! The outbound HAT HTTP port, faked: each HAT answers what the test set, and every call is
//! recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{DexError, DexResult};
use crate::hats::HatHttp;
use crate::hats::address::HatAddress;

/// What a fake HAT answers to `GET /publickey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HatReply {
    /// 200 with this body.
    Body(String),
    /// Another status (redirects are not followed by the real client either).
    Status(u16),
    /// No answer in time: the real client's 504.
    Timeout,
    /// No connection: the real client's 502.
    Unreachable,
}

#[derive(Clone, Default)]
pub struct FakeHats {
    replies: Arc<Mutex<HashMap<String, HatReply>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeHats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what `address` answers; unknown HATs are unreachable.
    pub fn set(&self, address: &str, reply: HatReply) {
        self.replies
            .lock()
            .expect("replies")
            .insert(address.to_owned(), reply);
    }

    pub fn serve_key(&self, address: &str, pem: &str) {
        self.set(address, HatReply::Body(pem.to_owned()));
    }

    /// The addresses asked for their key, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

impl HatHttp for FakeHats {
    async fn fetch_public_key(&self, hat: &HatAddress) -> DexResult<String> {
        let address = hat.to_string();
        self.calls.lock().expect("calls").push(address.clone());
        let reply = self.replies.lock().expect("replies").get(&address).cloned();
        // The same errors as `HatClient` for the same failures.
        match reply.unwrap_or(HatReply::Unreachable) {
            HatReply::Body(text) => Ok(text),
            HatReply::Status(status) if (300..400).contains(&status) => {
                Err(DexError::BadGateway(format!(
                    "HAT {hat} answered /publickey with a redirect ({status}); redirects are not followed"
                )))
            }
            HatReply::Status(status) => Err(DexError::BadGateway(format!(
                "HAT {hat} answered /publickey with {status}"
            ))),
            HatReply::Timeout => Err(DexError::GatewayTimeout(format!(
                "HAT {hat} did not answer in time when fetching its public key"
            ))),
            HatReply::Unreachable => Err(DexError::BadGateway(format!(
                "HAT {hat} could not be reached when fetching its public key"
            ))),
        }
    }
}
