//! `ApplicationStore` in memory, with the adapter's items and conditions
//! (`dex-aws/src/dynamo/apps.rs`): the head `APP#<id>` / `APP` conditioned on its
//! `revision`, its view item and one item per version written in the same transaction,
//! consents in their HAT's partition.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Failure, MemoryStore, Write, page_of, shape};
use crate::apps::model::{AppFilter, AppKind, AppPage, AppVersion, Consent, StoredApp, Version};
use crate::apps::ports::ApplicationStore;
use crate::error::{DexError, DexResult};
use crate::page::{Page, PageRequest};
use crate::testing::limits::{self, ItemSize};
use crate::txlog::LogEvent;

#[derive(Default)]
pub(super) struct AppsState {
    apps: BTreeMap<String, StoredApp>,
    versions: BTreeMap<(String, Version), Value>,
    developers: BTreeMap<String, Value>,
    consents: Vec<Consent>,
}

fn doc_text(app_doc: &Value) -> String {
    serde_json::to_string(app_doc).expect("serialisable")
}

/// The writes of one change: head, version item, listing items put and deleted.
fn app_writes(app: &StoredApp, previous: Option<&StoredApp>) -> Vec<Write> {
    let text = doc_text(&app.doc);
    let head_size = ItemSize::default()
        .s("appId", &app.id)
        .s("kind", app.kind.as_str())
        .s("developerId", &app.developer_id)
        .s("currentVersion", &app.version.to_string())
        .s("doc", &text)
        .b("published")
        .b("suspended")
        .n("createdAt", app.created_at)
        .n("updatedAt", app.updated_at)
        .n("revision", app.revision)
        .s("gsi1pk", "APPS")
        .s("gsi1sk", &app.id)
        .s("gsi2pk", &format!("APPDEV#{}", app.developer_id))
        .s("gsi2sk", &app.id);
    let (id, stored) = (app.id.clone(), app.clone());
    let expected = previous.map(|p| p.revision);
    let condition = if expected.is_some() {
        "attribute_exists(pk) AND #r = :r"
    } else {
        "attribute_not_exists(pk)"
    };
    let mut writes = vec![Write::new(
        shape(format!("APP#{id}"), "APP", head_size, Some(condition)),
        move |st| match expected {
            None => !st.apps.apps.contains_key(&id),
            Some(r) => st.apps.apps.get(&id).is_some_and(|a| a.revision == r),
        },
        move |st| {
            st.apps.apps.insert(stored.id.clone(), stored);
        },
    )];
    let version_size = ItemSize::default()
        .s("appId", &app.id)
        .s("version", &app.version.to_string())
        .s("doc", &text)
        .s("gsi1pk", "APPVERSIONS")
        .s("gsi1sk", &format!("{}#{}", app.id, app.version.sort_key()));
    let (key, doc) = ((app.id.clone(), app.version), app.doc.clone());
    writes.push(Write::new(
        shape(
            format!("APP#{}", app.id),
            format!("V#{}", app.version.sort_key()),
            version_size,
            None,
        ),
        |_| true,
        move |st| {
            st.apps.versions.insert(key, doc);
        },
    ));
    // The view item carries the listings' sparse index attributes (the adapter's `view_item`).
    writes.push(Write::new(
        shape(format!("APP#{}", app.id), "VIEW", head_size, None),
        |_| true,
        |_| {},
    ));
    writes
}

fn listed<'a>(
    apps: impl Iterator<Item = &'a StoredApp>,
    filter: &AppFilter,
) -> impl Iterator<Item = &'a StoredApp> {
    let (unpublished, kind) = (filter.include_unpublished, filter.kind);
    apps.filter(move |a| a.listed(unpublished) && kind.is_none_or(|k: AppKind| a.kind == k))
}

