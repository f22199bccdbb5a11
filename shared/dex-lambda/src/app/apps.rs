//! The registry's wiring, in a block of its own: only the application store is required.

use dex::apps::{ApplicationService, ApplicationStore};

use super::App;

impl<S: ApplicationStore, K, H> App<S, K, H> {
    /// The applications registry and consents.
    pub fn apps(&self) -> ApplicationService<'_, S> {
        ApplicationService {
            store: &self.store,
            clock: &*self.clock,
            random: &*self.random,
        }
    }
}
