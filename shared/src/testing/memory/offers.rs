//! `OfferStore` in memory, with the adapter's items: the offer `OFFER#<id>` / `OFFER` (its
//! counters `placesTaken` and `claimsKept` conditioned in every claim write) and one claim
//! item per HAT `OFFER#<id>` / `CLAIM#<hat>`.

use super::{Failure, MemoryStore, Write, counter_write, shape};
use crate::error::{DexError, DexResult};
use crate::offers::rules::Confirmation;
use crate::offers::sweep::is_expired;
use crate::offers::{
    Claim, ClaimState, Offer, OfferHat, OfferStore, Reservation, ReservationSweepStore,
};
use crate::stats::OFFER_CLAIMS;
use crate::testing::limits::{self, ItemSize};
use crate::txlog::LogEvent;

fn offer_pk(offer_id: &str) -> String {
    format!("OFFER#{offer_id}")
}

fn offer_size(offer: &Offer) -> ItemSize {
    let t = &offer.terms;
    ItemSize::default()
        .s("title", &t.title)
        .s("description", &t.description)
        .s("requiredData", &t.required_data.to_string())
        .s(
            "dataConditions",
            &t.data_conditions
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
        )
        .s("provider", &offer.provider)
        .s("status", offer.status.as_str())
        .n("starts", t.starts)
        .n("expires", t.expires)
        .n("placesTaken", offer.places_taken)
        .n("claimsKept", offer.claims_kept)
        .n("version", offer.version)
}

