//! The applications registry and consents on DynamoDB.
//!
//! | item | pk | sk | indexes |
//! |---|---|---|---|
//! | application (current version, state) | `APP#<id>` | `APP` | gsi1 `APPS` / `<id>`, gsi2 `APPDEV#<developer id>` / `<id>`, gsi3 (not suspended) `APPS#VISIBLE` / `<id>` |
//! | its listing view | `APP#<id>` | `VIEW` | gsi1 (not suspended) `APPS#VISIBLE#<kind>`, gsi2 (published, not suspended) `APPS#PUBLISHED`, gsi3 (the same) `APPS#PUBLISHED#<kind>`, each / `<id>` |
//! | one version | `APP#<id>` | `V#<M:09>.<m:09>.<p:09>` | gsi1 `APPVERSIONS` / `<id>#<M:09>.<m:09>.<p:09>` |
//! | developer profile | `DEVELOPER#<id>` | `PROFILE` | |
//! | consent | `HAT#<address>` | `CONSENT#<app id>#<at:013>#<uuid>` | gsi1 `CONSENTS#<app id>`, gsi2 `CONSENTS`, gsi3 `CONSENTS#HAT#<address>`, each / `<at:013>#<address>#<uuid>` |
//!
//! Why this shape. HATs read the registry often (each caches for about 30 minutes), so:
//! - one application by id is one GetItem of its head, whatever the registry's size;
//! - every listing is one partition of a sparse index (`APPS#VISIBLE`, `APPS#PUBLISHED`,
//!   and each of those per kind): an application enters or leaves a listing when a change
//!   rewrites its head and view items with or without that index's attributes, in the same
//!   transaction as the change and its log entry. So a v3 page (`startId`, `limit`, `kind`,
//!   `unpublished`) is one Query (`sk >= startId`, `Limit = limit + 1`), never a filter
//!   that reads more than it answers, and the table needs no deletes;
//! - a bare-array list (v1.1, unversioned) is the pages of one such partition: one Query per
//!   MB of answer, the fewest a Query allows (at the design point, 1,000 applications of
//!   3-6 KB, 3-6 requests). A snapshot over BatchGetItem (16 MB a request) could answer in
//!   two, at the price of a rebuild after every change and a staleness rule; the registry
//!   changes rarely but HATs expect a change to show at their next refresh, so the lists read
//!   the index itself;
//! - the history is that partition plus the `APPVERSIONS` partition (every version of every
//!   application, in id and version order), grouped in memory.
//!
//! The indexes are eventually consistent: a change shows in the lists within DynamoDB's
//! index propagation (typically well under a second); reads by id are consistent.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::item::{Codec, get_bool, get_n, get_s, n, s};
use super::keys::gsi;
use super::{Commit, DynamoStore, Item, Query, Sort};
use dex::apps::model::{AppFilter, AppKind, AppPage, AppVersion, Consent, StoredApp, Version};
use dex::apps::ports::ApplicationStore;
use dex::error::{DexError, DexResult};
use dex::page::{Page, PageRequest};
use dex::txlog::LogEvent;

const ALL_APPS: &str = "APPS";
const VISIBLE: &str = "APPS#VISIBLE";
const PUBLISHED: &str = "APPS#PUBLISHED";
const VERSIONS: &str = "APPVERSIONS";
const ALL_CONSENTS: &str = "CONSENTS";

fn key(pk: String, sk: impl Into<String>) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn app_partition(id: &str) -> String {
    format!("APP#{id}")
}

fn head_key(id: &str) -> Item {
    key(app_partition(id), "APP")
}

fn view_key(id: &str) -> Item {
    key(app_partition(id), "VIEW")
}

fn version_key(id: &str, version: &Version) -> Item {
    key(app_partition(id), format!("V#{}", version.sort_key()))
}

fn developer_key(id: &str) -> Item {
    key(format!("DEVELOPER#{id}"), "PROFILE")
}

fn by_developer(id: &str) -> String {
    format!("APPDEV#{id}")
}

