//! Offers on DynamoDB (docs/decisions.md §9, §13 "Offers"): the offer item `OFFER#<id>` /
//! `OFFER` with its claim counters `placesTaken` and `claimsKept`, and one claim item per
//! HAT `OFFER#<id>` / `CLAIM#<hat>` in the offer's partition (shapes in `keys`).
//!
//! The cap is the offer item's condition `placesTaken < requiredMaxUser`, written in the
//! same transaction as the claim item: DynamoDB serialises the racing claimers on that one
//! item, so no read decides. A reservation carries a lease; a dead attempt's reservation is
//! found through a sparse index of leases and taken over by a write conditioned on that
//! very lease. A claim becomes final with its number `claimsKept + 1`, conditioned on the
//! `claimsKept` it read (optimistic), so the kept claims are numbered 1..N.

use std::time::Duration;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::item::{Codec, get_bool, get_n, get_opt_s, get_s, n, s};
use super::keys::{self, gsi};
use super::{Commit, DynamoStore, Filter, Item, Query, Sort, heads_in};
use dex::error::{DexError, DexResult};
use dex::offers::rules::Confirmation;
use dex::offers::{
    Claim, ClaimState, Offer, OfferCredentials, OfferHat, OfferStatus, OfferStore, OfferTerms,
    Reservation, ReservationSweepStore,
};
use dex::stats::OFFER_CLAIMS;
use dex::txlog::LogEvent;

/// How long a claim write keeps retrying lost races (another claimer numbered first, a
/// reservation that appeared meanwhile) before answering 429, like `commit`'s own budget.
const CLAIM_RETRY_BUDGET: Duration = Duration::from_secs(10);
/// Expired reservations tried per round of a takeover.
const TAKEOVER_CANDIDATES: i32 = 10;

const RESERVED: &str = "reserved";
const KEPT: &str = "kept";
/// Swept (offers::sweep): the place given back, the HAT side being undone, then done.
const RELEASING: &str = "releasing";
const RELEASED: &str = "released";

fn json_text(value: &serde_json::Value) -> AttributeValue {
    s(value.to_string())
}

fn get_json(item: &Item, name: &str) -> DexResult<serde_json::Value> {
    serde_json::from_str(&get_s(item, name)?)
        .map_err(|e| DexError::internal(format!("stored attribute {name} is not JSON: {e}")))
}

impl Codec for Offer {
    fn to_item(&self) -> Item {
        let t = &self.terms;
        let mut item = keys::offer(&t.offer_id);
        item.extend([
            ("offerId".to_owned(), s(&t.offer_id)),
            ("title".to_owned(), s(&t.title)),
            ("description".to_owned(), s(&t.description)),
            ("starts".to_owned(), n(t.starts)),
            ("expires".to_owned(), n(t.expires)),
            ("collectionDuration".to_owned(), n(t.collection_duration)),
            ("requiredData".to_owned(), json_text(&t.required_data)),
            ("requiredMinUser".to_owned(), n(t.required_min_user)),
            ("requiredMaxUser".to_owned(), n(t.required_max_user)),
            // The password only sealed (dex::offers::credentials), never in clear.
            (
                "passwordSealed".to_owned(),
                s(&self.credentials.password_sealed),
            ),
            (
                "passwordHash".to_owned(),
                s(&self.credentials.password_hash),
            ),
            ("provider".to_owned(), s(&self.provider)),
            ("status".to_owned(), s(self.status.as_str())),
            ("created".to_owned(), n(self.created)),
            ("claimsKept".to_owned(), n(self.claims_kept)),
            ("placesTaken".to_owned(), n(self.places_taken)),
            (
                "claimsReleased".to_owned(),
                AttributeValue::Bool(self.claims_released),
            ),
            ("version".to_owned(), n(self.version)),
        ]);
        if let Some(conditions) = &t.data_conditions {
            item.insert("dataConditions".to_owned(), json_text(conditions));
        }
        let sort = keys::offer_sort(self.created, &t.offer_id);
        item.extend(gsi("gsi1", keys::ALL_OFFERS, sort.clone()));
        // Sparse: only offers with a listed status are in the public listing's partition.
        if self.status.is_listed() {
            item.extend(gsi("gsi2", keys::LISTED_OFFERS, sort));
        }
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        let status = get_s(item, "status")?;
        Ok(Offer {
            terms: OfferTerms {
                offer_id: get_s(item, "offerId")?,
                title: get_s(item, "title")?,
                description: get_s(item, "description")?,
                starts: get_n(item, "starts")?,
                expires: get_n(item, "expires")?,
                collection_duration: get_n(item, "collectionDuration")?,
                data_conditions: match item.get("dataConditions") {
                    Some(_) => Some(get_json(item, "dataConditions")?),
                    None => None,
                },
                required_data: get_json(item, "requiredData")?,
                required_min_user: get_n(item, "requiredMinUser")?,
                required_max_user: get_n(item, "requiredMaxUser")?,
            },
            credentials: OfferCredentials {
                password_sealed: get_s(item, "passwordSealed")?,
                password_hash: get_s(item, "passwordHash")?,
            },
            provider: get_s(item, "provider")?,
            status: OfferStatus::parse(&status)
                .ok_or_else(|| DexError::internal(format!("stored offer status {status:?}")))?,
            created: get_n(item, "created")?,
            claims_kept: get_n(item, "claimsKept")?,
            places_taken: get_n(item, "placesTaken")?,
            claims_released: get_bool(item, "claimsReleased"),
            version: get_n(item, "version")?,
        })
    }
}

