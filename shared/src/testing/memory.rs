//! Every store trait in memory, with the DynamoDB adapter's semantics: the same conditions
//! (unique usernames, optimistic versions, markers that must be new), all-or-nothing
//! transactions whose refused actions are reported like cancellation reasons, the log chained
//! per subject with `LogEntry::chain` exactly as `DynamoStore::commit` does, and DynamoDB's
//! limits (`limits`) checked on the shapes the adapter would send.
//!
//! One lock makes each transaction atomic; every call first yields, so concurrent callers
//! interleave between their reads and their writes as they do against the table.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

mod apps;
mod login_limits;
mod notices;
mod offers;

use super::limits::{self, ItemSize, Shape};
use crate::accounts::AccountStore;
use crate::accounts::{Account, AccountGuard, guard_changed, normalise_username};
use crate::error::{DexError, DexResult};
use crate::hats::{Cluster, ClusterStore, HatStore, RegisteredHat};
use crate::page::{Page, PageRequest};
use crate::plugs::{DataPlug, PlugConnection, PlugStore};
use crate::ports::{Clock, Random, SystemClock, SystemRandom};
use crate::roles::Role;
use crate::stats::ingest::{ChunkPlan, DESCRIPTIONS_PER_COMMIT, OTHER_FIELDS, field_shard};
use crate::stats::limits::{MAX_FIELDS_PER_SHARD_ITEM, MAX_MARKERS_PER_BUCKET};
use crate::stats::snapshot::{MAX_SNAPSHOT_BYTES, Snapshot, SnapshotStore};
use crate::stats::tree::{DescriptionTarget, FieldCounts};
use crate::stats::{ChunkAction, ChunkCommit, DATA_IN, DATA_OUT, DebitState, Refusal, StatsStore};
use crate::stats::{DATA_PLUGS, HATS_COUNTER};
use crate::txlog::{LogEntry, LogEvent, LogFilter, LogStore, chain_events};

/// As the adapter: counters spread over 16 partitions, markers kept 30 days, a log listing
/// by time alone walks at most 366 days.
const SHARDS: u64 = 16;
const MARKER_TTL_SECS: i64 = 30 * 24 * 3600;
const MAX_DAYS_WALKED: i64 = 366;

/// An endpoint's field counts (field → count) and when they last changed.
type EndpointFields = (BTreeMap<String, i64>, i64);

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, Account>,
    /// Normalised username → account id.
    usernames: BTreeMap<String, String>,
    /// Subject → entries in seq order.
    log: BTreeMap<String, Vec<LogEntry>>,
    clusters: BTreeMap<String, Cluster>,
    hats: BTreeMap<String, RegisteredHat>,
    /// (counter, shard) → (value, updatedAt).
    counters: BTreeMap<(String, u64), (i64, i64)>,
    /// (hat, hour, bucket) → markers.
    seen: BTreeMap<(String, String, u8), BTreeSet<String>>,
    /// (shard, namespace, endpoint) → (field → count, updatedAt).
    fields: BTreeMap<(u64, String, String), EndpointFields>,
    descriptions: BTreeMap<DescriptionTarget, String>,
    /// (hat, sort key `DEBIT#<key>#<time>#<operation>`) → state.
    debits: BTreeMap<(String, String), DebitState>,
    /// Read model → its snapshot (body, built at, lease until).
    snapshots: BTreeMap<String, Snapshot>,
    /// Offer id → offer.
    offers: BTreeMap<String, crate::offers::Offer>,
    /// (offer id, HAT address) → its claim.
    claims: BTreeMap<(String, String), crate::offers::Claim>,
    plugs: BTreeMap<String, DataPlug>,
    /// Lowercased plug name → plug id.
    plug_names: BTreeMap<String, String>,
    /// (plug id, HAT) → connection.
    connections: BTreeMap<(String, String), PlugConnection>,
    /// The applications registry and consents (`memory/apps.rs`).
    apps: apps::AppsState,
    notices: notices::NoticesState,
    /// Failed-login counter key → its counter (`accounts::login_limits`).
    login_failures: BTreeMap<String, crate::accounts::FailureCount>,
}

/// One write of a transaction: what DynamoDB checks, whether its condition holds, and its
/// effect.
struct Write {
    shape: Shape,
    holds: Box<dyn Fn(&State) -> bool + Send>,
    apply: Box<dyn FnOnce(&mut State) + Send>,
}

impl Write {
    fn new(
        shape: Shape,
        holds: impl Fn(&State) -> bool + Send + 'static,
        apply: impl FnOnce(&mut State) + Send + 'static,
    ) -> Self {
        Self {
            shape,
            holds: Box::new(holds),
            apply: Box::new(apply),
        }
    }
}

/// Like the adapter's `CommitFailure`: the indices of the writes whose condition failed.
enum Failure {
    Condition(Vec<usize>),
    Error(DexError),
}

impl From<DexError> for Failure {
    fn from(e: DexError) -> Self {
        Self::Error(e)
    }
}

struct Inner {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

/// The in-memory store. Clones share the same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock), Arc::new(SystemRandom))
    }
}