impl OfferStore for MemoryStore {
    async fn insert_offer(&self, offer: &Offer, event: LogEvent) -> DexResult<()> {
        tokio::task::yield_now().await;
        let id = offer.terms.offer_id.clone();
        let (check_id, stored) = (id.clone(), offer.clone());
        let write = Write::new(
            shape(
                offer_pk(&id),
                "OFFER",
                offer_size(offer),
                Some("attribute_not_exists(pk)"),
            ),
            move |st| !st.offers.contains_key(&check_id),
            move |st| {
                st.offers.insert(id, stored);
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(format!(
                "an offer {:?} exists already",
                offer.terms.offer_id
            ))),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn get_offer(&self, offer_id: &str) -> DexResult<Option<Offer>> {
        tokio::task::yield_now().await;
        limits::check_key(&offer_pk(offer_id), "OFFER")?;
        Ok(self.lock().offers.get(offer_id).cloned())
    }

    async fn listed_offers(&self) -> DexResult<Vec<Offer>> {
        tokio::task::yield_now().await;
        let mut offers: Vec<Offer> = self
            .lock()
            .offers
            .values()
            .filter(|o| o.status.is_listed())
            .cloned()
            .collect();
        offers.sort_by(|a, b| (b.created, &b.terms.offer_id).cmp(&(a.created, &a.terms.offer_id)));
        Ok(offers)
    }

    async fn update_offer_status(
        &self,
        offer: &Offer,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let id = offer.terms.offer_id.clone();
        let (check_id, status, released) = (id.clone(), offer.status, offer.claims_released);
        let write = Write::new(
            shape(offer_pk(&id), "OFFER", offer_size(offer), Some("#v = :v")),
            move |st| {
                st.offers
                    .get(&check_id)
                    .is_some_and(|o| o.version == expected_version)
            },
            move |st| {
                if let Some(o) = st.offers.get_mut(&id) {
                    o.status = status;
                    // Released for good: never unset.
                    o.claims_released |= released;
                    o.version += 1;
                }
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the offer changed meanwhile; read it again and retry".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn reserve_place(
        &self,
        offer_id: &str,
        hat: &OfferHat,
        attempt: &str,
        now: i64,
        lease_until: i64,
    ) -> DexResult<Reservation> {
        tokio::task::yield_now().await;
        limits::check_key(&offer_pk(offer_id), &format!("CLAIM#{}", hat.address))?;
        let mut st = self.lock();
        let key = (offer_id.to_owned(), hat.address.clone());
        let reserved = ClaimState::Reserved {
            attempt: attempt.to_owned(),
            lease_until,
        };
        // The HAT's own claim first: kept, or an unfinished attempt to resume.
        let released = match st.claims.get_mut(&key).map(|c| (c.state.clone(), c)) {
            Some((ClaimState::Kept { .. }, _)) => return Ok(Reservation::AlreadyClaimed),
            Some((ClaimState::Releasing { .. }, _)) => return Ok(Reservation::BeingReleased),
            Some((ClaimState::Reserved { .. }, claim)) => {
                claim.state = reserved;
                return Ok(Reservation::Resumed {
                    attempt: attempt.to_owned(),
                });
            }
            Some((ClaimState::Released, _)) => true,
            None => false,
        };
        let Some(offer) = st.offers.get(offer_id) else {
            return Err(DexError::NotFound(format!("no offer {offer_id}")));
        };
        // The adapter's condition: approved, started, not expired.
        let open = offer.status == crate::offers::OfferStatus::Approved
            && offer.terms.starts <= now
            && now < offer.terms.expires;
        if !open {
            return Ok(Reservation::NotOpen);
        }
        let full = offer.places_taken >= offer.terms.required_max_user;
        if released {
            // Swept before: a new place for the same claim item (no takeover: the adapter
            // takes over only for HATs without a claim item), resumed as its debit may exist.
            if full {
                return Ok(Reservation::Full);
            }
            if let Some(offer) = st.offers.get_mut(offer_id) {
                offer.places_taken += 1;
            }
            if let Some(claim) = st.claims.get_mut(&key) {
                claim.state = reserved;
            }
            return Ok(Reservation::Resumed {
                attempt: attempt.to_owned(),
            });
        }
        if full {
            // A place held past its lease by another HAT's dead attempt is taken over.
            let expired = st
                .claims
                .iter()
                .find(|((o, _), c)| {
                    o == offer_id
                        && matches!(c.state, ClaimState::Reserved { lease_until, .. } if lease_until < now)
                })
                .map(|(k, _)| k.clone());
            let Some(expired) = expired else {
                return Ok(Reservation::Full);
            };
            st.claims.remove(&expired);
        } else if let Some(offer) = st.offers.get_mut(offer_id) {
            offer.places_taken += 1;
        }
        st.claims.insert(
            key,
            Claim {
                offer_id: offer_id.to_owned(),
                hat: hat.clone(),
                state: reserved,
                created: now,
                confirmation: Confirmation {
                    confirmed: false,
                    at: 0,
                },
            },
        );
        Ok(Reservation::Taken {
            attempt: attempt.to_owned(),
        })
    }

    async fn keep_claim(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
        event: LogEvent,
    ) -> DexResult<Claim> {
        tokio::task::yield_now().await;
        let key = (offer_id.to_owned(), hat.to_owned());
        let (offer_key, claim_key, check_key) = (offer_id.to_owned(), key.clone(), key.clone());
        let attempt = attempt.to_owned();
        let writes = vec![
            Write::new(
                shape(
                    offer_pk(offer_id),
                    "OFFER",
                    ItemSize::default().n("claimsKept", 0),
                    None,
                ),
                |_| true,
                move |st| {
                    if let Some(o) = st.offers.get_mut(&offer_key) {
                        o.claims_kept += 1;
                    }
                },
            ),
            Write::new(
                shape(
                    offer_pk(offer_id),
                    format!("CLAIM#{hat}"),
                    ItemSize::default().s("attempt", &attempt),
                    Some("attempt = :a"),
                ),
                move |st| {
                    st.claims.get(&check_key).is_some_and(|c| {
                        matches!(&c.state, ClaimState::Reserved { attempt: a, .. } if *a == attempt)
                    })
                },
                move |st| {
                    let number = st.offers.get(&claim_key.0).map_or(0, |o| o.claims_kept);
                    if let Some(c) = st.claims.get_mut(&claim_key) {
                        c.state = ClaimState::Kept {
                            claimer_number: number,
                        };
                    }
                },
            ),
            // `GET /stats` "Total Offer Claims", in the same commit.
            counter_write(&*self.inner.random, OFFER_CLAIMS, 1, self.now()),
        ];
        let mut st = self.lock();
        match self.commit(&mut st, writes, vec![event]) {
            Ok(_) => st
                .claims
                .get(&key)
                .cloned()
                .ok_or_else(|| DexError::internal("a kept claim vanished")),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the claim's place was given to another HAT meanwhile; claim again".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn give_back_place(&self, offer_id: &str, hat: &str, attempt: &str) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        let key = (offer_id.to_owned(), hat.to_owned());
        let holds = st.claims.get(&key).is_some_and(
            |c| matches!(&c.state, ClaimState::Reserved { attempt: a, .. } if a == attempt),
        );
        if holds {
            st.claims.remove(&key);
            if let Some(o) = st.offers.get_mut(offer_id) {
                o.places_taken = o.places_taken.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn get_claim(&self, offer_id: &str, hat: &str) -> DexResult<Option<Claim>> {
        tokio::task::yield_now().await;
        Ok(self
            .lock()
            .claims
            .get(&(offer_id.to_owned(), hat.to_owned()))
            .cloned())
    }

    async fn set_confirmation(
        &self,
        offer_id: &str,
        hat: &str,
        expected: Confirmation,
        new: Confirmation,
        event: LogEvent,
    ) -> DexResult<()> {
        tokio::task::yield_now().await;
        let key = (offer_id.to_owned(), hat.to_owned());
        let check_key = key.clone();
        let write = Write::new(
            shape(
                offer_pk(offer_id),
                format!("CLAIM#{hat}"),
                ItemSize::default().b("confirmed").n("confirmedAt", new.at),
                Some("confirmedAt = :at"),
            ),
            move |st| {
                st.claims.get(&check_key).is_some_and(|c| {
                    matches!(c.state, ClaimState::Kept { .. }) && c.confirmation == expected
                })
            },
            move |st| {
                if let Some(c) = st.claims.get_mut(&key) {
                    c.confirmation = new;
                }
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(_)) => Err(DexError::Conflict(
                "the claim's confirmation changed meanwhile".into(),
            )),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn confirmed_claims(&self, offer_id: &str) -> DexResult<Vec<Claim>> {
        tokio::task::yield_now().await;
        Ok(self
            .lock()
            .claims
            .iter()
            .filter(|((o, _), c)| {
                o == offer_id
                    && matches!(c.state, ClaimState::Kept { .. })
                    && c.confirmation.confirmed
            })
            .map(|(_, c)| c.clone())
            .collect())
    }
}

impl ReservationSweepStore for MemoryStore {
    async fn expired_reservations(&self, now: i64, limit: usize) -> DexResult<Vec<Claim>> {
        tokio::task::yield_now().await;
        let st = self.lock();
        let mut expired: Vec<Claim> = st
            .claims
            .values()
            .filter(|c| is_expired(c, now))
            .cloned()
            .collect();
        expired.sort_by_key(|c| (c.offer_id.clone(), c.hat.address.clone()));
        expired.truncate(limit);
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
        tokio::task::yield_now().await;
        let key = (claim.offer_id.clone(), claim.hat.address.clone());
        let expected = claim.state.clone();
        let from_reserved = matches!(expected, ClaimState::Reserved { .. });
        let releasing = ClaimState::Releasing {
            attempt: attempt.to_owned(),
            lease_until,
        };
        let check_key = key.clone();
        let mut writes = vec![Write::new(
            shape(
                offer_pk(&claim.offer_id),
                format!("CLAIM#{}", claim.hat.address),
                ItemSize::default().s("attempt", attempt),
                Some("attempt = :old AND leaseUntil < :now"),
            ),
            move |st| {
                st.claims
                    .get(&check_key)
                    .is_some_and(|c| c.state == expected && is_expired(c, now))
            },
            move |st| {
                if let Some(c) = st.claims.get_mut(&key) {
                    c.state = releasing;
                }
            },
        )];
        let mut events = Vec::new();
        if from_reserved {
            let offer_id = claim.offer_id.clone();
            writes.push(Write::new(
                shape(
                    offer_pk(&claim.offer_id),
                    "OFFER",
                    ItemSize::default().n("placesTaken", 0),
                    Some("placesTaken > :zero"),
                ),
                |_| true,
                move |st| {
                    if let Some(o) = st.offers.get_mut(&offer_id) {
                        o.places_taken = o.places_taken.saturating_sub(1);
                    }
                },
            ));
            events.push(event);
        }
        let mut st = self.lock();
        match self.commit(&mut st, writes, events) {
            Ok(_) => Ok(true),
            Err(Failure::Condition(_)) => Ok(false),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    async fn finish_release(&self, offer_id: &str, hat: &str, attempt: &str) -> DexResult<bool> {
        tokio::task::yield_now().await;
        let mut st = self.lock();
        let key = (offer_id.to_owned(), hat.to_owned());
        match st.claims.get_mut(&key) {
            Some(c) if matches!(&c.state, ClaimState::Releasing { attempt: a, .. } if a == attempt) =>
            {
                c.state = ClaimState::Released;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
