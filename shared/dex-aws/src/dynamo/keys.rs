//! Every key of the table, and the one list of its shapes. One table, keys `pk`/`sk`, three
//! overloaded GSIs (`gsi1`..`gsi3`, attributes `gsiNpk`/`gsiNsk`), TTL on `expiresAt`; all key
//! attributes are strings.
//!
//! | item | pk | sk | indexes |
//! |---|---|---|---|
//! | account | `ACCOUNT#<id>` | `ACCOUNT` | gsi1 `ACCOUNTS` / `<normalised username>` |
//! | username (uniqueness) | `USERNAME#<normalised username>` | `USERNAME` | |
//! | log chain head | `LOG#<subject>` | `#HEAD` | |
//! | log entry | `LOG#<subject>` | `E#<seq:010>` | gsi1 `LOGACTOR#<actor>`, gsi2 `LOGKIND#<kind>`, gsi3 `LOGDAY#<yyyy-mm-dd>`, each / `<at:013>#<subject>#<seq:010>` |
//! | cluster | `CLUSTER#<domain>` | `CLUSTER` | gsi1 `CLUSTERS` / `<domain>` |
//! | HAT | `HAT#<address>` | `HAT` | gsi1 `HATS#<cluster>` / `<address>`, gsi2 `HATS` / `<address>` |
//! | data debit event | `HAT#<address>` | `DEBIT#<debit key>#<time:013>#<operation>` | |
//! | duplicate markers | `SEEN#<hat>#<hour YYYYMMDDHH>` | `<bucket 0..8>` | (TTL) |
//! | counter shard | `COUNTER#<name>#<shard:02>` | `COUNTER` | |
//! | field counts | `FIELDS#<shard:02>` | `<namespace>/<endpoint>` | |
//! | description | `DESC` | `<json [namespace, endpoint?, field?]>`, or `#<sha256 of it>` over 1000 bytes | |
//! | read model snapshot | `SNAPSHOT#<model>` | `PART#<i>` | |
//! | warm-up (never written) | `SNAPSHOT#warm-up` | `WARM-UP` | |
//! | data plug | `PLUG#<id>` | `PLUG` | gsi1 `PLUGS` / `<created:013>#<id>`, gsi2 (approved only) `PLUGS#APPROVED` / the same |
//! | plug name (uniqueness) | `PLUGNAME#<lowercased name>` | `PLUGNAME` | |
//! | plug connection | `HAT#<address>` | `PLUG#<plug id>` | |
//! | offer | `OFFER#<id>` | `OFFER` | gsi1 `OFFERS` / `<created:013>#<id>`, gsi2 (listed statuses only) `OFFERS#LISTED` / the same |
//! | offer claim | `OFFER#<id>` | `CLAIM#<hat>` | gsi1 (while reserved only) `OFFERLEASE#<id>` / `<leaseUntil:013>#<hat>` |
//! | application, its view, each version | `APP#<id>` | `APP`, `VIEW`, `V#<version>` | built in `apps.rs`, which lists them |
//! | developer profile | `DEVELOPER#<id>` | `PROFILE` | (`apps.rs`) |
//! | consent | `HAT#<address>` | `CONSENT#<app id>#<at:013>#<uuid>` | (`apps.rs`) |
//! | notice id counter | `NOTICES` | `COUNTER` | |
//! | notice | `NOTICE#<id:010>` | `NOTICE` | gsi1 `NOTICES` / `<id:010>` |
//! | notice read | `HAT#<address>` | `NOTICE#<id:010>` | |
//! | failed-login counter | `LOGINFAIL#<user or source>#<sha256>` | `LOGINFAIL` | (TTL) |

use std::collections::HashMap;

use super::Item;
use super::item::s;
use dex::accounts::normalise_username;

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The attributes putting an item at `pk`/`sk` of index `gsi`.
pub(crate) fn gsi(
    gsi: &str,
    pk: impl Into<String>,
    sk: impl Into<String>,
) -> [(String, super::AttributeValue); 2] {
    [(format!("{gsi}pk"), s(pk)), (format!("{gsi}sk"), s(sk))]
}

/// The key attribute names of a query on `index` (or the table).
pub(crate) fn key_names(index: Option<&str>) -> (String, String) {
    match index {
        None => ("pk".to_owned(), "sk".to_owned()),
        Some(i) => (format!("{i}pk"), format!("{i}sk")),
    }
}

// Accounts.
pub(crate) const ACCOUNTS: &str = "ACCOUNTS";

pub(crate) fn account(id: &str) -> Item {
    key(format!("ACCOUNT#{id}"), "ACCOUNT")
}

pub(crate) fn username(username: &str) -> Item {
    key(
        format!("USERNAME#{}", normalise_username(username)),
        "USERNAME",
    )
}

// The log.
pub(crate) const LOG_ENTRY_PREFIX: &str = "E#";

pub(crate) fn log_partition(subject: &str) -> String {
    format!("LOG#{subject}")
}

/// The subject of a log partition key.
pub(crate) fn subject_of(log_pk: &str) -> &str {
    log_pk.trim_start_matches("LOG#")
}

