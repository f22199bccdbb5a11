//! A marketplace over real HTTP for the offer suites (`offers_e2e`, the fault tests): a test
//! HAT cluster certified under a fresh domain, the bootstrap admin's token, and a buyer (a
//! `marketplace` account) with its token. Each suite adds the offers it needs on top.

use crate::hat_support::{CertifiedCluster, certify_cluster, register_hat_ok, unique_domain};
use crate::support::{Dex, admin_token, create_account};
use crate::test_hat::{TestHat, TestHatCluster};

pub struct Market {
    pub hats: TestHatCluster,
    pub cluster: CertifiedCluster,
    /// The bootstrap admin's token.
    pub admin: String,
    pub buyer_id: String,
    /// The buyer's token.
    pub buyer: String,
}

impl Market {
    pub async fn start() -> Self {
        let admin = admin_token().await;
        let hats = TestHatCluster::start().await;
        let (user, password) = hats.platform_credentials();
        let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
        let (buyer_id, username, password) = create_account(&admin, &["marketplace"]).await;
        let buyer = Dex::new().token(&username, &password).await;
        Self {
            hats,
            cluster,
            admin,
            buyer_id,
            buyer,
        }
    }

    /// A new HAT `<label>.<cluster>` of the test cluster, registered with DEX.
    pub async fn hat(&self, label: &str) -> TestHat {
        let label = format!("{label}.{}", self.cluster.domain);
        let hat = tokio::task::block_in_place(|| self.hats.add_hat(&label));
        register_hat_ok(hat.address()).await;
        hat
    }

    /// A marketplace account other than the buyer, with its token.
    pub async fn other_buyer(&self) -> String {
        let (_, username, password) = create_account(&self.admin, &["marketplace"]).await;
        Dex::new().token(&username, &password).await
    }

    /// The data debits DEX posted to `hat` (each claim's HAT side posts one).
    pub fn debit_posts(&self, hat: &TestHat) -> usize {
        self.hats
            .requests_for(hat.address())
            .iter()
            .filter(|r| r.method == "POST" && r.path.starts_with("/api/v2.6/data-debit/"))
            .count()
    }
}
