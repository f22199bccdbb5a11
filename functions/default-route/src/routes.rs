// Generated from routes.toml by `make routes`: do not edit by hand.

/// Every canonical route: (method, path template, function).
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/.well-known/jwks.json", "jwks"),
    ("GET", "/api/admin/accounts", "admin-accounts-list"),
    ("POST", "/api/admin/accounts", "admin-accounts-create"),
    ("GET", "/api/admin/accounts/{accountId}", "admin-account-get"),
    ("PUT", "/api/admin/accounts/{accountId}", "admin-account-update"),
    ("PUT", "/api/admin/accounts/{accountId}/password", "account-password"),
    ("GET", "/api/admin/clusters", "admin-clusters-list"),
    ("POST", "/api/admin/clusters", "admin-clusters-create"),
    ("DELETE", "/api/admin/clusters/{domain}", "admin-cluster-delete"),
    ("POST", "/api/admin/dataplugs", "admin-dataplugs-create"),
    ("PUT", "/api/admin/dataplugs/{dataplugId}", "admin-dataplug-update"),
    ("GET", "/api/admin/hats", "admin-hats-list"),
    ("GET", "/api/admin/log", "admin-log"),
    ("GET", "/api/dataplugs", "dataplugs-list"),
    ("GET", "/api/dataplugs/{dataplugId}/connect", "dataplug-connect"),
    ("GET", "/api/hat/log", "hat-log"),
    ("GET", "/api/users/access_token", "access-token"),
    ("PUT", "/api/users/password", "account-password"),
    ("POST", "/api/users/registerHat", "register-hat"),
    ("GET", "/api/v3/users/access_token", "access-token"),
    ("POST", "/api/v3/users/registerHat", "register-hat"),
    ("GET", "/publickey", "publickey"),
    ("GET", "/stats", "stats"),
    ("GET", "/stats/available-data", "stats-available-data"),
    ("POST", "/stats/available-data/descriptions", "stats-descriptions"),
    ("POST", "/stats/report", "stats-report"),
];