impl Codec for Claim {
    fn to_item(&self) -> Item {
        let mut item = keys::offer_claim(&self.offer_id, &self.hat.address);
        item.extend([
            ("offerId".to_owned(), s(&self.offer_id)),
            ("hat".to_owned(), s(&self.hat.address)),
            ("publicKey".to_owned(), s(&self.hat.public_key)),
            ("created".to_owned(), n(self.created)),
            (
                "confirmed".to_owned(),
                AttributeValue::Bool(self.confirmation.confirmed),
            ),
            ("confirmedAt".to_owned(), n(self.confirmation.at)),
        ]);
        match &self.state {
            // A releasing claim stays in the offer's lease index too, so that a sweep finds
            // one whose sweep died.
            ClaimState::Reserved {
                attempt,
                lease_until,
            }
            | ClaimState::Releasing {
                attempt,
                lease_until,
            } => {
                let state = if matches!(self.state, ClaimState::Reserved { .. }) {
                    RESERVED
                } else {
                    RELEASING
                };
                item.extend([
                    ("state".to_owned(), s(state)),
                    ("attempt".to_owned(), s(attempt)),
                    ("leaseUntil".to_owned(), n(lease_until)),
                ]);
                item.extend(gsi(
                    "gsi1",
                    keys::offer_leases(&self.offer_id),
                    keys::lease_sort(*lease_until, &self.hat.address),
                ));
            }
            ClaimState::Kept { claimer_number } => {
                item.extend([
                    ("state".to_owned(), s(KEPT)),
                    ("claimerNumber".to_owned(), n(claimer_number)),
                ]);
            }
            ClaimState::Released => {
                item.insert("state".to_owned(), s(RELEASED));
            }
        }
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        let state = match get_s(item, "state")?.as_str() {
            RESERVED => ClaimState::Reserved {
                attempt: get_s(item, "attempt")?,
                lease_until: get_n(item, "leaseUntil")?,
            },
            KEPT => ClaimState::Kept {
                claimer_number: get_n(item, "claimerNumber")?,
            },
            RELEASING => ClaimState::Releasing {
                attempt: get_s(item, "attempt")?,
                lease_until: get_n(item, "leaseUntil")?,
            },
            RELEASED => ClaimState::Released,
            other => {
                return Err(DexError::internal(format!("stored claim state {other:?}")));
            }
        };
        Ok(Claim {
            offer_id: get_s(item, "offerId")?,
            hat: OfferHat {
                address: get_s(item, "hat")?,
                public_key: get_opt_s(item, "publicKey").unwrap_or_default(),
            },
            state,
            created: get_n(item, "created")?,
            confirmation: Confirmation {
                confirmed: get_bool(item, "confirmed"),
                at: get_n(item, "confirmedAt")?,
            },
        })
    }
}

