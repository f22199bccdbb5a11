//! The registry's use cases (docs/decisions.md §10, §13.3, §13.4).

use serde_json::{Value, json};

use super::model::{
    AppFilter, AppKind, AppPage, AppVersion, ApplicationDoc, Consent, StoredApp,
    check_developer_id, check_id, stamp_published,
};
use super::ports::ApplicationStore;
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::page::{Page, PageRequest};
use crate::ports::{Clock, Random};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent, Subject};

/// The most a v3 page holds.
pub const MAX_PAGE: usize = 200;

pub struct ApplicationService<'a, S> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

/// Admins and the operator manage any application; a developer those of its own ids.
fn manages(actor: &Actor, developer_id: &str) -> bool {
    match actor {
        Actor::Operator => true,
        Actor::Account(a) => {
            a.has(&Role::Admin) || a.has(&Role::Developer(developer_id.to_owned()))
        }
        _ => false,
    }
}

fn forbidden(developer_id: &str) -> DexError {
    DexError::Forbidden(format!(
        "this needs the admin role or the role developer:{developer_id}"
    ))
}

fn not_found(id: &str) -> DexError {
    DexError::NotFound(format!("no application {id:?}"))
}

/// A v3 listing's query: `startId`, `limit`, `kind`, `unpublished`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: AppFilter,
    pub start_id: Option<String>,
    pub limit: Option<usize>,
}

impl ListQuery {
    /// Reads the query values; a bad one is a 400 naming it.
    pub fn parse(
        unpublished: Option<&str>,
        kind: Option<&str>,
        start_id: Option<&str>,
        limit: Option<&str>,
    ) -> DexResult<Self> {
        let include_unpublished = parse_unpublished(unpublished)?;
        let kind = kind
            .map(|k| {
                AppKind::parse(k).ok_or_else(|| {
                    DexError::invalid(
                        "invalid kind",
                        vec!["kind: one of App, DataPlug, Tool, Contract".into()],
                    )
                })
            })
            .transpose()?;
        let limit = limit
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or_else(|| {
                        DexError::invalid("invalid limit", vec![format!("limit: 1 to {MAX_PAGE}")])
                    })
            })
            .transpose()?;
        if let Some(s) = start_id {
            crate::limits::check_len("startId", s, super::model::MAX_ID)?;
        }
        Ok(Self {
            filter: AppFilter {
                include_unpublished,
                kind,
            },
            start_id: start_id.map(str::to_owned),
            limit,
        })
    }
}

/// `unpublished=true|false` (absent: false).
pub fn parse_unpublished(value: Option<&str>) -> DexResult<bool> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(DexError::invalid(
            "invalid unpublished",
            vec!["unpublished: true or false".into()],
        )),
    }
}

