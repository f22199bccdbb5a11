//! The rich `Application` of the v1.1 / v3 registry (docs/wire-contract.md §6.7).
//!
//! DEX keeps each document as the JSON it was sent (every field it does not know, at every
//! level, included) and validates it through a typed view of what the HAT parses: required
//! fields, the `kind` discriminators, `M.m.p` versions. What it answers is that JSON, with
//! only `info.published` set by DEX, so a round trip returns what was sent.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{DexError, DexResult};

/// An application id: a key part and a path segment.
pub const MAX_ID: usize = 128;
/// One document's JSON text. 1,000 typical documents (3-6 KB) fit a 6 MB list answer.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let mut next = || {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
        };
        let version = Self(next()?, next()?, next()?);
        parts.next().is_none().then_some(version)
    }

    /// A sort key ordering versions numerically.
    pub fn sort_key(&self) -> String {
        format!("{:09}.{:09}.{:09}", self.0, self.1, self.2)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The `kind` discriminator of `Application.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppKind {
    App,
    DataPlug,
    Tool,
    Contract,
}

impl AppKind {
    pub const ALL: [AppKind; 4] = [Self::App, Self::DataPlug, Self::Tool, Self::Contract];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "App",
            Self::DataPlug => "DataPlug",
            Self::Tool => "Tool",
            Self::Contract => "Contract",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

// The typed view: what the HAT reads (docs/hats.md §5). Unknown fields are ignored here and
// kept in the document.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ApplicationView {
    id: String,
    kind: KindView,
    info: InfoView,
    developer: DeveloperView,
    permissions: PermissionsView,
    dependencies: Option<DependenciesView>,
    setup: SetupView,
    status: StatusView,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
#[allow(dead_code)]
enum KindView {
    App {
        url: String,
        ios_url: Option<String>,
        android_url: Option<String>,
        provisioning_service: Option<String>,
    },
    DataPlug {
        url: String,
    },
    Tool {
        url: String,
    },
    Contract {
        url: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct InfoView {
    version: String,
    update_notes: Option<UpdateNotesView>,
    published: bool,
    name: String,
    headline: String,
    description: FormattedTextView,
    hmi_description: Option<String>,
    terms_url: String,
    privacy_policy_url: Option<String>,
    data_use_purpose: String,
    support_contact: String,
    rating: Option<RatingView>,
    data_preview: Vec<DataFeedItemView>,
    graphics: GraphicsView,
    primary_color: Option<String>,
    callback_url: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct UpdateNotesView {
    header: String,
    notes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FormattedTextView {
    text: String,
    markdown: Option<String>,
    html: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RatingView {
    score: String,
    // 2018 payloads omit it.
    points: Option<i64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DrawableView {
    normal: String,
    small: Option<String>,
    large: Option<String>,
    xlarge: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct GraphicsView {
    banner: DrawableView,
    logo: DrawableView,
    screenshots: Vec<DrawableView>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DataFeedItemView {
    source: String,
    date: FeedDateView,
    types: Vec<String>,
    title: Option<FeedTitleView>,
    content: Option<Map<String, Value>>,
    location: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FeedDateView {
    iso: String,
    unix: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FeedTitleView {
    text: String,
    subtitle: Option<String>,
    action: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DeveloperView {
    id: String,
    name: String,
    url: String,
    country: Option<String>,
    logo: Option<DrawableView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PermissionsView {
    roles_granted: Vec<UserRoleView>,
    data_retrieved: Option<EndpointDataBundleView>,
    data_required: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct UserRoleView {
    role: String,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct EndpointDataBundleView {
    name: String,
    bundle: Map<String, Value>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DependenciesView {
    plugs: Vec<String>,
    tools: Vec<String>,
    contracts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
#[allow(dead_code)]
enum SetupView {
    External {
        url: Option<String>,
        ios_url: Option<String>,
        android_url: Option<String>,
        testing_url: Option<String>,
        valid_redirect_uris: Vec<String>,
        deauthorize_callback_url: Option<String>,
        onboarding: Option<Vec<OnboardingStepView>>,
        preferences: Option<Map<String, Value>>,
        dependencies: Option<Vec<String>>,
    },
    Internal {
        onboarding: Option<Vec<OnboardingStepView>>,
        preferences: Option<Map<String, Value>>,
        dependencies: Option<Vec<String>>,
    },
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OnboardingStepView {
    title: String,
    illustration: DrawableView,
    description: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
#[allow(dead_code)]
enum StatusView {
    Internal {
        compatibility: String,
        data_preview_endpoint: Option<String>,
        static_data_preview_endpoint: Option<String>,
        recent_data_check_endpoint: Option<String>,
        version_release_date: String,
    },
    External {
        compatibility: String,
        data_preview_endpoint: Option<String>,
        static_data_preview_endpoint: Option<String>,
        recent_data_check_endpoint: Option<String>,
        version_release_date: String,
        status_url: String,
        expected_status: i64,
    },
}

/// An application id DEX can key and route: `[A-Za-z0-9._-]`, 1-128 characters, and not
/// `developer` (the literal segment of the profile route).
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && id != "developer";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "id: 1 to {MAX_ID} letters, digits, '.', '_' or '-', and not \"developer\""
        ))
    }
}

/// A developer id as `developer:<id>` roles carry it (roles.rs).
pub fn check_developer_id(id: &str) -> Result<(), String> {
    crate::roles::Role::parse(&format!("developer:{id}"))
        .map(|_| ())
        .map_err(|_| "developer.id: 1-128 letters, digits, '-', '_' or '.'".to_owned())
}

/// The `M.m.p` version strings the HAT requires (`\d+.\d+.\d+`).
fn check_version(field: &str, text: &str, details: &mut Vec<String>) -> Option<Version> {
    let v = Version::parse(text);
    if v.is_none() {
        details.push(format!("{field}: a version M.m.p (digits), got {text:?}"));
    }
    v
}

/// A validated application document.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationDoc {
    /// The document as sent (unknown fields included).
    pub doc: Map<String, Value>,
    pub id: String,
    pub kind: AppKind,
    pub version: Version,
    pub developer_id: String,
}

impl ApplicationDoc {
    /// Validates a request body: the typed view must read it (the first error names the
    /// field), the versions and ids must be well formed.
    pub fn parse(body: Value) -> DexResult<Self> {
        let Value::Object(doc) = body else {
            return Err(DexError::bad_request("an Application is a JSON object"));
        };
        let size = serde_json::to_vec(&doc)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > MAX_DOCUMENT_BYTES {
            return Err(DexError::PayloadTooLarge(format!(
                "an Application is at most {MAX_DOCUMENT_BYTES} bytes of JSON"
            )));
        }
        let view: ApplicationView = serde_path_to_error::deserialize(Value::Object(doc.clone()))
            .map_err(|e| {
                let path = e.path().to_string();
                DexError::invalid(
                    "invalid Application",
                    vec![format!("{path}: {}", e.into_inner())],
                )
            })?;
        let mut details = Vec::new();
        if let Err(e) = check_id(&view.id) {
            details.push(e);
        }
        if let Err(e) = check_developer_id(&view.developer.id) {
            details.push(e);
        }
        let version = check_version("info.version", &view.info.version, &mut details);
        let (compatibility, released) = match &view.status {
            StatusView::Internal {
                compatibility,
                version_release_date,
                ..
            }
            | StatusView::External {
                compatibility,
                version_release_date,
                ..
            } => (compatibility, version_release_date),
        };
        check_version("status.compatibility", compatibility, &mut details);
        if chrono::DateTime::parse_from_rfc3339(released).is_err() {
            details.push(format!(
                "status.versionReleaseDate: an ISO-8601 date-time, got {released:?}"
            ));
        }
        if !details.is_empty() {
            return Err(DexError::invalid("invalid Application", details));
        }
        let kind = match view.kind {
            KindView::App { .. } => AppKind::App,
            KindView::DataPlug { .. } => AppKind::DataPlug,
            KindView::Tool { .. } => AppKind::Tool,
            KindView::Contract { .. } => AppKind::Contract,
        };
        Ok(Self {
            doc,
            id: view.id,
            kind,
            version: version.expect("checked above"),
            developer_id: view.developer.id,
        })
    }

    /// Sets `info.published` (the one field DEX decides).
    pub fn set_published(&mut self, published: bool) {
        if let Some(Value::Object(info)) = self.doc.get_mut("info") {
            info.insert("published".into(), Value::Bool(published));
        }
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.doc)
    }
}

/// Sets `info.published` of a stored document.
pub fn stamp_published(doc: &mut Value, published: bool) {
    if let Some(Value::Object(info)) = doc.get_mut("info") {
        info.insert("published".into(), Value::Bool(published));
    }
}

/// An application as the registry keeps it: its current version and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub id: String,
    pub kind: AppKind,
    pub developer_id: String,
    /// The current version.
    pub version: Version,
    /// The current version's document, `info.published` as `published`.
    pub doc: Value,
    pub published: bool,
    pub suspended: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Optimistic concurrency: every change is conditioned on it and increments it.
    pub revision: u64,
}

impl StoredApp {
    /// Listed and fetchable (unpublished ones only with `unpublished=true` in lists).
    pub fn visible(&self) -> bool {
        !self.suspended
    }

    pub fn listed(&self, include_unpublished: bool) -> bool {
        !self.suspended && (self.published || include_unpublished)
    }
}

/// One version of an application (the current one included).
#[derive(Debug, Clone, PartialEq)]
pub struct AppVersion {
    pub id: String,
    pub version: Version,
    pub doc: Value,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFilter {
    pub include_unpublished: bool,
    pub kind: Option<AppKind>,
}

/// A page of a listing: `next` is the id the next page starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPage {
    pub apps: Vec<StoredApp>,
    pub next: Option<String>,
}

/// A HAT owner's consent to an application's terms (one per time it was given).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub hat: String,
    pub application_id: String,
    pub version: String,
    /// Epoch milliseconds.
    pub at: i64,
    /// Distinguishes two consents of the same HAT and application.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_three_numbers_ordered_numerically() {
        assert_eq!(Version::parse("1.10.0"), Some(Version(1, 10, 0)));
        assert!(Version::parse("1.10.0") > Version::parse("1.9.9"));
        for bad in ["1.0", "1.0.0.0", "1.a.0", "", "1..0", "-1.0.0", "1.0.0 "] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Version(2, 0, 11).to_string(), "2.0.11");
        assert!(Version(2, 0, 11).sort_key() > Version(2, 0, 9).sort_key());
    }

    #[test]
    fn ids_are_key_safe_and_not_the_profile_segment() {
        assert!(check_id("notables").is_ok());
        assert!(check_id("3f1e2d4c-0000-4000-8000-000000000000").is_ok());
        for bad in ["", "developer", "a/b", "a b", &"x".repeat(MAX_ID + 1)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