/// An expression with its `#name` and `:value` placeholders.
#[derive(Default)]
struct Expr {
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Expr {
    fn name(mut self, placeholder: &'static str, name: &'static str) -> Self {
        self.names.push((placeholder, name));
        self
    }

    fn value(mut self, placeholder: &'static str, value: AttributeValue) -> Self {
        self.values.push((placeholder, value));
        self
    }

    fn names(&self) -> Option<std::collections::HashMap<String, String>> {
        (!self.names.is_empty()).then(|| {
            self.names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        })
    }

    fn values(&self) -> Option<std::collections::HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| {
            self.values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        })
    }
}

/// The condition that an offer is claimable at `now`: approved, started, not expired.
const OPEN: &str = "#status = :approved AND #starts <= :now AND #expires > :now";

fn open_expr(now: i64) -> Expr {
    Expr::default()
        .name("#status", "status")
        .name("#starts", "starts")
        .name("#expires", "expires")
        .value(":approved", s(OfferStatus::Approved.as_str()))
        .value(":now", n(now))
}

/// Whether the offer item (as DynamoDB returned it) is open at `now`.
fn is_open(item: &Item, now: i64) -> DexResult<bool> {
    let offer = Offer::from_item(item)?;
    Ok(offer.status == OfferStatus::Approved
        && offer.terms.starts <= now
        && now < offer.terms.expires)
}

/// The lease index's sort keys of every lease that ended before `now` (HAT addresses sort
/// below '~').
fn leases_ended_before(now: i64) -> Sort {
    Sort::Between(
        keys::lease_sort(0, ""),
        format!("{}~", keys::lease_sort(now - 1, "")),
    )
}

/// What a transaction that takes a place came to.
enum PlaceCommit {
    Done,
    /// The claim item's condition failed: it appeared or changed meanwhile.
    ClaimChanged,
    /// The offer's condition failed: it is full (`open`) or not open for claims.
    OfferRefused {
        open: bool,
    },
}

/// What one round of a reservation ended with.
enum Round {
    Done(Reservation),
    /// A race was lost (the HAT's claim appeared or changed meanwhile): read again.
    Again,
}

/// What one claim asks of `reserve_place`: a place on `offer_id` for `hat`, under its
/// `attempt`, leased until `lease_until`.
#[derive(Clone, Copy)]
struct PlaceAsk<'a> {
    offer_id: &'a str,
    hat: &'a OfferHat,
    attempt: &'a str,
    now: i64,
    lease_until: i64,
}

impl DynamoStore {
    fn update(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        expr: &Expr,
    ) -> UpdateBuilder {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values());
        if let Some(c) = condition {
            u = u
                .condition_expression(c)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        u
    }

    fn update_item(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(
                self.update(key, update, condition, &expr)
                    .build()
                    .expect("table, key and expression set"),
            )
            .build()
    }