impl<S: ApplicationStore> ApplicationService<'_, S> {
    /// Validates a body and applies the developer's stored profile, if any.
    async fn document(&self, body: Value) -> DexResult<ApplicationDoc> {
        let mut doc = ApplicationDoc::parse(body)?;
        if let Some(profile) = self.store.get_developer(&doc.developer_id).await? {
            doc.doc.insert("developer".into(), profile);
        }
        Ok(doc)
    }

    fn check_path_id(path_id: &str, doc: &ApplicationDoc) -> DexResult<()> {
        if doc.id != path_id {
            return Err(DexError::invalid(
                "the body's id is not the path's",
                vec![format!("id: must be {path_id:?}")],
            ));
        }
        Ok(())
    }

    /// A new application (201), unpublished whatever its body says.
    pub async fn create(&self, actor: &Actor, body: Value) -> DexResult<StoredApp> {
        let mut doc = self.document(body).await?;
        if !manages(actor, &doc.developer_id) {
            return Err(forbidden(&doc.developer_id));
        }
        doc.set_published(false);
        let now = self.clock.now_millis();
        let app = StoredApp {
            id: doc.id.clone(),
            kind: doc.kind,
            developer_id: doc.developer_id.clone(),
            version: doc.version,
            published: false,
            suspended: false,
            created_at: now,
            updated_at: now,
            revision: 1,
            doc: doc.into_value(),
        };
        let event = LogEvent::new(
            Subject::app(&app.id),
            Kind::AppCreated,
            actor,
            json!({"version": app.version.to_string(), "kind": app.kind.as_str(), "developerId": app.developer_id}),
        );
        self.store.insert_app(&app, event).await?;
        Ok(app)
    }

    /// Any application, suspended ones included, for those who may manage it.
    async fn managed(&self, actor: &Actor, id: &str) -> DexResult<StoredApp> {
        let app = self.stored(id).await?.ok_or_else(|| not_found(id))?;
        if !manages(actor, &app.developer_id) {
            return Err(forbidden(&app.developer_id));
        }
        Ok(app)
    }

    async fn stored(&self, id: &str) -> DexResult<Option<StoredApp>> {
        if check_id(id).is_err() {
            return Ok(None);
        }
        self.store.get_app(id).await
    }

    /// Replaces the current version's content (same version), keeping the publication.
    pub async fn replace(&self, actor: &Actor, id: &str, body: Value) -> DexResult<StoredApp> {
        let current = self.managed(actor, id).await?;
        let doc = self.document(body).await?;
        Self::check_path_id(id, &doc)?;
        if !manages(actor, &doc.developer_id) {
            return Err(forbidden(&doc.developer_id));
        }
        if doc.version != current.version {
            return Err(DexError::invalid(
                "a replacement keeps the current version",
                vec![format!(
                    "info.version: must be {} (POST .../versions adds a new one)",
                    current.version
                )],
            ));
        }
        self.write(actor, current, doc, Kind::AppReplaced).await
    }

    /// A new version, greater than the current one; the old one stays in the history.
    pub async fn new_version(&self, actor: &Actor, id: &str, body: Value) -> DexResult<StoredApp> {
        let current = self.managed(actor, id).await?;
        let doc = self.document(body).await?;
        Self::check_path_id(id, &doc)?;
        if !manages(actor, &doc.developer_id) {
            return Err(forbidden(&doc.developer_id));
        }
        if doc.version <= current.version {
            return Err(DexError::invalid(
                "a new version must be greater than the current one",
                vec![format!(
                    "info.version: greater than {}, got {}",
                    current.version, doc.version
                )],
            ));
        }
        self.write(actor, current, doc, Kind::AppVersioned).await
    }

    async fn write(
        &self,
        actor: &Actor,
        current: StoredApp,
        mut doc: ApplicationDoc,
        kind: Kind,
    ) -> DexResult<StoredApp> {
        doc.set_published(current.published);
        let next = StoredApp {
            kind: doc.kind,
            developer_id: doc.developer_id.clone(),
            version: doc.version,
            updated_at: self.clock.now_millis(),
            revision: current.revision + 1,
            doc: doc.into_value(),
            ..current.clone()
        };
        let mut details = json!({
            "version": next.version.to_string(),
            "changed": changed_fields(&current.doc, &next.doc),
        });
        if kind == Kind::AppVersioned {
            details["previousVersion"] = current.version.to_string().into();
        }
        if next.developer_id != current.developer_id {
            details["developerId"] = next.developer_id.clone().into();
        }
        let event = LogEvent::new(Subject::app(&next.id), kind, actor, details);
        self.store.update_app(&next, &current, event).await?;
        Ok(next)
    }

    /// Publishes (and un-suspends) an application.
    pub async fn publish(&self, actor: &Actor, id: &str) -> DexResult<StoredApp> {
        let current = self.managed(actor, id).await?;
        self.set_state(actor, current, true, false, Kind::AppPublished)
            .await
    }

    /// Suspends an application: hidden from every list, by-id fetch and consent until it is
    /// published again.
    pub async fn suspend(&self, actor: &Actor, id: &str) -> DexResult<StoredApp> {
        let current = self.managed(actor, id).await?;
        self.set_state(actor, current, false, true, Kind::AppSuspended)
            .await
    }

    async fn set_state(
        &self,
        actor: &Actor,
        current: StoredApp,
        published: bool,
        suspended: bool,
        kind: Kind,
    ) -> DexResult<StoredApp> {
        if current.published == published && current.suspended == suspended {
            return Ok(current);
        }
        let mut next = current.clone();
        next.published = published;
        next.suspended = suspended;
        stamp_published(&mut next.doc, published);
        next.updated_at = self.clock.now_millis();
        next.revision += 1;
        let event = LogEvent::new(
            Subject::app(&next.id),
            kind,
            actor,
            json!({"version": next.version.to_string()}),
        );
        self.store.update_app(&next, &current, event).await?;
        Ok(next)
    }

    /// Stores the caller's developer profile and shows it in the current version of each of
    /// its applications.
    pub async fn developer_profile(&self, actor: &Actor, body: Value) -> DexResult<Value> {
        let id = match body.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => {
                return Err(DexError::invalid(
                    "invalid ApplicationDeveloper",
                    vec!["id: required, a string".into()],
                ));
            }
        };
        let Value::Object(fields) = &body else {
            unreachable!("an object has an id")
        };
        let mut details = Vec::new();
        if let Err(e) = check_developer_id(&id) {
            details.push(e.replace("developer.id", "id"));
        }
        for field in ["name", "url"] {
            if !matches!(fields.get(field), Some(Value::String(_))) {
                details.push(format!("{field}: required, a string"));
            }
        }
        // Optional, but typed as the HAT reads them (the profile is shown in applications).
        if !is_optional_string(fields.get("country")) {
            details.push("country: a string or null".into());
        }
        if !is_optional_drawable(fields.get("logo")) {
            details.push("logo: a Drawable ({\"normal\": ..., \"small\"?, ...}) or null".into());
        }
        if !details.is_empty() {
            return Err(DexError::invalid("invalid ApplicationDeveloper", details));
        }
        if !manages(actor, &id) {
            return Err(DexError::Forbidden(format!(
                "the profile's id must be your developer id (developer:{id} role)"
            )));
        }
        let event = LogEvent::new(
            Subject::developer(&id),
            Kind::DeveloperProfileUpdated,
            actor,
            json!({"name": fields.get("name")}),
        );
        self.store.put_developer(&id, &body, event).await?;
        for app in self.store.apps_of_developer(&id).await? {
            if app.doc.get("developer") == Some(&body) {
                continue;
            }
            let mut next = app.clone();
            next.doc["developer"] = body.clone();
            next.updated_at = self.clock.now_millis();
            next.revision += 1;
            let event = LogEvent::new(
                Subject::app(&next.id),
                Kind::AppReplaced,
                actor,
                json!({"version": next.version.to_string(), "developerProfile": id}),
            );
            self.store.update_app(&next, &app, event).await?;
        }
        Ok(body)
    }

    /// The current version of an application, unpublished ones included; suspended or
    /// unknown: 404.
    pub async fn get(&self, id: &str) -> DexResult<StoredApp> {
        self.stored(id)
            .await?
            .filter(StoredApp::visible)
            .ok_or_else(|| not_found(id))
    }

    pub async fn list(&self, query: &ListQuery) -> DexResult<AppPage> {
        if let Some(start) = &query.start_id
            && check_id(start).is_err()
        {
            return Ok(AppPage {
                apps: Vec::new(),
                next: None,
            });
        }
        self.store
            .list_apps(&query.filter, query.start_id.as_deref(), query.limit)
            .await
    }

    /// `[{"current", "history": [older versions, newest first]}]`.
    pub async fn history(&self, include_unpublished: bool) -> DexResult<Vec<Value>> {
        let listed = self.store.app_history(include_unpublished).await?;
        Ok(listed
            .into_iter()
            .map(|(app, versions)| history_entry(&app, versions))
            .collect())
    }

    /// Every application, suspended ones included (operators).
    pub async fn all(&self) -> DexResult<Vec<StoredApp>> {
        self.store.all_apps().await
    }

    /// Records that `hat`'s owner consented to the current version of `id`.
    pub async fn consent(&self, hat: &str, id: &str) -> DexResult<Consent> {
        let app = self.get(id).await?;
        let consent = Consent {
            hat: hat.to_owned(),
            application_id: app.id.clone(),
            version: app.version.to_string(),
            at: self.clock.now_millis(),
            id: self.random.uuid().to_string(),
        };
        let event = LogEvent::new(
            Subject::hat(hat),
            Kind::ConsentRecorded,
            &Actor::Hat(hat.to_owned()),
            json!({"applicationId": consent.application_id, "version": consent.version, "consentId": consent.id}),
        );
        self.store.record_consent(&consent, event).await?;
        Ok(consent)
    }

    pub async fn consents(
        &self,
        hat: Option<&str>,
        application_id: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<Consent>> {
        use crate::limits::{MAX_DOMAIN_LEN, check_len};
        if let Some(h) = hat {
            check_len("hat", h, MAX_DOMAIN_LEN + 6)?;
        }
        if let Some(a) = application_id {
            check_len("applicationId", a, super::model::MAX_ID)?;
        }
        self.store.consents(hat, application_id, page).await
    }
}