fn shape(pk: String, sk: impl Into<String>, size: ItemSize, condition: Option<&str>) -> Shape {
    let sk = sk.into();
    let item_bytes = size.s("pk", &pk).s("sk", &sk).0;
    Shape {
        pk,
        sk,
        item_bytes,
        condition: condition.map(str::to_owned),
        update: None,
        request_bytes: None,
    }
}

fn account_size(a: &Account) -> ItemSize {
    let roles: Vec<String> = a.roles.iter().map(Role::to_string).collect();
    ItemSize::default()
        .s("accountId", &a.account_id)
        .s("username", &a.username)
        .s("passwordHash", &a.password_hash)
        .list("roles", roles.iter().map(String::as_str))
        .b("disabled")
        .n("createdAt", a.created_at)
        .n("updatedAt", a.updated_at)
        .n("version", a.version)
        .s("gsi1pk", "ACCOUNTS")
        .s("gsi1sk", &normalise_username(&a.username))
}

fn cluster_size(c: &Cluster) -> ItemSize {
    ItemSize::default()
        .s("domain", &c.domain)
        .list("provisioners", c.provisioners.iter().map(String::as_str))
        .b("certified")
        .s("secretName", &c.secret_name)
        .n("createdAt", c.created_at)
        .n("updatedAt", c.updated_at)
        .n("version", c.version)
        .s("gsi1pk", "CLUSTERS")
        .s("gsi1sk", &c.domain)
}

fn hat_size(h: &RegisteredHat) -> ItemSize {
    let size = ItemSize::default()
        .s("address", &h.address)
        .s("cluster", &h.cluster)
        .s("publicKeyPem", &h.public_key_pem)
        .s("keyFingerprint", &h.key_fingerprint)
        .n("registeredAt", h.registered_at)
        .n("keyUpdatedAt", h.key_updated_at)
        .n("version", h.version)
        .s("gsi1pk", &format!("HATS#{}", h.cluster))
        .s("gsi1sk", &h.address)
        .s("gsi2pk", "HATS")
        .s("gsi2sk", &h.address);
    match &h.application_id {
        Some(app) => size.s("applicationId", app),
        None => size,
    }
}

/// The sort key of the log's GSIs: time, subject, seq.
fn log_sort(e: &LogEntry) -> String {
    format!("{:013}#{}#{:010}", e.at, e.subject, e.seq)
}

fn log_entry_shape(e: &LogEntry) -> Shape {
    let sort = log_sort(e);
    let size = ItemSize::default()
        .s("subject", &e.subject)
        .n("seq", e.seq)
        .s("kind", &e.kind)
        .s("actor", &e.actor)
        .n("at", e.at)
        .s("details", &e.details.to_string())
        .s("hash", &e.hash)
        .s("prevHash", &e.prev_hash)
        .s("gsi1pk", &format!("LOGACTOR#{}", e.actor))
        .s("gsi1sk", &sort)
        .s("gsi2pk", &format!("LOGKIND#{}", e.kind))
        .s("gsi2sk", &sort)
        .s("gsi3pk", "LOGDAY#yyyy-mm-dd")
        .s("gsi3sk", &sort);
    shape(
        format!("LOG#{}", e.subject),
        format!("E#{:010}", e.seq),
        size,
        Some("attribute_not_exists(pk)"),
    )
}

fn counter_write(random: &dyn Random, name: &str, by: i64, now: i64) -> Write {
    let shard = random.below(SHARDS);
    let name = name.to_owned();
    let size = ItemSize::default()
        .n("n", i64::MAX)
        .s("counter", &name)
        .n("updatedAt", now);
    let mut s = shape(format!("COUNTER#{name}#{shard:02}"), "COUNTER", size, None);
    s.update = Some("ADD #n :by SET #name = :name, #t = :now".into());
    Write::new(
        s,
        |_| true,
        move |st| {
            let c = st.counters.entry((name, shard)).or_default();
            c.0 += by;
            c.1 = now;
        },
    )
}

