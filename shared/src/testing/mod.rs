//! In-memory implementations of every port (feature `testing`), so the rules of the services
//! run in unit tests without DynamoDB, Secrets Manager or HATs. `MemoryStore` keeps the
//! adapter's conditional and transactional semantics and refuses, like DynamoDB, what the
//! real table would refuse (`limits`).

pub mod apps;
mod clock;
mod hats;
pub mod limits;
mod memory;
mod secrets;

pub use clock::{SeededRandom, SettableClock};
pub use hats::{Fail, FakeCall, FakeHats, HatReply};
pub use memory::MemoryStore;
pub use secrets::MemorySecrets;