    fn delete_item(&self, key: Item, condition: &str, expr: Expr) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .expect("table, key and condition set");
        TransactWriteItem::builder().delete(delete).build()
    }

    fn check_item(&self, key: Item, condition: &str, expr: Expr) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and condition set");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// A new reservation's claim item (confirmation never reported yet).
    fn reserved_claim(ask: &PlaceAsk<'_>) -> Item {
        Claim {
            offer_id: ask.offer_id.to_owned(),
            hat: ask.hat.clone(),
            state: ClaimState::Reserved {
                attempt: ask.attempt.to_owned(),
                lease_until: ask.lease_until,
            },
            created: ask.now,
            confirmation: Confirmation {
                confirmed: false,
                at: 0,
            },
        }
        .to_item()
    }

    /// A new place: the offer's counter below the cap, in the same transaction as the claim
    /// item, which must not exist yet (index 1 of the writes).
    fn new_place_writes(&self, ask: &PlaceAsk<'_>) -> Vec<TransactWriteItem> {
        let put = self.put_new(Self::reserved_claim(ask));
        vec![self.take_place(ask.offer_id, ask.now), put]
    }

    /// One place of the offer back (never below zero).
    fn return_place(&self, offer_id: &str) -> TransactWriteItem {
        self.update_item(
            keys::offer(offer_id),
            "ADD #taken :minus",
            Some("#taken > :zero"),
            Expr::default()
                .name("#taken", "placesTaken")
                .value(":minus", n(-1))
                .value(":zero", n(0)),
        )
    }

    /// One more place taken on the offer, if it exists, is open at `now` and is not full.
    fn take_place(&self, offer_id: &str, now: i64) -> TransactWriteItem {
        self.update_item(
            keys::offer(offer_id),
            "ADD #taken :one",
            Some(&format!(
                "attribute_exists(pk) AND #taken < #max AND {OPEN}"
            )),
            open_expr(now)
                .name("#taken", "placesTaken")
                .name("#max", "requiredMaxUser")
                .value(":one", n(1)),
        )
    }

    /// The first round of `reserve_place`: most claims are a HAT's first, on an offer with a
    /// free place, so the new place's transaction is tried without reading the HAT's claim
    /// first. Any refusal (a claim of this HAT exists, the offer is full, closed or unknown)
    /// is decided by `reserve_round`, which reads.
    async fn reserve_first_round(&self, ask: &PlaceAsk<'_>) -> DexResult<Option<Reservation>> {
        let PlaceAsk { attempt, .. } = *ask;
        let writes = self.new_place_writes(ask);
        Ok(match self.commit(writes, vec![]).await? {
            Commit::Done(_) => Some(Reservation::Taken {
                attempt: attempt.to_owned(),
            }),
            Commit::Refused(_) => None,
        })
    }

    /// One round of `reserve_place` that reads the HAT's claim first.
    async fn reserve_round(&self, ask: &PlaceAsk<'_>) -> DexResult<Round> {
        let PlaceAsk {
            offer_id,
            hat,
            attempt,
            now,
            lease_until,
        } = *ask;
        let claim_key = keys::offer_claim(offer_id, &hat.address);
        // The HAT's own claim first: kept, or an unfinished attempt to resume.
        if let Some(item) = self.get_item(claim_key.clone(), true).await? {
            let claim = Claim::from_item(&item)?;
            let old = match claim.state {
                ClaimState::Reserved { attempt, .. } => attempt,
                ClaimState::Kept { .. } => return Ok(Round::Done(Reservation::AlreadyClaimed)),
                ClaimState::Releasing { .. } => return Ok(Round::Done(Reservation::BeingReleased)),
                ClaimState::Released => return self.place_after_release(ask).await,
            };
            let resume = self.update_item(
                claim_key,
                "SET #attempt = :attempt, #lease = :lease, gsi1sk = :sort",
                Some("#state = :reserved AND #attempt = :old"),
                Expr::default()
                    .name("#attempt", "attempt")
                    .name("#lease", "leaseUntil")
                    .name("#state", "state")
                    .value(":attempt", s(attempt))
                    .value(":lease", n(lease_until))
                    .value(":sort", s(keys::lease_sort(lease_until, &hat.address)))
                    .value(":reserved", s(RESERVED))
                    .value(":old", s(old)),
            );
            return Ok(match self.commit(vec![resume], vec![]).await? {
                Commit::Done(_) => Round::Done(Reservation::Resumed {
                    attempt: attempt.to_owned(),
                }),
                Commit::Refused(_) => Round::Again,
            });
        }
        let writes = self.new_place_writes(ask);
        match self.commit_place(writes, offer_id, now).await? {
            PlaceCommit::Done => Ok(Round::Done(Reservation::Taken {
                attempt: attempt.to_owned(),
            })),
            PlaceCommit::ClaimChanged => Ok(Round::Again),
            PlaceCommit::OfferRefused { open: false } => Ok(Round::Done(Reservation::NotOpen)),
            PlaceCommit::OfferRefused { open: true } => self.take_over(ask).await,
        }
    }

    /// Commits `writes`, which take a place: the offer's counter first, the claim second.
    async fn commit_place(
        &self,
        writes: Vec<TransactWriteItem>,
        offer_id: &str,
        now: i64,
    ) -> DexResult<PlaceCommit> {
        let failed = match self.commit(writes, vec![]).await? {
            Commit::Done(_) => return Ok(PlaceCommit::Done),
            Commit::Refused(failed) => failed,
        };
        if failed.iter().any(|(index, _)| *index == 1) {
            return Ok(PlaceCommit::ClaimChanged);
        }
        let Some(offer) = failed.into_iter().next().and_then(|(_, item)| item) else {
            return Err(DexError::NotFound(format!("no offer {offer_id}")));
        };
        Ok(PlaceCommit::OfferRefused {
            open: is_open(&offer, now)?,
        })
    }

    /// A new place for a HAT whose earlier claim was swept (`Released`): the offer's counter
    /// below the cap and the claim item back to `Reserved`, in one transaction. Resumed, as
    /// the swept attempt's debit may exist on the HAT. No takeover when the offer is full (a
    /// takeover writes a new claim item): the sweep frees expired places soon enough.
    async fn place_after_release(&self, ask: &PlaceAsk<'_>) -> DexResult<Round> {
        let PlaceAsk {
            offer_id,
            hat,
            attempt,
            now,
            lease_until,
        } = *ask;
        let take = self.take_place(offer_id, now);
        let reserve = self.update_item(
            keys::offer_claim(offer_id, &hat.address),
            "SET #state = :reserved, #attempt = :attempt, #lease = :lease, \
             gsi1pk = :leases, gsi1sk = :sort",
            Some("#state = :released"),
            Expr::default()
                .name("#state", "state")
                .name("#attempt", "attempt")
                .name("#lease", "leaseUntil")
                .value(":reserved", s(RESERVED))
                .value(":released", s(RELEASED))
                .value(":attempt", s(attempt))
                .value(":lease", n(lease_until))
                .value(":leases", s(keys::offer_leases(offer_id)))
                .value(":sort", s(keys::lease_sort(lease_until, &hat.address))),
        );
        Ok(
            match self
                .commit_place(vec![take, reserve], offer_id, now)
                .await?
            {
                PlaceCommit::Done => Round::Done(Reservation::Resumed {
                    attempt: attempt.to_owned(),
                }),
                PlaceCommit::ClaimChanged => Round::Again,
                PlaceCommit::OfferRefused { open: true } => Round::Done(Reservation::Full),
                PlaceCommit::OfferRefused { open: false } => Round::Done(Reservation::NotOpen),
            },
        )
    }

    /// The offer is full: takes the place of another HAT's attempt whose lease has ended, by
    /// deleting that reservation on its very lease in the transaction that writes this one.
    async fn take_over(&self, ask: &PlaceAsk<'_>) -> DexResult<Round> {
        let PlaceAsk {
            offer_id,
            hat,
            attempt,
            now,
            ..
        } = *ask;
        let leases = keys::offer_leases(offer_id);
        let query = Query {
            index: Some("gsi1"),
            partition: &leases,
            sort: Some(leases_ended_before(now)),
            limit: Some(TAKEOVER_CANDIDATES),
            ..Query::default()
        };
        let (candidates, _) = self.query(&query, None).await?;
        let mut lost_one = false;
        for item in &candidates {
            let dead = Claim::from_item(item)?;
            let ClaimState::Reserved {
                attempt: dead_attempt,
                lease_until: dead_lease,
            } = dead.state
            else {
                continue;
            };
            if dead_lease >= now || dead.hat.address == hat.address {
                continue;
            }
            let writes = vec![
                self.check_item(keys::offer(offer_id), OPEN, open_expr(now)),
                self.delete_item(
                    keys::offer_claim(offer_id, &dead.hat.address),
                    "#state = :reserved AND #attempt = :old AND #lease < :now",
                    Expr::default()
                        .name("#state", "state")
                        .name("#attempt", "attempt")
                        .name("#lease", "leaseUntil")
                        .value(":reserved", s(RESERVED))
                        .value(":old", s(&dead_attempt))
                        .value(":now", n(now)),
                ),
                self.put_new(Self::reserved_claim(ask)),
            ];
            match self.commit(writes, vec![]).await? {
                Commit::Done(_) => {
                    return Ok(Round::Done(Reservation::Taken {
                        attempt: attempt.to_owned(),
                    }));
                }
                // Another claimer took this one first, or it was resumed or kept: the next.
                refused if refused.refused_index() == Some(1) => lost_one = true,
                // The offer closed, or this HAT's claim appeared: read again.
                Commit::Refused(_) => return Ok(Round::Again),
            }
        }
        Ok(if lost_one {
            Round::Again
        } else {
            Round::Done(Reservation::Full)
        })
    }

    /// Every offer, newest first (operators' listing).
    pub async fn all_offers(&self) -> DexResult<Vec<Offer>> {
        self.offers_newest_first("gsi1", keys::ALL_OFFERS).await
    }

    /// The offers of one listing partition (`gsi1`: all of them, `gsi2`: the listed ones),
    /// newest first.
    async fn offers_newest_first(
        &self,
        index: &'static str,
        partition: &str,
    ) -> DexResult<Vec<Offer>> {
        let query = Query {
            index: Some(index),
            partition,
            newest_first: true,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(Offer::from_item)
            .collect()
    }
}

