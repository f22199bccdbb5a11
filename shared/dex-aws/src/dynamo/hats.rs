//! Clusters and HATs on DynamoDB (shapes in `keys`).

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{Codec, get_bool, get_n, get_opt_s, get_s, get_string_list, n, s, string_list};
use super::keys::{self, gsi};
use super::{Commit, DynamoStore, Item, Query};
use dex::accounts::Account;
use dex::error::{DexError, DexResult};
use dex::hats::{Cluster, ClusterStore, HatStore, RegisteredHat};
use dex::page::{Page, PageRequest};
use dex::stats::HATS_COUNTER;
use dex::txlog::LogEvent;

impl Codec for Cluster {
    fn to_item(&self) -> Item {
        let c = self;
        let mut item = keys::cluster(&c.domain);
        item.extend([
            ("domain".to_owned(), s(&c.domain)),
            (
                "provisioners".to_owned(),
                string_list(c.provisioners.iter().cloned()),
            ),
            ("certified".to_owned(), AttributeValue::Bool(c.certified)),
            ("secretName".to_owned(), s(&c.secret_name)),
            ("createdAt".to_owned(), n(c.created_at)),
            ("updatedAt".to_owned(), n(c.updated_at)),
            ("version".to_owned(), n(c.version)),
        ]);
        item.extend(gsi("gsi1", keys::CLUSTERS, &c.domain));
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        Ok(Cluster {
            domain: get_s(item, "domain")?,
            provisioners: get_string_list(item, "provisioners"),
            certified: get_bool(item, "certified"),
            secret_name: get_s(item, "secretName")?,
            created_at: get_n(item, "createdAt")?,
            updated_at: get_n(item, "updatedAt")?,
            version: get_n(item, "version")?,
        })
    }
}

impl Codec for RegisteredHat {
    fn to_item(&self) -> Item {
        let h = self;
        let mut item = keys::hat(&h.address);
        item.extend([
            ("address".to_owned(), s(&h.address)),
            ("cluster".to_owned(), s(&h.cluster)),
            ("publicKeyPem".to_owned(), s(&h.public_key_pem)),
            ("keyFingerprint".to_owned(), s(&h.key_fingerprint)),
            ("registeredAt".to_owned(), n(h.registered_at)),
            ("keyUpdatedAt".to_owned(), n(h.key_updated_at)),
            ("version".to_owned(), n(h.version)),
        ]);
        item.extend(gsi("gsi1", keys::hats_of(&h.cluster), &h.address));
        item.extend(gsi("gsi2", keys::ALL_HATS, &h.address));
        if let Some(app) = &h.application_id {
            item.insert("applicationId".to_owned(), s(app));
        }
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        Ok(RegisteredHat {
            address: get_s(item, "address")?,
            cluster: get_s(item, "cluster")?,
            public_key_pem: get_s(item, "publicKeyPem")?,
            key_fingerprint: get_s(item, "keyFingerprint")?,
            registered_at: get_n(item, "registeredAt")?,
            key_updated_at: get_n(item, "keyUpdatedAt")?,
            application_id: get_opt_s(item, "applicationId"),
            version: get_n(item, "version")?,
        })
    }
}

impl ClusterStore for DynamoStore {
    async fn get_clusters(&self, domains: &[String]) -> DexResult<Vec<Cluster>> {
        let keys = domains.iter().map(|d| keys::cluster(d)).collect();
        self.batch_get(keys, true)
            .await?
            .iter()
            .map(Cluster::from_item)
            .collect()
    }

    async fn list_clusters(&self) -> DexResult<Vec<Cluster>> {
        let query = Query {
            index: Some("gsi1"),
            partition: keys::CLUSTERS,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(Cluster::from_item)
            .collect()
    }

    async fn save_cluster(
        &self,
        cluster: &Cluster,
        expected_version: Option<u64>,
        accounts: &[(Account, u64)],
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        let mut writes = vec![match expected_version {
            None => self.put_new(cluster.to_item()),
            Some(v) => self.put_at_version(cluster.to_item(), v, false),
        }];
        for (account, expected) in accounts {
            writes.push(self.put_at_version(account.to_item(), *expected, false));
        }
        self.commit(writes, events)
            .await?
            .or_conflict("the cluster or a provisioner account changed meanwhile; retry")?;
        Ok(())
    }
}

impl HatStore for DynamoStore {
    async fn get_hat(&self, address: &str) -> DexResult<Option<RegisteredHat>> {
        self.get_item(keys::hat(address), true)
            .await?
            .as_ref()
            .map(RegisteredHat::from_item)
            .transpose()
    }

    async fn get_hat_and_clusters(
        &self,
        address: &str,
        cluster_candidates: &[String],
    ) -> DexResult<(Option<RegisteredHat>, Vec<Cluster>)> {
        let mut keys = vec![keys::hat(address)];
        keys.extend(cluster_candidates.iter().map(|d| keys::cluster(d)));
        let mut hat = None;
        let mut clusters = Vec::new();
        for item in self.batch_get(keys, true).await? {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(keys::HAT_SK) => hat = Some(RegisteredHat::from_item(&item)?),
                _ => clusters.push(Cluster::from_item(&item)?),
            }
        }
        Ok((hat, clusters))
    }

    async fn insert_hat(&self, hat: &RegisteredHat, event: LogEvent) -> DexResult<bool> {
        let writes = vec![
            self.put_new(hat.to_item()),
            self.counter_add(HATS_COUNTER, 1),
        ];
        match self.commit(writes, vec![event]).await? {
            Commit::Done(_) => Ok(true),
            refused if refused.refused_index() == Some(0) => Ok(false),
            Commit::Refused(_) => Err(DexError::internal("counter update had a condition")),
        }
    }

    async fn replace_hat_key(
        &self,
        hat: &RegisteredHat,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        let write = self.put_at_version(hat.to_item(), expected_version, false);
        self.commit(vec![write], vec![event])
            .await?
            .or_conflict("the HAT's key changed meanwhile; retry")?;
        Ok(())
    }

    async fn list_hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<RegisteredHat>> {
        if let Some(c) = cluster {
            dex::limits::check_len("cluster", c, dex::limits::MAX_DOMAIN_LEN)?;
        }
        let (index, partition) = match cluster {
            Some(c) => ("gsi1", keys::hats_of(c)),
            None => ("gsi2", keys::ALL_HATS.to_owned()),
        };
        let query = Query {
            index: Some(index),
            partition: &partition,
            ..Query::default()
        };
        self.query_page(query, &page).await
    }
}