/// The page of `sorted` (in listing order, each with its sort key) after the cursor.
fn page_of<T: Clone>(
    sorted: Vec<(String, T)>,
    descending: bool,
    page: &PageRequest,
    listing: &str,
) -> DexResult<Page<T>> {
    // The memory store's own cursors: `mem:<listing>:<sort key, base64url>`.
    let prefix = format!("mem:{listing}:");
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(
            c.as_str()
                .strip_prefix(&prefix)
                .and_then(|k| URL_SAFE_NO_PAD.decode(k).ok())
                .and_then(|k| String::from_utf8(k).ok())
                .ok_or_else(|| DexError::bad_request("cursor is not one this API returned"))?,
        ),
    };
    let start = match &after {
        None => 0,
        Some(key) => sorted
            .iter()
            .position(|(k, _)| if descending { k < key } else { k > key })
            .unwrap_or(sorted.len()),
    };
    let limit = page.limit.max(1) as usize;
    let rest = &sorted[start.min(sorted.len())..];
    let items: Vec<T> = rest.iter().take(limit).map(|(_, v)| v.clone()).collect();
    let cursor = (rest.len() > limit)
        .then(|| format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&rest[limit - 1].0)));
    Ok(Page { items, cursor })
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                clock,
                random,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().expect("memory store state")
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    /// The number of markers held for `hat`, for tests of exactly-once.
    pub fn marker_count(&self, hat: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|((h, _, _), _)| h == hat)
            .map(|(_, m)| m.len())
            .sum()
    }

    /// `DynamoStore::commit` in memory: chain heads read and conditioned on, one log entry per
    /// event, the limits checked, every condition evaluated before anything is written.
    fn commit(
        &self,
        st: &mut State,
        writes: Vec<Write>,
        events: Vec<LogEvent>,
    ) -> Result<Vec<LogEntry>, Failure> {
        let subjects: BTreeSet<String> = events.iter().map(|e| e.subject.clone()).collect();
        let head_keys: Vec<(String, String)> = subjects
            .iter()
            .map(|s| (format!("LOG#{s}"), "#HEAD".to_owned()))
            .collect();
        limits::check_batch_gets(&head_keys)?;
        let at = self.now();
        let (entries, next) = chain_events(
            &events,
            subjects.iter().map(String::as_str),
            |s| {
                st.log
                    .get(s)
                    .and_then(|l| l.last())
                    .map(|e| (e.seq, e.hash.clone()))
            },
            at,
        );
        let mut shapes: Vec<Shape> = writes.iter().map(|w| w.shape.clone()).collect();
        shapes.extend(entries.iter().map(log_entry_shape));
        for subject in &subjects {
            let (seq, hash) = &next[subject.as_str()];
            let condition = if st.log.contains_key(subject) {
                "#seq = :seq"
            } else {
                "attribute_not_exists(pk)"
            };
            shapes.push(shape(
                format!("LOG#{subject}"),
                "#HEAD",
                ItemSize::default().n("seq", seq).s("hash", hash),
                Some(condition),
            ));
        }
        limits::check_transaction(&shapes)?;
        let failed: Vec<usize> = writes
            .iter()
            .enumerate()
            .filter(|(_, w)| !(w.holds)(st))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Err(Failure::Condition(failed));
        }
        for write in writes {
            (write.apply)(st);
        }
        for entry in &entries {
            st.log
                .entry(entry.subject.clone())
                .or_default()
                .push(entry.clone());
        }
        Ok(entries)
    }

    fn account_write(&self, account: &Account, expected_version: Option<u64>) -> Write {
        let a = account.clone();
        let id = a.account_id.clone();
        let condition = match expected_version {
            None => "attribute_not_exists(pk)",
            Some(_) => "#v = :v",
        };
        Write::new(
            shape(
                format!("ACCOUNT#{id}"),
                "ACCOUNT",
                account_size(account),
                Some(condition),
            ),
            move |st| match expected_version {
                None => !st.accounts.contains_key(&id),
                Some(v) => st.accounts.get(&id).is_some_and(|a| a.version == v),
            },
            move |st| {
                st.accounts.insert(a.account_id.clone(), a);
            },
        )
    }

    fn cluster_write(&self, cluster: &Cluster, expected_version: Option<u64>) -> Write {
        let c = cluster.clone();
        let domain = c.domain.clone();
        let condition = match expected_version {
            None => "attribute_not_exists(pk)",
            Some(_) => "#v = :v",
        };
        Write::new(
            shape(
                format!("CLUSTER#{domain}"),
                "CLUSTER",
                cluster_size(cluster),
                Some(condition),
            ),
            move |st| match expected_version {
                None => !st.clusters.contains_key(&domain),
                Some(v) => st.clusters.get(&domain).is_some_and(|c| c.version == v),
            },
            move |st| {
                st.clusters.insert(c.domain.clone(), c);
            },
        )
    }
}

fn only_errors(f: Failure, what: &str) -> DexError {
    match f {
        Failure::Error(e) => e,
        Failure::Condition(_) => DexError::internal(format!("{what} had a condition")),
    }
}

