//! The rules of offers that need no store: what a valid registration is, who may set which
//! status, when an offer can be claimed, when a confirmation changes a claim and when the
//! buyer gets the claims (docs/decisions.md §9 and §13 "Offers").

use serde_json::Value;

use super::model::{Offer, OfferRegistration, OfferStatus, OfferTerms};
use crate::error::{DexError, DexResult};

/// `offerId`: 1-64 letters, digits or `-` (it is part of the HAT login `offer-<offerId>`
/// and of the data debit key on every claiming HAT).
pub const MAX_OFFER_ID: usize = 64;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 8_192;
/// The serialised `requiredData` and `dataConditions` together; an offer item stays far
/// below DynamoDB's 400 KB and the public list below Lambda's 6 MB answer.
pub const MAX_BUNDLES_BYTES: usize = 64 * 1024;
/// The largest `requiredMaxUser`: a place is one claim counter, so this only bounds what a
/// single offer can ask of the HATs.
pub const MAX_REQUIRED_USERS: i64 = 100_000;
/// 9999-12-31T23:59:59.999Z in epoch milliseconds.
pub const MAX_INSTANT: i64 = 253_402_300_799_999;

/// `[0-9A-Za-z-]{1,64}`.
pub fn is_offer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_OFFER_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A bundle name (`EndpointDataBundle.name`): `[0-9a-zA-Z-]+`.
fn is_bundle_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_OFFER_ID
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The shape of an `EndpointDataBundle`: `{"name": ..., "bundle": {<key>: {"endpoints":
/// [{"endpoint": ...}, ...], ...}}}`. Other fields are kept as they are.
fn check_bundle(field: &str, bundle: &Value, problems: &mut Vec<String>) {
    let Some(object) = bundle.as_object() else {
        problems.push(format!("{field}: an EndpointDataBundle object"));
        return;
    };
    match object.get("name").and_then(Value::as_str) {
        Some(name) if is_bundle_name(name) => {}
        _ => problems.push(format!(
            "{field}.name: 1-{MAX_OFFER_ID} letters, digits or '-'"
        )),
    }
    let Some(queries) = object.get("bundle").and_then(Value::as_object) else {
        problems.push(format!("{field}.bundle: an object of property queries"));
        return;
    };
    if queries.is_empty() {
        problems.push(format!("{field}.bundle: at least one property query"));
    }
    for (key, query) in queries {
        let endpoints = query.get("endpoints").and_then(Value::as_array);
        let ok = endpoints.is_some_and(|list| {
            !list.is_empty()
                && list.iter().all(|e| {
                    e.get("endpoint")
                        .and_then(Value::as_str)
                        .is_some_and(|name| !name.is_empty())
                })
        });
        if !ok {
            problems.push(format!(
                "{field}.bundle.{key}.endpoints: a non-empty list of {{\"endpoint\": ...}}"
            ));
        }
        check_query_options(&format!("{field}.bundle.{key}"), query, problems);
    }
}

/// The HAT's `PropertyQuery` options, when present: `orderBy` and `ordering` strings, `limit`
/// a whole number the HAT can hold (a Scala `Int`). Checked so that what is kept is what the
/// HAT will parse, and what is answered stays within openapi.yaml's schema.
fn check_query_options(at: &str, query: &Value, problems: &mut Vec<String>) {
    for name in ["orderBy", "ordering"] {
        if query.get(name).is_some_and(|v| !v.is_string()) {
            problems.push(format!("{at}.{name}: a string"));
        }
    }
    if let Some(limit) = query.get("limit")
        && limit.as_u64().is_none_or(|l| l > MAX_QUERY_LIMIT)
    {
        problems.push(format!(
            "{at}.limit: a whole number from 0 to {MAX_QUERY_LIMIT}"
        ));
    }
}

/// The largest `limit` of a property query: the HAT reads it as a 32-bit `Int`.
pub const MAX_QUERY_LIMIT: u64 = i32::MAX as u64;