/// The sort key of a log partition's head item.
pub(crate) const LOG_HEAD_SORT: &str = "#HEAD";

pub(crate) fn log_head(subject: &str) -> Item {
    key(log_partition(subject), LOG_HEAD_SORT)
}

pub(crate) fn log_entry(subject: &str, seq: u64) -> Item {
    key(
        log_partition(subject),
        format!("{LOG_ENTRY_PREFIX}{seq:010}"),
    )
}

/// The sort key of a log entry in every log index: time first, so ranges narrow the query.
pub(crate) fn log_sort(at: i64, subject: &str, seq: u64) -> String {
    format!("{at:013}#{subject}#{seq:010}")
}

pub(crate) fn log_by_actor(actor: &str) -> String {
    format!("LOGACTOR#{actor}")
}

pub(crate) fn log_by_kind(kind: &str) -> String {
    format!("LOGKIND#{kind}")
}

/// `day` is `YYYY-MM-DD`.
pub(crate) fn log_by_day(day: &str) -> String {
    format!("LOGDAY#{day}")
}

// Clusters and HATs.
pub(crate) const CLUSTERS: &str = "CLUSTERS";
pub(crate) const ALL_HATS: &str = "HATS";
pub(crate) const HAT_SK: &str = "HAT";

pub(crate) fn cluster(domain: &str) -> Item {
    key(format!("CLUSTER#{domain}"), "CLUSTER")
}

pub(crate) fn hat(address: &str) -> Item {
    key(hat_partition(address), HAT_SK)
}

pub(crate) fn hat_partition(address: &str) -> String {
    format!("HAT#{address}")
}

pub(crate) fn hats_of(cluster: &str) -> String {
    format!("HATS#{cluster}")
}

// Statistics.
pub(crate) const DESCRIPTIONS: &str = "DESC";

pub(crate) fn debit(hat: &str, data_debit_key: &str, time: i64, operation: &str) -> Item {
    key(
        hat_partition(hat),
        format!("{}{time:013}#{operation}", debit_prefix(data_debit_key)),
    )
}

pub(crate) fn debit_prefix(data_debit_key: &str) -> String {
    format!("DEBIT#{data_debit_key}#")
}

pub(crate) fn seen(hat: &str, hour: &str, bucket: u8) -> Item {
    key(format!("SEEN#{hat}#{hour}"), format!("{bucket}"))
}

pub(crate) fn counter_shard(name: &str, shard: u64) -> Item {
    key(format!("COUNTER#{name}#{shard:02}"), "COUNTER")
}

pub(crate) fn fields_partition(shard: u64) -> String {
    format!("FIELDS#{shard:02}")
}

pub(crate) fn fields(shard: u64, namespace: &str, endpoint: &str) -> Item {
    key(fields_partition(shard), format!("{namespace}/{endpoint}"))
}

/// `target` is the description target's JSON text (hashed when too long for a sort key).
pub(crate) fn description(target: &str) -> Item {
    key(
        DESCRIPTIONS.to_owned(),
        dex::stats::tree::target_key(target),
    )
}

/// A failed-login counter (`accounts::login_limits`; the key is already hashed).
pub(crate) const LOGIN_FAILURES: &str = "LOGINFAIL";

pub(crate) fn login_failures(key: &str) -> Item {
    self::key(format!("{LOGIN_FAILURES}#{key}"), LOGIN_FAILURES)
}

/// One part of a public read model's snapshot (`stats::snapshot`).
pub(crate) fn snapshot_part(model: &str, part: usize) -> Item {
    key(format!("SNAPSHOT#{model}"), format!("PART#{part}"))
}

/// The key a function reads at init to open its DynamoDB connection (`DynamoStore::warm_up`).
/// Never written; under `SNAPSHOT#`, which even the public readers' policies may read.
pub(crate) fn warm_up() -> Item {
    key("SNAPSHOT#warm-up".to_owned(), "WARM-UP")
}

// Data plugs.
pub(crate) const ALL_PLUGS: &str = "PLUGS";
pub(crate) const APPROVED_PLUGS: &str = "PLUGS#APPROVED";

pub(crate) fn plug(id: &str) -> Item {
    key(format!("PLUG#{id}"), "PLUG")
}

pub(crate) fn plug_name(name: &str) -> Item {
    key(format!("PLUGNAME#{}", name.to_lowercase()), "PLUGNAME")
}

/// The sort key of the plug listings: oldest first.
pub(crate) fn plug_sort(created: i64, id: &str) -> String {
    format!("{created:013}#{id}")
}

pub(crate) fn plug_connection(hat: &str, plug_id: &str) -> Item {
    key(hat_partition(hat), format!("PLUG#{plug_id}"))
}

// Offers.
pub(crate) const ALL_OFFERS: &str = "OFFERS";
pub(crate) const LISTED_OFFERS: &str = "OFFERS#LISTED";
pub(crate) const CLAIM_PREFIX: &str = "CLAIM#";

pub(crate) fn offer_partition(id: &str) -> String {
    format!("OFFER#{id}")
}