impl AccountStore for MemoryStore {
    async fn insert_account(&self, account: &Account, event: LogEvent) -> DexResult<()> {
        tokio::task::yield_now().await;
        let username = normalise_username(&account.username);
        let (name, id) = (username.clone(), account.account_id.clone());
        let writes = vec![
            Write::new(
                shape(
                    format!("USERNAME#{username}"),
                    "USERNAME",
                    ItemSize::default().s("accountId", &id),
                    Some("attribute_not_exists(pk)"),
                ),
                move |st| !st.usernames.contains_key(&name),
                move |st| {
                    st.usernames.insert(username, id);
                },
            ),
            self.account_write(account, None),
        ];
        let mut st = self.lock();
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(failed)) if failed.first() == Some(&0) => Err(
                DexError::Conflict(format!("username {:?} is taken", account.username)),
            ),
            Err(Failure::Condition(_)) => Err(DexError::Conflict("account id collision".into())),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn get_account(&self, account_id: &str) -> DexResult<Option<Account>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("ACCOUNT#{account_id}"), "ACCOUNT")?;
        Ok(self.lock().accounts.get(account_id).cloned())
    }

    async fn find_account_by_username(&self, username: &str) -> DexResult<Option<Account>> {
        tokio::task::yield_now().await;
        let username = normalise_username(username);
        limits::check_key(&format!("USERNAME#{username}"), "USERNAME")?;
        let st = self.lock();
        Ok(st
            .usernames
            .get(&username)
            .and_then(|id| st.accounts.get(id))
            .cloned())
    }

    async fn list_accounts(&self, page: PageRequest) -> DexResult<Page<Account>> {
        tokio::task::yield_now().await;
        let mut sorted: Vec<(String, Account)> = self
            .lock()
            .accounts
            .values()
            .map(|a| {
                let key = format!("{}#{}", normalise_username(&a.username), a.account_id);
                (key, a.clone())
            })
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        page_of(sorted, false, &page, "accounts")
    }

    async fn update_account(
        &self,
        account: &Account,
        expected_version: u64,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut write = self.account_write(account, Some(expected_version));
        write.shape.condition = Some("attribute_exists(pk) AND #v = :v".into());
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], events) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the account changed meanwhile; read it again and retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn update_account_guarded(
        &self,
        account: &Account,
        expected_version: u64,
        guard: &AccountGuard,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut write = self.account_write(account, Some(expected_version));
        write.shape.condition = Some("attribute_exists(pk) AND #v = :v".into());
        // As the adapter's ConditionCheck: checked in the same commit, never written.
        let (id, version) = (guard.account_id.clone(), guard.version);
        let check = Write::new(
            shape(
                format!("ACCOUNT#{id}"),
                "ACCOUNT",
                ItemSize::default(),
                Some("attribute_exists(pk) AND #v = :v"),
            ),
            move |st| st.accounts.get(&id).is_some_and(|a| a.version == version),
            |_| {},
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write, check], events) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(failed)) if failed.first() == Some(&0) => Err(
                DexError::Conflict("the account changed meanwhile; read it again and retry".into()),
            ),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(guard_changed())),
            Err(Failure::Error(e)) => Err(e),
        }
    }
}

impl LogStore for MemoryStore {
    async fn append_log(&self, events: Vec<LogEvent>) -> DexResult<Vec<LogEntry>> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        self.commit(&mut st, vec![], events)
            .map_err(|f| only_errors(f, "log append"))
    }

    async fn query_log(&self, filter: &LogFilter, page: PageRequest) -> DexResult<Page<LogEntry>> {
        tokio::task::yield_now().await;
        let from = filter.from.unwrap_or(0);
        let to = filter.to.unwrap_or(i64::MAX / 2);
        if from > to {
            return Err(DexError::bad_request("from is after to"));
        }
        let by_time_alone =
            filter.subject.is_none() && filter.actor.is_none() && filter.kind.is_none();
        // As the adapter's walk over daily partitions: at most 366 days back from `to`.
        const DAY: i64 = 24 * 3600 * 1000;
        let newest = to.min(self.now());
        let start = from.max(newest - MAX_DAYS_WALKED * DAY);
        let (oldest_day, after_newest_day) = (
            start - start.rem_euclid(DAY),
            newest - newest.rem_euclid(DAY) + DAY,
        );
        let st = self.lock();
        let mut sorted: Vec<(String, LogEntry)> = st
            .log
            .values()
            .flatten()
            .filter(|e| {
                filter.subject.as_ref().is_none_or(|s| &e.subject == s)
                    && filter.actor.as_ref().is_none_or(|a| &e.actor == a)
                    && filter.kind.as_ref().is_none_or(|k| &e.kind == k)
                    && e.at >= from
                    && e.at <= to
                    && (!by_time_alone || (e.at >= oldest_day && e.at < after_newest_day))
            })
            .map(|e| {
                // A subject's partition is in seq order; the GSIs in (time, subject, seq).
                let key = if filter.subject.is_some() {
                    format!("{:010}", e.seq)
                } else {
                    log_sort(e)
                };
                (key, e.clone())
            })
            .collect();
        drop(st);
        sorted.sort_by(|a, b| b.0.cmp(&a.0));
        page_of(sorted, true, &page, "log")
    }

    async fn subject_history(&self, subject: &str, page: PageRequest) -> DexResult<Page<LogEntry>> {
        tokio::task::yield_now().await;
        let sorted: Vec<(String, LogEntry)> = self
            .lock()
            .log
            .get(subject)
            .into_iter()
            .flatten()
            .map(|e| (format!("{:010}", e.seq), e.clone()))
            .collect();
        page_of(sorted, false, &page, "history")
    }
}

impl ClusterStore for MemoryStore {
    async fn get_clusters(&self, domains: &[String]) -> DexResult<Vec<Cluster>> {
        tokio::task::yield_now().await;
        let keys: Vec<(String, String)> = domains
            .iter()
            .map(|d| (format!("CLUSTER#{d}"), "CLUSTER".to_owned()))
            .collect();
        if keys.is_empty() {
            return Ok(vec![]);
        }
        limits::check_batch_gets(&keys)?;
        let st = self.lock();
        Ok(domains
            .iter()
            .filter_map(|d| st.clusters.get(d).cloned())
            .collect())
    }