/// A registration's terms, or a 400 listing every problem.
pub fn validate_registration(r: OfferRegistration) -> DexResult<OfferTerms> {
    let mut problems = Vec::new();
    if !is_offer_id(&r.offer_id) {
        problems.push(format!("offerId: 1-{MAX_OFFER_ID} letters, digits or '-'"));
    }
    // Characters, as openapi.yaml's maxLength counts them.
    if r.title.trim().is_empty() || r.title.chars().count() > MAX_TITLE {
        problems.push(format!(
            "title: 1-{MAX_TITLE} characters, not only white space"
        ));
    }
    if r.description.chars().count() > MAX_DESCRIPTION {
        problems.push(format!("description: at most {MAX_DESCRIPTION} characters"));
    }
    if r.starts >= r.expires {
        problems.push("starts: before expires".into());
    }
    if r.starts < 0 {
        problems.push("starts: epoch milliseconds, not negative".into());
    }
    // The last millisecond of year 9999, as openapi.yaml's `Instant` states.
    if r.expires > MAX_INSTANT {
        problems.push(format!("expires: at most {MAX_INSTANT} (year 9999)"));
    }
    if !(1..=MAX_REQUIRED_USERS).contains(&r.required_min_user) {
        problems.push(format!("requiredMinUser: 1-{MAX_REQUIRED_USERS}"));
    }
    if !(1..=MAX_REQUIRED_USERS).contains(&r.required_max_user)
        || r.required_max_user < r.required_min_user
    {
        problems.push(format!(
            "requiredMaxUser: at least requiredMinUser and at most {MAX_REQUIRED_USERS}"
        ));
    }
    if let Some(duration) = r.collection_duration
        && duration <= 0
    {
        problems.push("collectionDuration: a positive number of milliseconds".into());
    }
    check_bundle("requiredData", &r.required_data, &mut problems);
    if let Some(conditions) = &r.data_conditions {
        check_bundle("dataConditions", conditions, &mut problems);
    }
    let bundles_bytes = r.required_data.to_string().len()
        + r.data_conditions
            .as_ref()
            .map_or(0, |c| c.to_string().len());
    if bundles_bytes > MAX_BUNDLES_BYTES {
        problems.push(format!(
            "requiredData and dataConditions: at most {MAX_BUNDLES_BYTES} bytes together"
        ));
    }
    if !problems.is_empty() {
        return Err(DexError::invalid(
            "the offer registration is invalid",
            problems,
        ));
    }
    Ok(OfferTerms {
        collection_duration: r
            .collection_duration
            .unwrap_or(r.expires.saturating_sub(r.starts)),
        offer_id: r.offer_id,
        title: r.title,
        description: r.description,
        starts: r.starts,
        expires: r.expires,
        data_conditions: r.data_conditions,
        required_data: r.required_data,
        required_min_user: r.required_min_user as u32,
        required_max_user: r.required_max_user as u32,
    })
}

/// Who asks for a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSetter {
    Admin,
    Owner,
    Other,
}

/// Whether `setter` may move `offer` to `status`: admins any status; the owner between
/// `draft` and `approved` only, and only from one of those (an admin's `rejected` stays).
pub fn check_status_change(
    offer: &Offer,
    setter: StatusSetter,
    status: OfferStatus,
) -> DexResult<()> {
    let owner_may = |s: OfferStatus| matches!(s, OfferStatus::Draft | OfferStatus::Approved);
    match setter {
        StatusSetter::Admin => Ok(()),
        StatusSetter::Owner if owner_may(status) && owner_may(offer.status) => Ok(()),
        StatusSetter::Owner => Err(DexError::Forbidden(format!(
            "the owner may move its offer between draft and approved only (it is {})",
            offer.status
        ))),
        StatusSetter::Other => Err(DexError::Forbidden(
            "only the offer's owner or an admin may change its status".into(),
        )),
    }
}

/// Whether `offer` is open for claims at `now` (epoch ms): approved, started, not expired.
/// Whether a place is free is the store's to say, atomically.
pub fn check_open(offer: &Offer, now: i64) -> DexResult<()> {
    if offer.status != OfferStatus::Approved {
        return Err(DexError::bad_request(format!(
            "the offer is not open for claims (it is {})",
            offer.status
        )));
    }
    if now < offer.terms.starts {
        return Err(DexError::bad_request("the offer has not started yet"));
    }
    if now >= offer.terms.expires {
        return Err(DexError::bad_request("the offer has expired"));
    }
    Ok(())
}

pub fn offer_full() -> DexError {
    DexError::bad_request("offer is full")
}

pub fn already_claimed() -> DexError {
    DexError::bad_request("already claimed")
}

/// A claim's confirmation as the HAT last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmed: bool,
    /// Epoch ms of the HAT's `datadebit` item that set it (0: never reported).
    pub at: i64,
}

