//! A complete `Application` document (the docs/hats.md §5 skeleton, filled in), with fields
//! DEX does not know at several levels, for the registry's tests.

use serde_json::{Value, json};

/// Application `id` of developer `developer` at `version`, kind `App`.
pub fn sample_application(id: &str, developer: &str, version: &str) -> Value {
    json!({
        "id": id,
        "kind": {"kind": "App", "url": format!("https://{id}.example.com"), "iosUrl": "ios://x",
                 "futureKindField": [1, 2, {"deep": true}]},
        "info": {
            "version": version,
            "updateNotes": {"header": "What is new", "notes": ["faster"]},
            "published": true,
            "name": format!("App {id}"),
            "headline": "Notes that stay yours",
            "description": {"text": "A notes app", "markdown": "*A notes app*", "extraText": 3},
            "termsUrl": "https://example.com/terms",
            "dataUsePurpose": "to show your notes",
            "supportContact": "support@example.com",
            "rating": {"score": "Z***"},
            "dataPreview": [{
                "source": "notables", "date": {"iso": "2021-03-01T00:00:00.000Z", "unix": 1614556800},
                "types": ["note"], "title": {"text": "a note"}, "unknownFeedField": "kept"
            }],
            "graphics": {"banner": {"normal": "https://example.com/b.png"},
                         "logo": {"normal": "https://example.com/l.png", "retina": "https://example.com/l2.png"},
                         "screenshots": []},
            "primaryColor": "#ffffff",
            "somethingNew": {"nested": ["kept", {"as": "sent"}]}
        },
        "developer": {"id": developer, "name": "Developer", "url": "https://dev.example.com", "country": "UK"},
        "permissions": {"rolesGranted": [{"role": "namespacewrite", "detail": "rumpel"}],
                        "dataRetrieved": {"name": format!("{id}-bundle"), "bundle": {"notes": {"endpoints": []}}}},
        "dependencies": {"plugs": [], "tools": [], "contracts": []},
        "setup": {"kind": "External", "validRedirectUris": [], "url": "https://example.com/setup",
                  "onboarding": [{"title": "Hi", "illustration": {"normal": "https://example.com/o.png"}, "description": "d"}]},
        "status": {"kind": "Internal", "compatibility": "1.0.0",
                   "versionReleaseDate": "2021-03-01T00:00:00.000Z", "statusExtra": null},
        "topLevelUnknown": {"a": 1}
    })
}

/// The same document with another `kind`.
pub fn with_kind(mut doc: Value, kind: &str) -> Value {
    doc["kind"] = json!({"kind": kind, "url": "https://example.com/k"});
    doc
}