    async fn list_clusters(&self) -> DexResult<Vec<Cluster>> {
        tokio::task::yield_now().await;
        Ok(self.lock().clusters.values().cloned().collect())
    }

    async fn save_cluster(
        &self,
        cluster: &Cluster,
        expected_version: Option<u64>,
        accounts: &[(Account, u64)],
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut writes = vec![self.cluster_write(cluster, expected_version)];
        for (account, expected) in accounts {
            writes.push(self.account_write(account, Some(*expected)));
        }
        let mut st = self.lock();
        match self.commit(&mut st, writes, events) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the cluster or a provisioner account changed meanwhile; retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }
}

impl HatStore for MemoryStore {
    async fn get_hat(&self, address: &str) -> DexResult<Option<RegisteredHat>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("HAT#{address}"), "HAT")?;
        Ok(self.lock().hats.get(address).cloned())
    }

    async fn get_hat_and_clusters(
        &self,
        address: &str,
        cluster_candidates: &[String],
    ) -> DexResult<(Option<RegisteredHat>, Vec<Cluster>)> {
        tokio::task::yield_now().await;
        let mut keys = vec![(format!("HAT#{address}"), "HAT".to_owned())];
        keys.extend(
            cluster_candidates
                .iter()
                .map(|d| (format!("CLUSTER#{d}"), "CLUSTER".to_owned())),
        );
        limits::check_batch_gets(&keys)?;
        let st = self.lock();
        Ok((
            st.hats.get(address).cloned(),
            cluster_candidates
                .iter()
                .filter_map(|d| st.clusters.get(d).cloned())
                .collect(),
        ))
    }

    async fn insert_hat(&self, hat: &RegisteredHat, event: LogEvent) -> DexResult<bool> {
        tokio::task::yield_now().await;
        let (h, address) = (hat.clone(), hat.address.clone());
        let writes = vec![
            Write::new(
                shape(
                    format!("HAT#{address}"),
                    "HAT",
                    hat_size(hat),
                    Some("attribute_not_exists(pk)"),
                ),
                move |st| !st.hats.contains_key(&address),
                move |st| {
                    st.hats.insert(h.address.clone(), h);
                },
            ),
            counter_write(&*self.inner.random, HATS_COUNTER, 1, self.now()),
        ];
        let mut st = self.lock();
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => Ok(true),
            Err(Failure::Condition(failed)) if failed.first() == Some(&0) => Ok(false),
            Err(f) => Err(only_errors(f, "counter update")),
        }
    }

    async fn replace_hat_key(
        &self,
        hat: &RegisteredHat,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let (h, address) = (hat.clone(), hat.address.clone());
        let write = Write::new(
            shape(
                format!("HAT#{address}"),
                "HAT",
                hat_size(hat),
                Some("#v = :v"),
            ),
            move |st| {
                st.hats
                    .get(&address)
                    .is_some_and(|h| h.version == expected_version)
            },
            move |st| {
                st.hats.insert(h.address.clone(), h);
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the HAT's key changed meanwhile; retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn list_hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<RegisteredHat>> {
        tokio::task::yield_now().await;
        let sorted: Vec<(String, RegisteredHat)> = self
            .lock()
            .hats
            .values()
            .filter(|h| cluster.is_none_or(|c| h.cluster == c))
            .map(|h| (h.address.clone(), h.clone()))
            .collect();
        page_of(sorted, false, &page, "hats")
    }
}

/// What an update sends: its key, expressions, and substitutions (each placeholder and value).
fn update_request_bytes<'a>(
    s: &Shape,
    substitutions: impl IntoIterator<Item = (usize, usize)> + 'a,
) -> usize {
    s.pk.len()
        + s.sk.len()
        + s.update.as_ref().map_or(0, String::len)
        + s.condition.as_ref().map_or(0, String::len)
        + substitutions
            .into_iter()
            .map(|(placeholder, value)| placeholder + value)
            .sum::<usize>()
}

