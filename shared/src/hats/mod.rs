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

/// A registered HAT under a certified cluster, for DEX to call (plug connections, offer
/// claims): its parsed address, its registration and its cluster, in one store round trip. A malformed,
/// unregistered or uncertified HAT is a 400 naming it.
pub async fn certified_hat<S: HatStore>(
    store: &S,
    hat: &str,
    allow_ports: bool,
) -> crate::error::DexResult<(address::HatAddress, RegisteredHat, Cluster)> {
    use crate::error::DexError;
    let address = address::HatAddress::parse(hat, allow_ports)
        .map_err(|e| DexError::invalid("invalid hat", vec![format!("hat: {e}")]))?;
    let candidates: Vec<String> = address.parent_domains().map(str::to_owned).collect();
    let (registered, clusters) = store
        .get_hat_and_clusters(&address.to_string(), &candidates)
        .await?;
    let registered = registered
        .ok_or_else(|| DexError::bad_request(format!("HAT {address} is not registered")))?;
    let cluster = clusters
        .into_iter()
        .find(|c| c.domain == registered.cluster && c.certified)
        .ok_or_else(|| {
            DexError::bad_request(format!("HAT {address} is not under a certified cluster"))
        })?;
    Ok((address, registered, cluster))
}