/// The confirmation after a HAT reports `enabled` at `at`: items apply in item-time order,
/// so a resent or late item no newer than the one applied changes nothing.
pub fn apply_confirmation(current: Confirmation, enabled: bool, at: i64) -> Option<Confirmation> {
    (at > current.at).then_some(Confirmation {
        confirmed: enabled,
        at,
    })
}

/// Whether the buyer gets the claims: once `requiredMinUser` claims are confirmed at the
/// same time, the list is released for good.
pub fn claims_released(offer: &Offer, confirmed_now: u32) -> bool {
    offer.claims_released || confirmed_now >= offer.terms.required_min_user
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn registration(body: Value) -> OfferRegistration {
        serde_json::from_value(body).expect("the test body parses")
    }

    fn valid_body() -> Value {
        json!({
            "offerId": "offer-1",
            "title": "Locations",
            "description": "a month of locations",
            "starts": 1_000,
            "expires": 11_000,
            "requiredData": {"name": "locations-1", "bundle": {
                "locations": {"endpoints": [{"endpoint": "rumpel/locations", "extra": true}]}
            }},
            "requiredMinUser": 2,
            "requiredMaxUser": 10,
            "status": "approved"
        })
    }

    fn offer(status: OfferStatus) -> Offer {
        Offer {
            terms: validate_registration(registration(valid_body())).unwrap(),
            credentials: crate::offers::OfferCredentials {
                password_sealed: "v1.k.sealed".into(),
                password_hash: "$2a$10$hash".into(),
            },
            provider: "owner".into(),
            status,
            created: 0,
            claims_kept: 0,
            places_taken: 0,
            claims_released: false,
            version: 1,
        }
    }

    #[test]
    fn a_valid_registration_keeps_unknown_bundle_fields_and_defaults_the_duration() {
        let terms = validate_registration(registration(valid_body())).unwrap();
        assert_eq!(terms.collection_duration, 10_000);
        assert_eq!(
            terms.required_data["bundle"]["locations"]["endpoints"][0]["extra"],
            json!(true)
        );
        assert_eq!((terms.required_min_user, terms.required_max_user), (2, 10));
    }

    #[test]
    fn times_may_be_iso_strings_as_the_scala_client_writes_them() {
        let mut body = valid_body();
        body["starts"] = json!("2017-10-09T00:00:00.000Z");
        body["expires"] = json!("2017-10-10T00:00:00+0000");
        let terms = validate_registration(registration(body)).unwrap();
        assert_eq!(terms.starts, 1_507_507_200_000);
        assert_eq!(terms.expires - terms.starts, 86_400_000);
        let mut bad = valid_body();
        bad["starts"] = json!("soon");
        assert!(serde_json::from_value::<OfferRegistration>(bad).is_err());
    }

    #[test]
    fn a_fractional_time_is_refused() {
        let mut bad = valid_body();
        bad["starts"] = json!(2.5890419884777833e-42);
        assert!(serde_json::from_value::<OfferRegistration>(bad).is_err());
        let mut whole = valid_body();
        whole["starts"] = json!(5_000.0);
        let terms = validate_registration(registration(whole)).unwrap();
        assert_eq!(terms.starts, 5_000);
    }

    #[test]
    fn property_query_options_are_what_the_hat_parses() {
        let with = |options: Value| {
            let mut body = valid_body();
            let query = &mut body["requiredData"]["bundle"]["locations"];
            for (k, v) in options.as_object().unwrap() {
                query[k] = v.clone();
            }
            validate_registration(registration(body))
        };
        assert!(
            with(json!({"orderBy": "date", "ordering": "descending", "limit": MAX_QUERY_LIMIT}))
                .is_ok()
        );
        // The fuzzer's finding: a limit past u64 was kept as a float and answered as one.
        for bad in [
            json!({"limit": 145_345_566_185_214_570_000.0}),
            json!({"limit": MAX_QUERY_LIMIT + 1}),
            json!({"limit": -1}),
            json!({"limit": 1.5}),
            json!({"orderBy": 5}),
            json!({"ordering": null}),
        ] {
            let err = with(bad.clone()).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert!(
                err.body()
                    .details
                    .iter()
                    .any(|d| d.contains("requiredData.bundle.locations.")),
                "{bad}: {:?}",
                err.body().details
            );
        }
    }

    #[test]
    fn an_expiry_after_year_9999_is_refused() {
        let mut body = valid_body();
        body["expires"] = json!(MAX_INSTANT + 1);
        let err = validate_registration(registration(body)).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.body().details.iter().any(|d| d.starts_with("expires")));
        let mut body = valid_body();
        body["expires"] = json!(MAX_INSTANT);
        assert!(validate_registration(registration(body)).is_ok());
    }

    #[test]
    fn every_problem_of_a_registration_is_listed() {
        let mut body = valid_body();
        body["offerId"] = json!("has space");
        body["starts"] = json!(20_000);
        body["requiredMinUser"] = json!(11);
        body["requiredData"] = json!({"name": "bad name!", "bundle": {"x": {"endpoints": []}}});
        body["collectionDuration"] = json!(0);
        let err = validate_registration(registration(body)).unwrap_err();
        assert_eq!(err.status(), 400);
        let details = err.body().details;
        for field in [
            "offerId",
            "starts",
            "requiredMaxUser",
            "requiredData.name",
            "requiredData.bundle.x",
            "collectionDuration",
        ] {
            assert!(
                details.iter().any(|d| d.starts_with(field)),
                "{field} missing from {details:?}"
            );
        }
    }

    #[test]
    fn oversized_bundles_and_texts_are_refused() {
        let mut body = valid_body();
        body["requiredData"]["bundle"]["locations"]["pad"] = json!("x".repeat(MAX_BUNDLES_BYTES));
        body["title"] = json!("t".repeat(MAX_TITLE + 1));
        let details = validate_registration(registration(body))
            .unwrap_err()
            .body()
            .details;
        assert!(details.iter().any(|d| d.starts_with("requiredData and")));
        assert!(details.iter().any(|d| d.starts_with("title")));
    }

    #[test]
    fn the_owner_moves_between_draft_and_approved_only() {
        let draft = offer(OfferStatus::Draft);
        assert!(check_status_change(&draft, StatusSetter::Owner, OfferStatus::Approved).is_ok());
        let err =
            check_status_change(&draft, StatusSetter::Owner, OfferStatus::Satisfied).unwrap_err();
        assert_eq!(err.status(), 403);
        // An admin's rejection stays.
        let rejected = offer(OfferStatus::Rejected);
        let err =
            check_status_change(&rejected, StatusSetter::Owner, OfferStatus::Approved).unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(check_status_change(&rejected, StatusSetter::Admin, OfferStatus::Paid).is_ok());
        let err =
            check_status_change(&draft, StatusSetter::Other, OfferStatus::Approved).unwrap_err();
        assert_eq!(err.status(), 403);
    }

    #[test]
    fn only_approved_running_offers_are_open() {
        let o = offer(OfferStatus::Approved);
        assert!(check_open(&o, 1_000).is_ok());
        assert_eq!(check_open(&o, 999).unwrap_err().status(), 400);
        assert_eq!(check_open(&o, 11_000).unwrap_err().status(), 400);
        assert!(check_open(&offer(OfferStatus::Satisfied), 5_000).is_err());
    }

    #[test]
    fn confirmations_apply_in_item_time_order() {
        let none = Confirmation {
            confirmed: false,
            at: 0,
        };
        let enabled = apply_confirmation(none, true, 50).unwrap();
        assert!(enabled.confirmed);
        // A late Disable older than the Enable, and a resend of the Enable, change nothing.
        assert_eq!(apply_confirmation(enabled, false, 40), None);
        assert_eq!(apply_confirmation(enabled, true, 50), None);
        let disabled = apply_confirmation(enabled, false, 60).unwrap();
        assert!(!disabled.confirmed);
    }

    #[test]
    fn the_claims_are_released_for_good_once_enough_are_confirmed() {
        let mut o = offer(OfferStatus::Approved);
        assert!(!claims_released(&o, 1));
        assert!(claims_released(&o, 2));
        o.claims_released = true;
        assert!(claims_released(&o, 0));
    }

    #[test]
    fn statuses_round_trip_and_the_list_shows_the_open_ones() {
        for status in OfferStatus::ALL {
            assert_eq!(OfferStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert_eq!(OfferStatus::parse("open"), None);
        let listed: Vec<_> = OfferStatus::ALL
            .into_iter()
            .filter(|s| s.is_listed())
            .collect();
        assert_eq!(
            listed,
            [
                OfferStatus::Approved,
                OfferStatus::Satisfied,
                OfferStatus::Oversubscribed
            ]
        );
    }
}