impl MemoryStore {
    /// The writes of one chunk, in the adapter's order: the marker buckets first.
    fn chunk_writes(
        &self,
        st: &State,
        hat: &str,
        plan: &ChunkPlan,
    ) -> (Vec<Write>, Vec<ChunkAction>) {
        let now = self.now();
        let mut writes = Vec::new();
        let mut targets = Vec::new();
        for ((hour, bucket), markers) in &plan.seen {
            let id = (hat.to_owned(), hour.clone(), *bucket);
            let held = st.seen.get(&id);
            let after: BTreeSet<&str> = held
                .into_iter()
                .flatten()
                .map(String::as_str)
                .chain(markers.iter().map(String::as_str))
                .collect();
            let size = ItemSize::default()
                .string_set("h", after)
                .n("expiresAt", now / 1000 + MARKER_TTL_SECS);
            let mut condition = vec!["(attribute_not_exists(#h) OR size(#h) <= :room)".to_owned()];
            condition.extend((0..markers.len()).map(|i| format!("NOT contains(#h, :m{i})")));
            let mut s = shape(
                format!("SEEN#{hat}#{hour}"),
                bucket.to_string(),
                size,
                Some(&condition.join(" AND ")),
            );
            s.update = Some("ADD #h :new SET #x = :x".into());
            let values = markers
                .iter()
                .enumerate()
                .flat_map(|(i, m)| [(format!(":m{i}").len(), m.len()), (0, m.len())]);
            s.request_bytes = Some(update_request_bytes(&s, values.chain([(2, 1), (2, 10)])));
            let (check, apply) = (markers.clone(), markers.clone());
            let room = MAX_MARKERS_PER_BUCKET.saturating_sub(markers.len());
            let id2 = id.clone();
            writes.push(Write::new(
                s,
                move |st| {
                    st.seen.get(&id).is_none_or(|held| {
                        held.len() <= room && check.iter().all(|m| !held.contains(m))
                    })
                },
                move |st| st.seen.entry(id2).or_default().extend(apply),
            ));
            targets.push(ChunkAction::Bucket(hour.clone(), *bucket));
        }
        if plan.data_in > 0 {
            writes.push(counter_write(
                &*self.inner.random,
                DATA_IN,
                plan.data_in,
                now,
            ));
            targets.push(ChunkAction::Other);
        }
        if plan.data_out > 0 {
            writes.push(counter_write(
                &*self.inner.random,
                DATA_OUT,
                plan.data_out,
                now,
            ));
            targets.push(ChunkAction::Other);
        }
        let shard = field_shard(hat);
        for ((namespace, endpoint), fields) in &plan.fields {
            let id = (shard, namespace.clone(), endpoint.clone());
            let held = st.fields.get(&id).map(|(f, _)| f);
            let all: BTreeSet<&String> = held
                .into_iter()
                .flat_map(|f| f.keys())
                .chain(fields.keys())
                .collect();
            let names: Vec<String> = fields
                .keys()
                .filter(|f| *f != OTHER_FIELDS)
                .cloned()
                .collect();
            let mut size = ItemSize::default()
                .s("namespace", namespace)
                .s("endpoint", endpoint)
                .n("updatedAt", now)
                .string_set(
                    "n",
                    all.iter()
                        .filter(|f| **f != OTHER_FIELDS)
                        .map(|f| f.as_str()),
                );
            for name in &all {
                size = size.n(&format!("f:{name}"), i64::MAX);
            }
            let adds: Vec<String> = (0..fields.len()).map(|i| format!("#f{i} :f{i}")).collect();
            let condition = (!names.is_empty()).then(|| {
                let known: Vec<String> = (0..names.len())
                    .map(|i| format!("contains(#n, :n{i})"))
                    .collect();
                format!(
                    "attribute_not_exists(#n) OR size(#n) <= :room OR ({})",
                    known.join(" AND ")
                )
            });
            let mut s = shape(
                format!("FIELDS#{shard:02}"),
                format!("{namespace}/{endpoint}"),
                size,
                condition.as_deref(),
            );
            s.update = Some(format!(
                "ADD {}{} SET #ns = :ns, #ep = :ep, #t = :t",
                adds.join(", "),
                if names.is_empty() { "" } else { ", #n :names" }
            ));
            let values = fields
                .keys()
                .enumerate()
                .map(|(i, f)| (format!("#f{i}:f{i}").len() + 2 + f.len(), 10))
                .chain(
                    names
                        .iter()
                        .enumerate()
                        .flat_map(|(i, n)| [(format!(":n{i}").len(), n.len()), (0, n.len())]),
                )
                .chain([(6, namespace.len()), (6, endpoint.len()), (4, 13)]);
            s.request_bytes = Some(update_request_bytes(&s, values));
            let room = MAX_FIELDS_PER_SHARD_ITEM.saturating_sub(names.len());
            let (check_id, check_names) = (id.clone(), names.clone());
            let fields = fields.clone();
            writes.push(Write::new(
                s,
                move |st| {
                    let Some((held, _)) = st.fields.get(&check_id) else {
                        return true;
                    };
                    let known = held.keys().filter(|f| *f != OTHER_FIELDS).count();
                    check_names.is_empty()
                        || known <= room
                        || check_names.iter().all(|n| held.contains_key(n))
                },
                move |st| {
                    let entry = st.fields.entry(id).or_default();
                    for (field, count) in fields {
                        *entry.0.entry(field).or_default() += count;
                    }
                    entry.1 = now;
                },
            ));
            targets.push(ChunkAction::Endpoint(namespace.clone(), endpoint.clone()));
        }
        for (time, event) in &plan.debits {
            let sk = format!(
                "DEBIT#{}#{time:013}#{}",
                event.data_debit_key, event.operation
            );
            let text = serde_json::to_string(event).expect("serialisable");
            let size = ItemSize::default().s("event", &text).n("time", time);
            let id = (hat.to_owned(), sk.clone());
            let state = DebitState {
                event: event.clone(),
                time: *time,
            };
            writes.push(Write::new(
                shape(format!("HAT#{hat}"), sk, size, None),
                |_| true,
                move |st| {
                    st.debits.insert(id, state);
                },
            ));
            targets.push(ChunkAction::Other);
        }
        (writes, targets)
    }
}

