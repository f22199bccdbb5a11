//! The storage port of the applications registry and of consents.

use std::future::Future;

use serde_json::Value;

use super::model::{AppFilter, AppPage, AppVersion, Consent, StoredApp};
use crate::error::DexResult;
use crate::page::{Page, PageRequest};
use crate::txlog::LogEvent;

pub trait ApplicationStore: Send + Sync {
    /// Stores a new application and its first version; 409 when its id exists.
    fn insert_app(
        &self,
        app: &StoredApp,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Any application by id, suspended ones included.
    fn get_app(&self, id: &str) -> impl Future<Output = DexResult<Option<StoredApp>>> + Send;
    /// Writes `app` over `previous` (409 if it changed since, by `revision`): its current
    /// version's document is written as the version item of `app.version` (the same one
    /// for a replacement, a new one for a new version; older ones are kept).
    fn update_app(
        &self,
        app: &StoredApp,
        previous: &StoredApp,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Every version of one application, oldest first (the current one last).
    fn app_versions(&self, id: &str) -> impl Future<Output = DexResult<Vec<AppVersion>>> + Send;
    /// Listed applications (never suspended ones) by id from `start_id` (inclusive),
    /// `limit` of them (all when `None`), and the id the next page starts at.
    fn list_apps(
        &self,
        filter: &AppFilter,
        start_id: Option<&str>,
        limit: Option<usize>,
    ) -> impl Future<Output = DexResult<AppPage>> + Send;
    /// The listed applications (never suspended ones) with every version of each, oldest
    /// first (the current one included).
    fn app_history(
        &self,
        include_unpublished: bool,
    ) -> impl Future<Output = DexResult<Vec<(StoredApp, Vec<AppVersion>)>>> + Send;
    /// Every application, suspended ones included (operators), by id.
    fn all_apps(&self) -> impl Future<Output = DexResult<Vec<StoredApp>>> + Send;
    /// The applications whose current version names developer `developer_id`, by id.
    fn apps_of_developer(
        &self,
        developer_id: &str,
    ) -> impl Future<Output = DexResult<Vec<StoredApp>>> + Send;
    /// A developer's profile (`ApplicationDeveloper` JSON as sent).
    fn get_developer(
        &self,
        developer_id: &str,
    ) -> impl Future<Output = DexResult<Option<Value>>> + Send;
    fn put_developer(
        &self,
        developer_id: &str,
        profile: &Value,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Records a consent with its event (on the HAT's chain); every consent is kept.
    fn record_consent(
        &self,
        consent: &Consent,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Consents, newest first, of one HAT and/or one application (or all).
    fn consents(
        &self,
        hat: Option<&str>,
        application_id: Option<&str>,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<Consent>>> + Send;
}