impl OfferStore for DynamoStore {
    async fn insert_offer(&self, offer: &Offer, event: LogEvent) -> DexResult<()> {
        match self
            .commit(vec![self.put_new(offer.to_item())], vec![event])
            .await?
        {
            Commit::Done(_) => Ok(()),
            Commit::Refused(_) => Err(DexError::Conflict(format!(
                "an offer {:?} exists already",
                offer.terms.offer_id
            ))),
        }
    }

    async fn get_offer(&self, offer_id: &str) -> DexResult<Option<Offer>> {
        self.get_item(keys::offer(offer_id), true)
            .await?
            .as_ref()
            .map(Offer::from_item)
            .transpose()
    }

    async fn listed_offers(&self) -> DexResult<Vec<Offer>> {
        self.offers_newest_first("gsi2", keys::LISTED_OFFERS).await
    }

    async fn update_offer_status(
        &self,
        offer: &Offer,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        // Only the status (with its listing entry) and the release flag: the claim counters
        // are the claims' to write, so a status change never races a claim's numbering.
        let mut update = "SET #status = :status, #v = :next".to_owned();
        let mut expr = Expr::default()
            .name("#status", "status")
            .name("#v", "version")
            .value(":status", s(offer.status.as_str()))
            .value(":next", n(expected_version + 1))
            .value(":v", n(expected_version));
        if offer.claims_released {
            update.push_str(", #released = :released");
            expr = expr
                .name("#released", "claimsReleased")
                .value(":released", AttributeValue::Bool(true));
        }
        if offer.status.is_listed() {
            update.push_str(", gsi2pk = :listed, gsi2sk = :sort");
            expr = expr.value(":listed", s(keys::LISTED_OFFERS)).value(
                ":sort",
                s(keys::offer_sort(offer.created, &offer.terms.offer_id)),
            );
        } else {
            update.push_str(" REMOVE gsi2pk, gsi2sk");
        }
        let write = self.update_item(
            keys::offer(&offer.terms.offer_id),
            &update,
            Some("attribute_exists(pk) AND #v = :v"),
            expr,
        );
        self.commit(vec![write], vec![event])
            .await?
            .or_conflict("the offer changed meanwhile; read it again and retry")?;
        Ok(())
    }