impl StatsStore for MemoryStore {
    async fn commit_chunk(
        &self,
        hat: &str,
        plan: &ChunkPlan,
        event: LogEvent,
    ) -> DexResult<ChunkCommit> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        let (writes, targets) = self.chunk_writes(&st, hat, plan);
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => Ok(ChunkCommit::Committed),
            Err(Failure::Condition(failed)) => {
                // What DynamoDB returns with ALL_OLD: the whole set of each refused bucket.
                let mut refusal = Refusal::default();
                for index in failed {
                    let action = targets.get(index);
                    refusal.record(action, || match action {
                        Some(ChunkAction::Bucket(hour, bucket)) => st
                            .seen
                            .get(&(hat.to_owned(), hour.clone(), *bucket))
                            .into_iter()
                            .flatten()
                            .cloned()
                            .collect(),
                        _ => Vec::new(),
                    })?;
                }
                Ok(ChunkCommit::Refused(refusal))
            }
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn figures(&self, names: &[&str]) -> DexResult<HashMap<String, (i64, i64)>> {
        tokio::task::yield_now().await;
        let keys: Vec<(String, String)> = names
            .iter()
            .flat_map(|name| {
                (0..SHARDS)
                    .map(move |shard| (format!("COUNTER#{name}#{shard:02}"), "COUNTER".into()))
            })
            .collect();
        limits::check_batch_gets(&keys)?;
        let st = self.lock();
        let mut out: HashMap<String, (i64, i64)> =
            names.iter().map(|n| (n.to_string(), (0, 0))).collect();
        for ((name, _), (value, updated)) in &st.counters {
            if let Some(entry) = out.get_mut(name) {
                entry.0 += value;
                entry.1 = entry.1.max(*updated);
            }
        }
        Ok(out)
    }

    async fn field_counts(&self) -> DexResult<(FieldCounts, i64)> {
        tokio::task::yield_now().await;
        let st = self.lock();
        let mut counts = FieldCounts::new();
        let mut updated = 0;
        for ((_, namespace, endpoint), (fields, at)) in &st.fields {
            updated = updated.max(*at);
            for (field, count) in fields {
                *counts
                    .entry((namespace.clone(), endpoint.clone(), field.clone()))
                    .or_default() += count;
            }
        }
        Ok((counts, updated))
    }

    async fn descriptions(&self) -> DexResult<BTreeMap<DescriptionTarget, String>> {
        tokio::task::yield_now().await;
        Ok(self.lock().descriptions.clone())
    }

    async fn save_descriptions(
        &self,
        descriptions: &[(DescriptionTarget, String)],
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        debug_assert!(descriptions.len() <= DESCRIPTIONS_PER_COMMIT);
        let writes = descriptions
            .iter()
            .map(|(target, description)| {
                let text = serde_json::to_string(target).expect("serialisable");
                let size = ItemSize::default()
                    .s("target", &text)
                    .s("description", description);
                let (target, description) = (target.clone(), description.clone());
                Write::new(
                    shape("DESC".into(), text, size, None),
                    |_| true,
                    move |st| {
                        st.descriptions.insert(target, description);
                    },
                )
            })
            .collect();
        let mut st = self.lock();
        self.commit(&mut st, writes, vec![event])
            .map(|_| ())
            .map_err(|f| only_errors(f, "descriptions"))
    }

    async fn debit_state(&self, hat: &str, data_debit_key: &str) -> DexResult<Option<DebitState>> {
        tokio::task::yield_now().await;
        let prefix = format!("DEBIT#{data_debit_key}#");
        limits::check_key(&format!("HAT#{hat}"), &prefix)?;
        // As the adapter's query: the greatest sort key with the prefix.
        Ok(self
            .lock()
            .debits
            .iter()
            .filter(|((h, sk), _)| h == hat && sk.starts_with(&prefix))
            .max_by(|a, b| a.0.1.cmp(&b.0.1))
            .map(|(_, state)| state.clone()))
    }
}

impl SnapshotStore for MemoryStore {
    async fn read_snapshot(&self, model: &str) -> DexResult<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(model).cloned())
    }

    async fn take_snapshot_lease(&self, model: &str, now: i64, until: i64) -> DexResult<bool> {
        let mut st = self.lock();
        let entry = st.snapshots.entry(model.to_owned()).or_insert(Snapshot {
            body: Arc::new(Vec::new()),
            built_at: 0,
            lease_until: 0,
        });
        if entry.lease_until > now {
            return Ok(false);
        }
        entry.lease_until = until;
        Ok(true)
    }

    async fn save_snapshot(&self, model: &str, body: &[u8], built_at: i64) -> DexResult<bool> {
        if body.len() > MAX_SNAPSHOT_BYTES {
            return Ok(false);
        }
        self.lock().snapshots.insert(
            model.to_owned(),
            Snapshot {
                body: Arc::new(body.to_vec()),
                built_at,
                lease_until: 0,
            },
        );
        Ok(true)
    }
}

