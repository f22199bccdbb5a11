//! A marketplace over real HTTP for the offer suites (`offers_e2e`, the fault tests): a test
//! HAT cluster certified under a fresh domain, the bootstrap admin's token, and a buyer (a
//! `marketplace` account) with its token. Each suite adds the offers it needs on top.

use serde_json::Value;

use crate::hat_support::{CertifiedCluster, certify_cluster, register_hat_ok, unique_domain};
use crate::support::{Dex, admin_token, create_account, expect_json};
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

    /// Registers (201) the buyer's offer `body` on `prefix` (`/api/v2`, ...) and, when
    /// `approve`, approves it (200); the offer as the last answer shows it.
    pub async fn register_offer(&self, prefix: &str, body: &Value, approve: bool) -> Value {
        let dex = Dex::new();
        let created = expect_json(
            dex.post_json(&format!("{prefix}/offer"), Some(&self.buyer), body)
                .await,
            201,
        )
        .await;
        if !approve {
            return created;
        }
        let id = body["offerId"].as_str().expect("the body's offerId");
        let approved = dex
            .request(
                reqwest::Method::PUT,
                &format!("{prefix}/offer/{id}?status=approved"),
                Some(&self.buyer),
            )
            .send()
            .await
            .expect("PUT status");
        expect_json(approved, 200).await
    }

    /// A running, approved offer of the buyer for at most `max` HATs, its id starting with
    /// `prefix`: started a minute ago, open for a day.
    pub async fn running_offer(&self, prefix: &str, max: u32) -> String {
        let id = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let now = crate::stats_support::now_millis();
        let body = serde_json::json!({
            "offerId": id, "title": "Locations", "description": "a month of locations",
            "starts": now - 60_000, "expires": now + 86_400_000,
            "collectionDuration": 2_592_000_000i64,
            "requiredData": {"name": "locations", "bundle": {
                "locations": {"endpoints": [{"endpoint": "rumpel/locations", "mapping": {"lat": "latitude"}}]}}},
            "requiredMinUser": 1, "requiredMaxUser": max, "status": "approved"
        });
        self.register_offer("/api/v2", &body, true).await;
        id
    }

    /// `hat` claims offer `id` with its own token (`GET /api/v2/offer/{id}/claim`).
    pub async fn claim(id: &str, hat: &TestHat) -> reqwest::Response {
        Dex::new()
            .get(
                &format!("/api/v2/offer/{id}/claim"),
                Some(&hat.dex_token(&crate::support::public_url())),
            )
            .await
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