    async fn reserve_place(
        &self,
        offer_id: &str,
        hat: &OfferHat,
        attempt: &str,
        now: i64,
        lease_until: i64,
    ) -> DexResult<Reservation> {
        let ask = PlaceAsk {
            offer_id,
            hat,
            attempt,
            now,
            lease_until,
        };
        if let Some(reservation) = self.reserve_first_round(&ask).await? {
            return Ok(reservation);
        }
        let started = tokio::time::Instant::now();
        let mut round = 0;
        loop {
            round += 1;
            match self.reserve_round(&ask).await? {
                Round::Done(reservation) => return Ok(reservation),
                Round::Again if started.elapsed() < CLAIM_RETRY_BUDGET => self.backoff(round).await,
                Round::Again => {
                    return Err(DexError::Throttled(
                        "too many concurrent claims of this offer; retry".into(),
                    ));
                }
            }
        }
    }

    async fn keep_claim(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
        event: LogEvent,
    ) -> DexResult<Claim> {
        let started = tokio::time::Instant::now();
        let mut round = 0;
        loop {
            round += 1;
            // The count to number from, the claim, and the head of the HAT's log chain that
            // the event extends: one consistent read for all three.
            let items = self
                .batch_get(
                    vec![
                        keys::offer(offer_id),
                        keys::offer_claim(offer_id, hat),
                        keys::log_head(&event.subject),
                    ],
                    true,
                )
                .await?;
            let heads = heads_in(&items)?;
            let sort = |item: &Item| get_s(item, "sk").unwrap_or_default();
            let offer = items.iter().find(|i| sort(i) == "OFFER");
            let claim = items
                .iter()
                .find(|i| sort(i).starts_with(keys::CLAIM_PREFIX));
            let (Some(offer), Some(claim)) = (offer, claim) else {
                return Err(DexError::Conflict(
                    "the claim's place was given to another HAT meanwhile; claim again".into(),
                ));
            };
            let kept: u32 = get_n(offer, "claimsKept")?;
            let mut claim = Claim::from_item(claim)?;
            let next = kept + 1;
            let writes = vec![
                self.update_item(
                    keys::offer(offer_id),
                    "SET #kept = :next",
                    Some("#kept = :kept"),
                    Expr::default()
                        .name("#kept", "claimsKept")
                        .value(":next", n(next))
                        .value(":kept", n(kept)),
                ),
                self.update_item(
                    keys::offer_claim(offer_id, hat),
                    "SET #state = :kept, #number = :next REMOVE #attempt, #lease, gsi1pk, gsi1sk",
                    Some("#state = :reserved AND #attempt = :attempt"),
                    Expr::default()
                        .name("#state", "state")
                        .name("#number", "claimerNumber")
                        .name("#attempt", "attempt")
                        .name("#lease", "leaseUntil")
                        .value(":kept", s(KEPT))
                        .value(":next", n(next))
                        .value(":reserved", s(RESERVED))
                        .value(":attempt", s(attempt)),
                ),
                self.counter_add(OFFER_CLAIMS, 1),
            ];
            match self
                .commit_with_heads(writes, vec![event.clone()], Some(heads))
                .await?
            {
                Commit::Done(_) => {
                    claim.state = ClaimState::Kept {
                        claimer_number: next,
                    };
                    return Ok(claim);
                }
                refused if refused.refused_index() == Some(1) => {
                    return Err(DexError::Conflict(
                        "the claim's place was given to another HAT meanwhile; claim again".into(),
                    ));
                }
                // Another claim was numbered first: read the count again.
                Commit::Refused(_) if started.elapsed() < CLAIM_RETRY_BUDGET => {
                    self.backoff(round).await
                }
                Commit::Refused(_) => {
                    return Err(DexError::Throttled(
                        "too many concurrent claims of this offer; retry".into(),
                    ));
                }
            }
        }
    }

