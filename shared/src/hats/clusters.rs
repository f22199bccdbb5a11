//! Certifying and decertifying clusters (docs/decisions.md §4). Platform credentials go to Secrets
//! Manager; the table keeps only the secret's name.

use serde::{Deserialize, Serialize};

use super::address::validate_domain;
use super::{Cluster, ClusterStore, HatStore, RegisteredHat};
use crate::accounts::{Account, AccountStore, AccountView, Actor};
use crate::config::cluster_secret_name;
use crate::error::{DexError, DexResult};
use crate::page::{Page, PageRequest};
use crate::ports::{Clock, SecretStore};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent, Subject};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCluster {
    pub domain: String,
    pub platform_username: String,
    pub platform_password: String,
    #[serde(default)]
    pub provisioners: Vec<String>,
}

/// The cluster's `platform` user, as stored in its secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct PlatformCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PlatformCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub struct ClusterService<'a, S, K> {
    pub store: &'a S,
    pub secrets: &'a K,
    /// Prefix of the deployment's secret names (the cluster's secret is named from it).
    pub secrets_prefix: &'a str,
    pub clock: &'a dyn Clock,
}

impl<S: ClusterStore + AccountStore + HatStore, K: SecretStore> ClusterService<'_, S, K> {
    /// Every cluster, certified or not.
    pub async fn list(&self) -> DexResult<Vec<Cluster>> {
        self.store.list_clusters().await
    }

    /// Registered HATs, of one cluster or all, by address.
    pub async fn hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<RegisteredHat>> {
        if let Some(c) = cluster {
            crate::limits::check_len("cluster", c, crate::limits::MAX_DOMAIN_LEN)?;
        }
        self.store.list_hats(cluster, page).await
    }

    /// Certifies a cluster (or re-certifies a decertified one) and grants its provisioners the
    /// `provisioner:<domain>` role, all logged in one transaction.
    pub async fn certify(&self, actor: &Actor, new: NewCluster) -> DexResult<Cluster> {
        let mut details = Vec::new();
        if let Err(e) = validate_domain(&new.domain) {
            details.push(format!("domain: {e}"));
        }
        if new.platform_username.trim().is_empty() {
            details.push("platformUsername: required".into());
        }
        if new.platform_password.is_empty() {
            details.push("platformPassword: required".into());
        }
        use crate::limits::{
            MAX_PLATFORM_PASSWORD, MAX_PLATFORM_USERNAME, MAX_PROVISIONERS, push_if_long,
            push_if_many,
        };
        push_if_long(
            &mut details,
            "platformUsername",
            &new.platform_username,
            MAX_PLATFORM_USERNAME,
        );
        push_if_long(
            &mut details,
            "platformPassword",
            &new.platform_password,
            MAX_PLATFORM_PASSWORD,
        );
        push_if_many(
            &mut details,
            "provisioners",
            &new.provisioners,
            MAX_PROVISIONERS,
        );
        if !details.is_empty() {
            return Err(DexError::invalid("invalid cluster", details));
        }
        let existing = self
            .store
            .get_clusters(std::slice::from_ref(&new.domain))
            .await?
            .pop();
        if existing.as_ref().is_some_and(|c| c.certified) {
            return Err(DexError::Conflict(format!(
                "cluster {} is already certified",
                new.domain
            )));
        }
        let role = Role::Provisioner(new.domain.clone());
        let mut provisioners = new.provisioners.clone();
        provisioners.sort();
        provisioners.dedup();
        let mut accounts: Vec<(Account, u64)> = Vec::new();
        let mut missing = Vec::new();
        for id in &provisioners {
            crate::accounts::check_account_id(id)?;
            match self.store.get_account(id).await? {
                Some(account) => {
                    let version = account.version;
                    accounts.push((account, version));
                }
                None => missing.push(id.as_str()),
            }
        }
        // Well-formed ids of accounts that do not exist: unknown resources, not bad input.
        if !missing.is_empty() {
            return Err(DexError::NotFound(format!(
                "no provisioner account {}",
                missing.join(", ")
            )));
        }
        let now = self.clock.now_millis();
        let cluster = Cluster {
            domain: new.domain.clone(),
            provisioners,
            certified: true,
            secret_name: cluster_secret_name(self.secrets_prefix, &new.domain),
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            version: existing.as_ref().map_or(1, |c| c.version + 1),
        };
        let mut events = vec![LogEvent::new(
            Subject::cluster(&cluster.domain),
            Kind::ClusterCertified,
            actor,
            serde_json::json!({ "provisioners": cluster.provisioners }),
        )];
        let mut changed = Vec::new();
        for (account, version) in accounts {
            if account.has(&role) {
                continue;
            }
            let before = AccountView::from(&account).roles;
            let mut next = account.clone();
            next.roles.push(role.clone());
            next.roles.sort();
            next.version = version + 1;
            next.updated_at = now;
            events.push(LogEvent::new(
                next.subject(),
                Kind::AccountRolesChanged,
                actor,
                serde_json::json!({ "from": before, "to": AccountView::from(&next).roles }),
            ));
            changed.push((next, version));
        }
        // The secret first: if the table write then fails, a retry overwrites it; the table
        // never points at a secret that does not exist.
        let credentials = PlatformCredentials {
            username: new.platform_username,
            password: new.platform_password,
        };
        self.secrets
            .put_json(&cluster.secret_name, &credentials)
            .await?;
        self.store
            .save_cluster(&cluster, existing.map(|c| c.version), &changed, events)
            .await?;
        Ok(cluster)
    }

    /// Decertifies: its HATs can no longer register or call; nothing is deleted.
    pub async fn decertify(&self, actor: &Actor, domain: &str) -> DexResult<Cluster> {
        crate::limits::check_len("domain", domain, 253)?;
        let current = self
            .store
            .get_clusters(&[domain.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| DexError::NotFound(format!("no cluster {domain}")))?;
        if !current.certified {
            return Ok(current);
        }
        let mut next = current.clone();
        next.certified = false;
        next.updated_at = self.clock.now_millis();
        next.version += 1;
        let event = LogEvent::new(
            Subject::cluster(domain),
            Kind::ClusterDecertified,
            actor,
            serde_json::json!({}),
        );
        self.store
            .save_cluster(&next, Some(current.version), &[], vec![event])
            .await?;
        Ok(next)
    }
}