impl ApplicationStore for MemoryStore {
    async fn insert_app(&self, app: &StoredApp, event: LogEvent) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        match self.commit(&mut st, app_writes(app, None), vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(format!(
                "an application {:?} exists already",
                app.id
            ))),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn get_app(&self, id: &str) -> DexResult<Option<StoredApp>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("APP#{id}"), "APP")?;
        Ok(self.lock().apps.apps.get(id).cloned())
    }

    async fn update_app(
        &self,
        app: &StoredApp,
        previous: &StoredApp,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        match self.commit(&mut st, app_writes(app, Some(previous)), vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the application changed meanwhile; read it again and retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn app_versions(&self, id: &str) -> DexResult<Vec<AppVersion>> {
        tokio::task::yield_now().await;
        Ok(self
            .lock()
            .apps
            .versions
            .iter()
            .filter(|((app, _), _)| app == id)
            .map(|((app, version), doc)| AppVersion {
                id: app.clone(),
                version: *version,
                doc: doc.clone(),
            })
            .collect())
    }

    async fn list_apps(
        &self,
        filter: &AppFilter,
        start_id: Option<&str>,
        limit: Option<usize>,
    ) -> DexResult<AppPage> {
        tokio::task::yield_now().await;
        let st = self.lock();
        let mut found: Vec<StoredApp> = listed(st.apps.apps.values(), filter)
            .filter(|a| start_id.is_none_or(|s| a.id.as_str() >= s))
            .take(limit.map_or(usize::MAX, |l| l + 1))
            .cloned()
            .collect();
        let next = match limit {
            Some(l) if found.len() > l => found.pop().map(|a| a.id),
            _ => None,
        };
        Ok(AppPage { apps: found, next })
    }

    async fn app_history(
        &self,
        include_unpublished: bool,
    ) -> DexResult<Vec<(StoredApp, Vec<AppVersion>)>> {
        tokio::task::yield_now().await;
        let st = self.lock();
        let filter = AppFilter {
            include_unpublished,
            kind: None,
        };
        Ok(listed(st.apps.apps.values(), &filter)
            .map(|app| {
                let versions = st
                    .apps
                    .versions
                    .iter()
                    .filter(|((id, _), _)| *id == app.id)
                    .map(|((id, version), doc)| AppVersion {
                        id: id.clone(),
                        version: *version,
                        doc: doc.clone(),
                    })
                    .collect();
                (app.clone(), versions)
            })
            .collect())
    }

    async fn all_apps(&self) -> DexResult<Vec<StoredApp>> {
        tokio::task::yield_now().await;
        Ok(self.lock().apps.apps.values().cloned().collect())
    }

    async fn apps_of_developer(&self, developer_id: &str) -> DexResult<Vec<StoredApp>> {
        tokio::task::yield_now().await;
        Ok(self
            .lock()
            .apps
            .apps
            .values()
            .filter(|a| a.developer_id == developer_id)
            .cloned()
            .collect())
    }

    async fn get_developer(&self, developer_id: &str) -> DexResult<Option<Value>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("DEVELOPER#{developer_id}"), "PROFILE")?;
        Ok(self.lock().apps.developers.get(developer_id).cloned())
    }

    async fn put_developer(
        &self,
        developer_id: &str,
        profile: &Value,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let text = doc_text(profile);
        let (id, profile) = (developer_id.to_owned(), profile.clone());
        let write = Write::new(
            shape(
                format!("DEVELOPER#{developer_id}"),
                "PROFILE",
                ItemSize::default().s("profile", &text),
                None,
            ),
            |_| true,
            move |st| {
                st.apps.developers.insert(id, profile);
            },
        );
        let mut st = self.lock();
        self.commit(&mut st, vec![write], vec![event])
            .map(|_| ())
            .map_err(|f| super::only_errors(f, "developer profile"))
    }

    async fn record_consent(&self, consent: &Consent, event: LogEvent) -> DexResult<()> {
        tokio::task::yield_now().await;
        let c = consent.clone();
        let write = Write::new(
            shape(
                format!("HAT#{}", consent.hat),
                format!(
                    "CONSENT#{}#{:013}#{}",
                    consent.application_id, consent.at, consent.id
                ),
                ItemSize::default()
                    .s("hat", &consent.hat)
                    .s("applicationId", &consent.application_id)
                    .s("version", &consent.version)
                    .n("at", consent.at)
                    .s("consentId", &consent.id)
                    .s("gsi1pk", &format!("CONSENTS#{}", consent.application_id))
                    .s("gsi1sk", &format!("{:013}#{}", consent.at, consent.hat))
                    .s("gsi2pk", "CONSENTS")
                    .s("gsi2sk", &format!("{:013}#{}", consent.at, consent.hat)),
                Some("attribute_not_exists(pk)"),
            ),
            |_| true,
            move |st| st.apps.consents.push(c),
        );
        let mut st = self.lock();
        self.commit(&mut st, vec![write], vec![event])
            .map(|_| ())
            .map_err(|f| super::only_errors(f, "consent"))
    }

    async fn consents(
        &self,
        hat: Option<&str>,
        application_id: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<Consent>> {
        tokio::task::yield_now().await;
        let mut sorted: Vec<(String, Consent)> = self
            .lock()
            .apps
            .consents
            .iter()
            .filter(|c| {
                hat.is_none_or(|h| c.hat == h)
                    && application_id.is_none_or(|a| c.application_id == a)
            })
            .map(|c| (format!("{:013}#{}#{}", c.at, c.hat, c.id), c.clone()))
            .collect();
        sorted.sort_by(|a, b| b.0.cmp(&a.0));
        page_of(sorted, true, &page, "consents")
    }
}