    async fn give_back_place(&self, offer_id: &str, hat: &str, attempt: &str) -> DexResult<()> {
        // Not logged: a place reserved and given back within a failed request is no change.
        let writes = vec![
            self.delete_item(
                keys::offer_claim(offer_id, hat),
                "#state = :reserved AND #attempt = :attempt",
                Expr::default()
                    .name("#state", "state")
                    .name("#attempt", "attempt")
                    .value(":reserved", s(RESERVED))
                    .value(":attempt", s(attempt)),
            ),
            self.return_place(offer_id),
        ];
        // Refused: the attempt holds no place (any more); nothing to give back.
        self.commit(writes, vec![]).await?;
        Ok(())
    }

    async fn get_claim(&self, offer_id: &str, hat: &str) -> DexResult<Option<Claim>> {
        self.get_item(keys::offer_claim(offer_id, hat), true)
            .await?
            .as_ref()
            .map(Claim::from_item)
            .transpose()
    }

    async fn set_confirmation(
        &self,
        offer_id: &str,
        hat: &str,
        expected: Confirmation,
        new: Confirmation,
        event: LogEvent,
    ) -> DexResult<()> {
        let write = self.update_item(
            keys::offer_claim(offer_id, hat),
            "SET #confirmed = :confirmed, #at = :at",
            Some("#state = :kept AND #confirmed = :was AND #at = :wasAt"),
            Expr::default()
                .name("#state", "state")
                .name("#confirmed", "confirmed")
                .name("#at", "confirmedAt")
                .value(":kept", s(KEPT))
                .value(":confirmed", AttributeValue::Bool(new.confirmed))
                .value(":at", n(new.at))
                .value(":was", AttributeValue::Bool(expected.confirmed))
                .value(":wasAt", n(expected.at)),
        );
        self.commit(vec![write], vec![event])
            .await?
            .or_conflict("the claim's confirmation changed meanwhile")?;
        Ok(())
    }

