//! HATs: addresses, certified clusters, registration, and verification of HAT-signed
//! requests.

pub mod address;
pub mod calls;
pub mod clusters;
pub mod key;
pub mod model;
pub mod ports;
pub mod push;
pub mod register;
pub mod verify;

pub use model::{Cluster, ClusterView, HatView, RegisteredHat, hat_subject};
pub use ports::{
    ClusterStore, HatHttp, HatMethod, HatRequest, HatResponse, HatStore, HatTransport,
};