fn of_kind(listing: &str, kind: AppKind) -> String {
    format!("{listing}#{}", kind.as_str())
}

/// The index and partition of a listing.
fn listing(filter: &AppFilter) -> (&'static str, String) {
    match (filter.include_unpublished, filter.kind) {
        (true, None) => ("gsi3", VISIBLE.to_owned()),
        (true, Some(k)) => ("gsi1", of_kind(VISIBLE, k)),
        (false, None) => ("gsi2", PUBLISHED.to_owned()),
        (false, Some(k)) => ("gsi3", of_kind(PUBLISHED, k)),
    }
}

fn doc_text(doc: &Value) -> String {
    serde_json::to_string(doc).expect("a JSON value serialises")
}

fn parse_doc(item: &Item) -> DexResult<Value> {
    serde_json::from_str(&get_s(item, "doc")?)
        .map_err(|e| DexError::internal(format!("stored application document: {e}")))
}

fn parse_version(text: &str) -> DexResult<Version> {
    Version::parse(text)
        .ok_or_else(|| DexError::internal(format!("stored version {text:?} is not M.m.p")))
}

/// What the head and the view item both hold.
fn app_attributes(app: &StoredApp) -> Item {
    Item::from([
        ("appId".to_owned(), s(&app.id)),
        ("kind".to_owned(), s(app.kind.as_str())),
        ("developerId".to_owned(), s(&app.developer_id)),
        ("currentVersion".to_owned(), s(app.version.to_string())),
        ("doc".to_owned(), s(doc_text(&app.doc))),
        ("published".to_owned(), AttributeValue::Bool(app.published)),
        ("suspended".to_owned(), AttributeValue::Bool(app.suspended)),
        ("createdAt".to_owned(), n(app.created_at)),
        ("updatedAt".to_owned(), n(app.updated_at)),
        ("revision".to_owned(), n(app.revision)),
    ])
}

impl Codec for StoredApp {
    /// The head item.
    fn to_item(&self) -> Item {
        let mut item = head_key(&self.id);
        item.extend(app_attributes(self));
        item.extend(gsi("gsi1", ALL_APPS, &self.id));
        item.extend(gsi("gsi2", by_developer(&self.developer_id), &self.id));
        if self.visible() {
            item.extend(gsi("gsi3", VISIBLE, &self.id));
        }
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        let kind = get_s(item, "kind")?;
        Ok(StoredApp {
            id: get_s(item, "appId")?,
            kind: AppKind::parse(&kind)
                .ok_or_else(|| DexError::internal(format!("stored kind {kind:?}")))?,
            developer_id: get_s(item, "developerId")?,
            version: parse_version(&get_s(item, "currentVersion")?)?,
            doc: parse_doc(item)?,
            published: get_bool(item, "published"),
            suspended: get_bool(item, "suspended"),
            created_at: get_n(item, "createdAt")?,
            updated_at: get_n(item, "updatedAt")?,
            revision: get_n(item, "revision")?,
        })
    }
}

/// The view item: in the kind's visible listing unless suspended, in the published ones
/// when published too.
fn view_item(app: &StoredApp) -> Item {
    let mut item = view_key(&app.id);
    item.extend(app_attributes(app));
    if app.visible() {
        item.extend(gsi("gsi1", of_kind(VISIBLE, app.kind), &app.id));
        if app.published {
            item.extend(gsi("gsi2", PUBLISHED, &app.id));
            item.extend(gsi("gsi3", of_kind(PUBLISHED, app.kind), &app.id));
        }
    }
    item
}

fn version_item(app: &StoredApp) -> Item {
    let mut item = version_key(&app.id, &app.version);
    item.extend([
        ("appId".to_owned(), s(&app.id)),
        ("version".to_owned(), s(app.version.to_string())),
        ("doc".to_owned(), s(doc_text(&app.doc))),
    ]);
    item.extend(gsi(
        "gsi1",
        VERSIONS,
        format!("{}#{}", app.id, app.version.sort_key()),
    ));
    item
}