    async fn confirmed_claims(&self, offer_id: &str) -> DexResult<Vec<Claim>> {
        // The offer's own partition (at most requiredMaxUser claims), read consistently.
        let partition = keys::offer_partition(offer_id);
        let query = Query {
            partition: &partition,
            sort: Some(Sort::BeginsWith(keys::CLAIM_PREFIX.to_owned())),
            consistent: true,
            filter: Some(Filter {
                conditions: vec!["#state = :kept".into(), "#confirmed = :true".into()],
                names: vec![
                    ("#state".into(), "state".into()),
                    ("#confirmed".into(), "confirmed".into()),
                ],
                values: vec![
                    (":kept".into(), s(KEPT)),
                    (":true".into(), AttributeValue::Bool(true)),
                ],
            }),
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(Claim::from_item)
            .collect()
    }
}

impl ReservationSweepStore for DynamoStore {
    /// Every offer's lease index, read for the leases that ended: one query of the offer ids
    /// (only the ids: an offer item may hold 64 KB of bundles), then one per offer (a sweep
    /// runs every few minutes; offers are few beside claims).
    async fn expired_reservations(&self, now: i64, limit: usize) -> DexResult<Vec<Claim>> {
        let mut expired = Vec::new();
        let offer_ids = self
            .query_all(&Query {
                index: Some("gsi1"),
                partition: keys::ALL_OFFERS,
                projection: Some("offerId"),
                ..Query::default()
            })
            .await?
            .iter()
            .map(|item| get_s(item, "offerId"))
            .collect::<DexResult<Vec<String>>>()?;
        for offer_id in &offer_ids {
            if expired.len() >= limit {
                break;
            }
            let leases = keys::offer_leases(offer_id);
            let query = Query {
                index: Some("gsi1"),
                partition: &leases,
                sort: Some(leases_ended_before(now)),
                limit: Some((limit - expired.len()) as i32),
                ..Query::default()
            };
            let (items, _) = self.query(&query, None).await?;
            for item in &items {
                let claim = Claim::from_item(item)?;
                if dex::offers::sweep::is_expired(&claim, now) {
                    expired.push(claim);
                }
            }
        }
        Ok(expired)
    }

    async fn begin_release(
        &self,
        claim: &Claim,
        attempt: &str,
        now: i64,
        lease_until: i64,
        event: LogEvent,
    ) -> DexResult<bool> {
        let (from, old) = match &claim.state {
            ClaimState::Reserved { attempt, .. } => (RESERVED, attempt),
            ClaimState::Releasing { attempt, .. } => (RELEASING, attempt),
            ClaimState::Kept { .. } | ClaimState::Released => return Ok(false),
        };
        let take = self.update_item(
            keys::offer_claim(&claim.offer_id, &claim.hat.address),
            "SET #state = :releasing, #attempt = :attempt, #lease = :lease, gsi1sk = :sort",
            Some("#state = :from AND #attempt = :old AND #lease < :now"),
            Expr::default()
                .name("#state", "state")
                .name("#attempt", "attempt")
                .name("#lease", "leaseUntil")
                .value(":releasing", s(RELEASING))
                .value(":attempt", s(attempt))
                .value(":lease", n(lease_until))
                .value(
                    ":sort",
                    s(keys::lease_sort(lease_until, &claim.hat.address)),
                )
                .value(":from", s(from))
                .value(":old", s(old))
                .value(":now", n(now)),
        );
        let (writes, events) = if from == RESERVED {
            (vec![take, self.return_place(&claim.offer_id)], vec![event])
        } else {
            // A dead sweep's release: its place went back already, and it was logged.
            (vec![take], vec![])
        };
        Ok(matches!(
            self.commit(writes, events).await?,
            Commit::Done(_)
        ))
    }

    async fn finish_release(&self, offer_id: &str, hat: &str, attempt: &str) -> DexResult<bool> {
        let write = self.update_item(
            keys::offer_claim(offer_id, hat),
            "SET #state = :released REMOVE #attempt, #lease, gsi1pk, gsi1sk",
            Some("#state = :releasing AND #attempt = :attempt"),
            Expr::default()
                .name("#state", "state")
                .name("#attempt", "attempt")
                .name("#lease", "leaseUntil")
                .value(":released", s(RELEASED))
                .value(":releasing", s(RELEASING))
                .value(":attempt", s(attempt)),
        );
        Ok(matches!(
            self.commit(vec![write], vec![]).await?,
            Commit::Done(_)
        ))
    }
}