fn plug_size(p: &DataPlug) -> ItemSize {
    let size = ItemSize::default()
        .s("plugId", &p.id)
        .s("providerId", &p.provider_id)
        .s("providerUsername", &p.provider_username)
        .n("providerCreated", p.provider_created)
        .s("name", &p.name)
        .s("description", &p.description)
        .s("url", &p.url)
        .s("illustrationUrl", &p.illustration_url)
        .s("passwordHash", &p.password_hash)
        .b("approved")
        .n("created", p.created)
        .n("updatedAt", p.updated_at)
        .n("version", p.version)
        .s("gsi1pk", "PLUGS")
        .s("gsi1sk", &format!("{:013}#{}", p.created, p.id));
    if p.approved {
        size.s("gsi2pk", "PLUGS#APPROVED")
            .s("gsi2sk", &format!("{:013}#{}", p.created, p.id))
    } else {
        size
    }
}

impl PlugStore for MemoryStore {
    async fn insert_plug(&self, plug: &DataPlug, event: LogEvent) -> DexResult<()> {
        tokio::task::yield_now().await;
        let name = plug.name.to_lowercase();
        let (n1, n2, id) = (name.clone(), name.clone(), plug.id.clone());
        let (p, pid) = (plug.clone(), plug.id.clone());
        let writes = vec![
            Write::new(
                shape(
                    format!("PLUGNAME#{name}"),
                    "PLUGNAME",
                    ItemSize::default().s("plugId", &id),
                    Some("attribute_not_exists(pk)"),
                ),
                move |st| !st.plug_names.contains_key(&n1),
                move |st| {
                    st.plug_names.insert(n2, id);
                },
            ),
            Write::new(
                shape(
                    format!("PLUG#{pid}"),
                    "PLUG",
                    plug_size(plug),
                    Some("attribute_not_exists(pk)"),
                ),
                move |st| !st.plugs.contains_key(&pid),
                move |st| {
                    st.plugs.insert(p.id.clone(), p);
                },
            ),
        ];
        let mut st = self.lock();
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(failed)) if failed.first() == Some(&0) => Err(
                DexError::Conflict(format!("a data plug named {:?} exists", plug.name)),
            ),
            Err(Failure::Condition(_)) => Err(DexError::Conflict("data plug id collision".into())),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn get_plug(&self, id: &str) -> DexResult<Option<DataPlug>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("PLUG#{id}"), "PLUG")?;
        Ok(self.lock().plugs.get(id).cloned())
    }

    async fn update_plug(
        &self,
        plug: &DataPlug,
        expected_version: u64,
        approved_delta: i64,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let (p, id) = (plug.clone(), plug.id.clone());
        let mut writes = vec![Write::new(
            shape(
                format!("PLUG#{id}"),
                "PLUG",
                plug_size(plug),
                Some("attribute_exists(pk) AND #v = :v"),
            ),
            move |st| {
                st.plugs
                    .get(&id)
                    .is_some_and(|p| p.version == expected_version)
            },
            move |st| {
                st.plugs.insert(p.id.clone(), p);
            },
        )];
        if approved_delta != 0 {
            writes.push(counter_write(
                &*self.inner.random,
                DATA_PLUGS,
                approved_delta,
                self.now(),
            ));
        }
        let mut st = self.lock();
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the data plug changed meanwhile; read it again and retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn list_plugs(&self, approved_only: bool) -> DexResult<Vec<DataPlug>> {
        tokio::task::yield_now().await;
        let mut plugs: Vec<DataPlug> = self
            .lock()
            .plugs
            .values()
            .filter(|p| !approved_only || p.approved)
            .cloned()
            .collect();
        plugs.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(plugs)
    }

    async fn record_connection(
        &self,
        connection: &PlugConnection,
        event: LogEvent,
    ) -> DexResult<bool> {
        tokio::task::yield_now().await;
        let key = (connection.plug_id.clone(), connection.hat.clone());
        let (k1, c) = (key.clone(), connection.clone());
        let write = Write::new(
            shape(
                format!("HAT#{}", connection.hat),
                format!("PLUG#{}", connection.plug_id),
                ItemSize::default()
                    .s("plugId", &connection.plug_id)
                    .s("hat", &connection.hat)
                    .n("connectedAt", connection.connected_at)
                    .s("by", &connection.by),
                Some("attribute_not_exists(pk)"),
            ),
            move |st| !st.connections.contains_key(&k1),
            move |st| {
                st.connections.insert(key, c);
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(true),
            Err(Failure::Condition(_)) => Ok(false),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn get_connection(&self, plug_id: &str, hat: &str) -> DexResult<Option<PlugConnection>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("HAT#{hat}"), &format!("PLUG#{plug_id}"))?;
        Ok(self
            .lock()
            .connections
            .get(&(plug_id.to_owned(), hat.to_owned()))
            .cloned())
    }
}