/// What a change changed, for the log: the top-level fields and the fields of top-level
/// objects (`info.headline`) whose values differ, never the values themselves.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut changed = Vec::new();
    for key in keys {
        match (b.get(key), a.get(key)) {
            (x, y) if x == y => {}
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let inner: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                changed.extend(
                    inner
                        .into_iter()
                        .filter(|k| x.get(*k) != y.get(*k))
                        .map(|k| format!("{key}.{k}")),
                );
            }
            _ => changed.push(key.clone()),
        }
    }
    changed
}

/// One `ApplicationHistory`: the current version and the older ones, newest first.
pub fn history_entry(app: &StoredApp, versions: Vec<AppVersion>) -> Value {
    let mut older: Vec<AppVersion> = versions
        .into_iter()
        .filter(|v| v.version != app.version)
        .collect();
    older.sort_by_key(|v| std::cmp::Reverse(v.version));
    json!({
        "current": app.doc,
        "history": older.into_iter().map(|v| v.doc).collect::<Vec<_>>(),
    })
}

/// The `PayloadWrapper` of a v3 listing.
pub fn payload_wrapper(page: &AppPage, query: &ListQuery) -> Value {
    let mut pagination = serde_json::Map::new();
    if let Some(s) = &query.start_id {
        pagination.insert("startId".into(), s.clone().into());
    }
    if let Some(l) = query.limit {
        pagination.insert("limit".into(), l.into());
    }
    let mut filters = serde_json::Map::new();
    filters.insert(
        "unpublished".into(),
        query.filter.include_unpublished.into(),
    );
    if let Some(k) = query.filter.kind {
        filters.insert("kind".into(), k.as_str().into());
    }
    let mut wrapper = json!({
        "data": page.apps.iter().map(|a| &a.doc).collect::<Vec<_>>(),
        "paginationParameters": pagination,
        "filters": filters,
    });
    if let Some(next) = &page.next {
        wrapper["next"] = next.clone().into();
    }
    wrapper
}

fn is_optional_string(value: Option<&Value>) -> bool {
    matches!(value, None | Some(Value::Null) | Some(Value::String(_)))
}

/// A `Drawable` (`normal` required, the other sizes optional strings), absent or null.
fn is_optional_drawable(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(d)) => {
            matches!(d.get("normal"), Some(Value::String(_)))
                && ["small", "large", "xlarge"]
                    .iter()
                    .all(|size| is_optional_string(d.get(*size)))
        }
        Some(_) => false,
    }
}
