//! Clusters and HATs on DynamoDB.
//! - `CLUSTER#<domain>` / `CLUSTER`; gsi1 `CLUSTERS` / `<domain>` lists them.
//! - `HAT#<address>` / `HAT`; gsi1 `HATS#<cluster>` / `<address>`, gsi2 `HATS` / `<address>`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::dynamo::{
    CommitFailure, DynamoStore, Item, get_bool, get_n, get_opt_s, get_s, get_string_list, n, s,
    sdk_error, string_list,
};
use super::{Page, PageRequest};
use crate::accounts::Account;
use crate::error::{DexError, DexResult};
use crate::hats::{Cluster, ClusterStore, HatStore, RegisteredHat};
use crate::txlog::LogEvent;

/// DynamoDB reads at most this many keys in one BatchGetItem.
const MAX_BATCH_GET_KEYS: usize = 100;

/// The name of the counter of registered HATs.
pub const HATS_COUNTER: &str = "hats";

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn cluster_item(c: &Cluster) -> Item {
    let mut item = key(format!("CLUSTER#{}", c.domain), "CLUSTER");
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
        ("gsi1pk".to_owned(), s("CLUSTERS")),
        ("gsi1sk".to_owned(), s(&c.domain)),
    ]);
    item
}

fn cluster_from(item: &Item) -> DexResult<Cluster> {
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

fn hat_item(h: &RegisteredHat) -> Item {
    let mut item = key(format!("HAT#{}", h.address), "HAT");
    item.extend([
        ("address".to_owned(), s(&h.address)),
        ("cluster".to_owned(), s(&h.cluster)),
        ("publicKeyPem".to_owned(), s(&h.public_key_pem)),
        ("keyFingerprint".to_owned(), s(&h.key_fingerprint)),
        ("registeredAt".to_owned(), n(h.registered_at)),
        ("keyUpdatedAt".to_owned(), n(h.key_updated_at)),
        ("version".to_owned(), n(h.version)),
        ("gsi1pk".to_owned(), s(format!("HATS#{}", h.cluster))),
        ("gsi1sk".to_owned(), s(&h.address)),
        ("gsi2pk".to_owned(), s("HATS")),
        ("gsi2sk".to_owned(), s(&h.address)),
    ]);
    if let Some(app) = &h.application_id {
        item.insert("applicationId".to_owned(), s(app));
    }
    item
}

fn hat_from(item: &Item) -> DexResult<RegisteredHat> {
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

impl DynamoStore {
    /// Reads the given keys in one BatchGetItem per 100 keys, DynamoDB's limit (re-asking for
    /// unprocessed keys). Callers keep their key counts small; this only keeps a larger one
    /// from becoming a 500.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> DexResult<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            found.extend(self.batch_get_one(chunk.to_vec(), consistent).await?);
        }
        Ok(found)
    }

    async fn batch_get_one(&self, keys: Vec<Item>, consistent: bool) -> DexResult<Vec<Item>> {
        let mut found = Vec::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(consistent)
            .build()
            .map_err(DexError::internal)?;
        let mut request = HashMap::from([(self.table.clone(), request)]);
        for attempt in 1..=8 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(sdk_error)?;
            found.extend(
                out.responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            match out.unprocessed_keys() {
                Some(rest) if !rest.is_empty() => {
                    request = rest.clone();
                    self.backoff(attempt).await;
                }
                _ => return Ok(found),
            }
        }
        Err(DexError::Throttled("DynamoDB kept keys unprocessed".into()))
    }
}

impl ClusterStore for DynamoStore {
    async fn get_clusters(&self, domains: &[String]) -> DexResult<Vec<Cluster>> {
        let keys = domains
            .iter()
            .map(|d| key(format!("CLUSTER#{d}"), "CLUSTER"))
            .collect();
        self.batch_get(keys, true)
            .await?
            .iter()
            .map(cluster_from)
            .collect()
    }

    async fn list_clusters(&self) -> DexResult<Vec<Cluster>> {
        self.query_all(Some("gsi1"), "CLUSTERS".to_owned())
            .await?
            .iter()
            .map(cluster_from)
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
            None => self.put(
                cluster_item(cluster),
                Some("attribute_not_exists(pk)"),
                &[],
                vec![],
            ),
            Some(v) => self.put(
                cluster_item(cluster),
                Some("#v = :v"),
                &[("#v", "version")],
                vec![(":v", n(v))],
            ),
        }];
        for (account, expected) in accounts {
            writes.push(self.put(
                super::dynamo_accounts::account_item(account),
                Some("#v = :v"),
                &[("#v", "version")],
                vec![(":v", n(expected))],
            ));
        }
        match self.commit(writes, events).await {
            Ok(_) => Ok(()),
            Err(CommitFailure::Condition(_)) => Err(DexError::Conflict(
                "the cluster or a provisioner account changed meanwhile; retry".into(),
            )),
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }
}

impl HatStore for DynamoStore {
    async fn get_hat(&self, address: &str) -> DexResult<Option<RegisteredHat>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("HAT#{address}"), "HAT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(hat_from).transpose()
    }

    async fn get_hat_and_clusters(
        &self,
        address: &str,
        cluster_candidates: &[String],
    ) -> DexResult<(Option<RegisteredHat>, Vec<Cluster>)> {
        let mut keys = vec![key(format!("HAT#{address}"), "HAT")];
        keys.extend(
            cluster_candidates
                .iter()
                .map(|d| key(format!("CLUSTER#{d}"), "CLUSTER")),
        );
        let mut hat = None;
        let mut clusters = Vec::new();
        for item in self.batch_get(keys, true).await? {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some("HAT") => hat = Some(hat_from(&item)?),
                _ => clusters.push(cluster_from(&item)?),
            }
        }
        Ok((hat, clusters))
    }

    async fn insert_hat(&self, hat: &RegisteredHat, event: LogEvent) -> DexResult<bool> {
        let writes = vec![
            self.put(hat_item(hat), Some("attribute_not_exists(pk)"), &[], vec![]),
            self.counter_add(HATS_COUNTER, 1),
        ];
        match self.commit(writes, vec![event]).await {
            Ok(_) => Ok(true),
            Err(f) if f.failed_index() == Some(0) => Ok(false),
            Err(CommitFailure::Condition(_)) => {
                Err(DexError::internal("counter update had a condition"))
            }
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }

    async fn replace_hat_key(
        &self,
        hat: &RegisteredHat,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        let write = self.put(
            hat_item(hat),
            Some("#v = :v"),
            &[("#v", "version")],
            vec![(":v", n(expected_version))],
        );
        match self.commit(vec![write], vec![event]).await {
            Ok(_) => Ok(()),
            Err(CommitFailure::Condition(_)) => Err(DexError::Conflict(
                "the HAT's key changed meanwhile; retry".into(),
            )),
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }

    async fn list_hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<RegisteredHat>> {
        if let Some(c) = cluster {
            crate::limits::check_len("cluster", c, 253)?;
        }
        let (index, partition) = match cluster {
            Some(c) => ("gsi1", format!("HATS#{c}")),
            None => ("gsi2", "HATS".to_owned()),
        };
        self.query_page(Some(index), &partition, None, &page, hat_from)
            .await
    }
}