fn version_from(item: &Item) -> DexResult<AppVersion> {
    Ok(AppVersion {
        id: get_s(item, "appId")?,
        version: parse_version(&get_s(item, "version")?)?,
        doc: parse_doc(item)?,
    })
}

fn consent_sort(c: &Consent) -> String {
    format!("{:013}#{}#{}", c.at, c.hat, c.id)
}

impl Codec for Consent {
    fn to_item(&self) -> Item {
        let mut item = key(
            format!("HAT#{}", self.hat),
            format!(
                "CONSENT#{}#{:013}#{}",
                self.application_id, self.at, self.id
            ),
        );
        item.extend([
            ("hat".to_owned(), s(&self.hat)),
            ("applicationId".to_owned(), s(&self.application_id)),
            ("version".to_owned(), s(&self.version)),
            ("at".to_owned(), n(self.at)),
            ("consentId".to_owned(), s(&self.id)),
        ]);
        let sort = consent_sort(self);
        item.extend(gsi(
            "gsi1",
            format!("CONSENTS#{}", self.application_id),
            sort.clone(),
        ));
        item.extend(gsi("gsi2", ALL_CONSENTS, sort.clone()));
        item.extend(gsi("gsi3", format!("CONSENTS#HAT#{}", self.hat), sort));
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        Ok(Consent {
            hat: get_s(item, "hat")?,
            application_id: get_s(item, "applicationId")?,
            version: get_s(item, "version")?,
            at: get_n(item, "at")?,
            id: get_s(item, "consentId")?,
        })
    }
}

impl DynamoStore {
    async fn apps_of(&self, index: &str, partition: &str) -> DexResult<Vec<StoredApp>> {
        let query = Query {
            index: Some(index),
            partition,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(StoredApp::from_item)
            .collect()
    }
}

impl ApplicationStore for DynamoStore {
    async fn insert_app(&self, app: &StoredApp, event: LogEvent) -> DexResult<()> {
        let writes = vec![
            self.put_new(app.to_item()),
            self.put(view_item(app), None, &[], vec![]),
            self.put(version_item(app), None, &[], vec![]),
        ];
        match self.commit(writes, vec![event]).await? {
            Commit::Done(_) => Ok(()),
            Commit::Refused(_) => Err(DexError::Conflict(format!(
                "an application {:?} exists already",
                app.id
            ))),
        }
    }

    async fn get_app(&self, id: &str) -> DexResult<Option<StoredApp>> {
        self.get_item(head_key(id), true)
            .await?
            .as_ref()
            .map(StoredApp::from_item)
            .transpose()
    }

    async fn update_app(
        &self,
        app: &StoredApp,
        previous: &StoredApp,
        event: LogEvent,
    ) -> DexResult<()> {
        let head = self.put(
            app.to_item(),
            Some("attribute_exists(pk) AND #r = :r"),
            &[("#r", "revision")],
            vec![(":r", n(previous.revision))],
        );
        let writes = vec![
            head,
            self.put(view_item(app), None, &[], vec![]),
            self.put(version_item(app), None, &[], vec![]),
        ];
        self.commit(writes, vec![event])
            .await?
            .or_conflict("the application changed meanwhile; read it again and retry")?;
        Ok(())
    }

