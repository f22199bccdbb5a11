//! Secrets in memory, stored as JSON text like Secrets Manager stores them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DexError, DexResult};
use crate::ports::SecretStore;

#[derive(Clone, Default)]
pub struct MemorySecrets {
    values: Arc<Mutex<HashMap<String, String>>>,
    /// `(secret, version name) -> value`, as Secrets Manager keeps every version's value.
    versions: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl MemorySecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored text of a secret, for tests that check what was written.
    pub fn raw(&self, name: &str) -> Option<String> {
        self.values.lock().expect("secrets").get(name).cloned()
    }

    /// Stores any text, e.g. a placeholder that is not JSON.
    pub fn put_raw(&self, name: &str, text: &str) {
        self.values
            .lock()
            .expect("secrets")
            .insert(name.to_owned(), text.to_owned());
    }
}

impl SecretStore for MemorySecrets {
    async fn get_json<T: DeserializeOwned + Send>(&self, name: &str) -> DexResult<Option<T>> {
        // As the adapter: only a missing secret is absent; a value that is not ours is an
        // error (naming neither the value nor the parser's excerpt of it).
        match self.raw(name) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|_| {
                DexError::internal(format!(
                    "secret {name} holds a value DEX cannot read; fix or delete it by hand"
                ))
            }),
        }
    }

    async fn put_json<T: Serialize + Sync>(&self, name: &str, value: &T) -> DexResult<()> {
        let text = serde_json::to_string(value).map_err(DexError::internal)?;
        self.put_raw(name, &text);
        Ok(())
    }

    async fn put_version<T: Serialize + Sync>(
        &self,
        name: &str,
        version: &str,
        value: &T,
    ) -> DexResult<bool> {
        let text = serde_json::to_string(value).map_err(DexError::internal)?;
        // One lock over the check and the write: the atomicity ClientRequestToken gives.
        let mut versions = self.versions.lock().expect("secrets");
        let key = (name.to_owned(), version.to_owned());
        if let Some(stored) = versions.get(&key) {
            return Ok(*stored == text);
        }
        versions.insert(key, text.clone());
        self.put_raw(name, &text);
        Ok(true)
    }
}