pub(crate) fn offer(id: &str) -> Item {
    key(offer_partition(id), "OFFER")
}

/// The sort key of the offer listings (read newest first).
pub(crate) fn offer_sort(created: i64, id: &str) -> String {
    format!("{created:013}#{id}")
}

pub(crate) fn offer_claim(id: &str, hat: &str) -> Item {
    key(offer_partition(id), format!("{CLAIM_PREFIX}{hat}"))
}

/// The sparse index of an offer's reservations, by the end of their lease.
pub(crate) fn offer_leases(id: &str) -> String {
    format!("OFFERLEASE#{id}")
}

pub(crate) fn lease_sort(lease_until: i64, hat: &str) -> String {
    format!("{lease_until:013}#{hat}")
}

// Notices.
pub(crate) const ALL_NOTICES: &str = "NOTICES";
pub(crate) const NOTICE_READ_PREFIX: &str = "NOTICE#";

pub(crate) fn notice_counter() -> Item {
    key(ALL_NOTICES.to_owned(), "COUNTER")
}

/// Ids padded to ten digits, so that the string order is the numeric order.
pub(crate) fn notice_sort(id: u64) -> String {
    format!("{id:010}")
}

pub(crate) fn notice(id: u64) -> Item {
    key(format!("NOTICE#{}", notice_sort(id)), "NOTICE")
}

pub(crate) fn notice_read(hat: &str, id: u64) -> Item {
    key(
        hat_partition(hat),
        format!("{NOTICE_READ_PREFIX}{}", notice_sort(id)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk_sk(item: &Item) -> (String, String) {
        let get = |k: &str| item[k].as_s().unwrap().clone();
        (get("pk"), get("sk"))
    }

    #[test]
    fn keys_have_the_documented_shapes() {
        assert_eq!(
            pk_sk(&account("a1")),
            ("ACCOUNT#a1".into(), "ACCOUNT".into())
        );
        assert_eq!(
            pk_sk(&username(" Bob@X ")),
            ("USERNAME#bob@x".into(), "USERNAME".into())
        );
        assert_eq!(
            pk_sk(&log_head("hat:a")),
            ("LOG#hat:a".into(), "#HEAD".into())
        );
        assert_eq!(
            pk_sk(&log_entry("hat:a", 7)),
            ("LOG#hat:a".into(), "E#0000000007".into())
        );
        assert_eq!(subject_of("LOG#hat:a"), "hat:a");
        assert_eq!(log_sort(5, "hat:a", 2), "0000000000005#hat:a#0000000002");
        assert_eq!(
            pk_sk(&debit("a.hubat.net", "k", 9, "enabled")),
            (
                "HAT#a.hubat.net".into(),
                "DEBIT#k#0000000000009#enabled".into()
            )
        );
        assert_eq!(
            pk_sk(&seen("a.hubat.net", "2026112210", 3)),
            ("SEEN#a.hubat.net#2026112210".into(), "3".into())
        );
        assert_eq!(
            pk_sk(&counter_shard("hats", 4)),
            ("COUNTER#hats#04".into(), "COUNTER".into())
        );
        assert_eq!(
            pk_sk(&fields(12, "ns", "ep")),
            ("FIELDS#12".into(), "ns/ep".into())
        );
        assert_eq!(
            pk_sk(&cluster("hubat.net")),
            ("CLUSTER#hubat.net".into(), "CLUSTER".into())
        );
        assert_eq!(
            pk_sk(&snapshot_part("stats", 1)),
            ("SNAPSHOT#stats".into(), "PART#1".into())
        );
        assert_eq!(pk_sk(&plug("p1")), ("PLUG#p1".into(), "PLUG".into()));
        assert_eq!(
            pk_sk(&plug_name("MyPlug")),
            ("PLUGNAME#myplug".into(), "PLUGNAME".into())
        );
        assert_eq!(plug_sort(5, "p1"), "0000000000005#p1");
        assert_eq!(
            pk_sk(&plug_connection("a.hubat.net", "p1")),
            ("HAT#a.hubat.net".into(), "PLUG#p1".into())
        );
        assert_eq!(pk_sk(&offer("o1")), ("OFFER#o1".into(), "OFFER".into()));
        assert_eq!(
            pk_sk(&offer_claim("o1", "a.hubat.net")),
            ("OFFER#o1".into(), "CLAIM#a.hubat.net".into())
        );
        assert_eq!(offer_sort(5, "o1"), "0000000000005#o1");
        assert_eq!(lease_sort(5, "a.hubat.net"), "0000000000005#a.hubat.net");
        assert_eq!(
            pk_sk(&notice(7)),
            ("NOTICE#0000000007".into(), "NOTICE".into())
        );
        assert_eq!(
            pk_sk(&notice_read("a.hubat.net", 7)),
            ("HAT#a.hubat.net".into(), "NOTICE#0000000007".into())
        );
        assert_eq!(
            pk_sk(&notice_counter()),
            ("NOTICES".into(), "COUNTER".into())
        );
        assert_eq!(
            pk_sk(&hat("a.hubat.net")),
            ("HAT#a.hubat.net".into(), "HAT".into())
        );
    }
}