    async fn app_versions(&self, id: &str) -> DexResult<Vec<AppVersion>> {
        let partition = app_partition(id);
        let query = Query {
            partition: &partition,
            sort: Some(Sort::BeginsWith("V#".into())),
            consistent: true,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(version_from)
            .collect()
    }

    async fn list_apps(
        &self,
        filter: &AppFilter,
        start_id: Option<&str>,
        limit: Option<usize>,
    ) -> DexResult<AppPage> {
        let (index, partition) = listing(filter);
        let query = Query {
            index: Some(index),
            partition: &partition,
            sort: start_id.map(|id| Sort::AtLeast(id.to_owned())),
            ..Query::default()
        };
        let Some(limit) = limit else {
            let apps = self
                .query_all(&query)
                .await?
                .iter()
                .map(StoredApp::from_item)
                .collect::<DexResult<_>>()?;
            return Ok(AppPage { apps, next: None });
        };
        // One more than the page: its id is where the next page starts.
        let query = Query {
            limit: Some(limit as i32 + 1),
            ..query
        };
        let (items, _) = self.query(&query, None).await?;
        let mut apps: Vec<StoredApp> = items
            .iter()
            .map(StoredApp::from_item)
            .collect::<DexResult<_>>()?;
        let next = (apps.len() > limit).then(|| apps.pop().expect("longer than limit").id);
        Ok(AppPage { apps, next })
    }

    async fn app_history(
        &self,
        include_unpublished: bool,
    ) -> DexResult<Vec<(StoredApp, Vec<AppVersion>)>> {
        let filter = AppFilter {
            include_unpublished,
            kind: None,
        };
        let (index, partition) = listing(&filter);
        let (apps, versions) = tokio::try_join!(self.apps_of(index, &partition), async {
            let query = Query {
                index: Some("gsi1"),
                partition: VERSIONS,
                ..Query::default()
            };
            self.query_all(&query).await
        })?;
        let mut by_app: BTreeMap<String, Vec<AppVersion>> = BTreeMap::new();
        for item in &versions {
            let v = version_from(item)?;
            by_app.entry(v.id.clone()).or_default().push(v);
        }
        Ok(apps
            .into_iter()
            .map(|app| {
                let versions = by_app.remove(&app.id).unwrap_or_default();
                (app, versions)
            })
            .collect())
    }

    async fn all_apps(&self) -> DexResult<Vec<StoredApp>> {
        self.apps_of("gsi1", ALL_APPS).await
    }

    async fn apps_of_developer(&self, developer_id: &str) -> DexResult<Vec<StoredApp>> {
        self.apps_of("gsi2", &by_developer(developer_id)).await
    }

    async fn get_developer(&self, developer_id: &str) -> DexResult<Option<Value>> {
        let Some(item) = self.get_item(developer_key(developer_id), true).await? else {
            return Ok(None);
        };
        serde_json::from_str(&get_s(&item, "profile")?)
            .map(Some)
            .map_err(|e| DexError::internal(format!("stored developer profile: {e}")))
    }

    async fn put_developer(
        &self,
        developer_id: &str,
        profile: &Value,
        event: LogEvent,
    ) -> DexResult<()> {
        let mut item = developer_key(developer_id);
        item.extend([
            ("developerId".to_owned(), s(developer_id)),
            ("profile".to_owned(), s(doc_text(profile))),
        ]);
        self.commit(vec![self.put(item, None, &[], vec![])], vec![event])
            .await?
            .unconditional("developer profile put has no condition")?;
        Ok(())
    }

    async fn record_consent(&self, consent: &Consent, event: LogEvent) -> DexResult<()> {
        self.commit(vec![self.put_new(consent.to_item())], vec![event])
            .await?
            .or_conflict("consent id collision; retry")?;
        Ok(())
    }

    async fn consents(
        &self,
        hat: Option<&str>,
        application_id: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<Consent>> {
        let (index, partition, sort) = match (hat, application_id) {
            (Some(h), Some(a)) => (
                None,
                format!("HAT#{h}"),
                Some(Sort::BeginsWith(format!("CONSENT#{a}#"))),
            ),
            (Some(h), None) => (Some("gsi3"), format!("CONSENTS#HAT#{h}"), None),
            (None, Some(a)) => (Some("gsi1"), format!("CONSENTS#{a}"), None),
            (None, None) => (Some("gsi2"), ALL_CONSENTS.to_owned(), None),
        };
        let query = Query {
            index,
            partition: &partition,
            sort,
            newest_first: true,
            consistent: index.is_none(),
            ..Query::default()
        };
        self.query_page(query, &page).await
    }
}
