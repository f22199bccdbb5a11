//! The offer use cases (docs/decisions.md §9, §13 "Offers"): registration by `marketplace`
//! accounts, the public list, status changes, claims (by the HAT or through the owner), a
//! HAT's own claim, and the claims the buyer reads once enough are confirmed.

use super::claims::{ClaimService, claim_view};
use super::credentials;
use super::hat_setup::HatClaimSetup;
use super::model::{ClaimView, ClaimsInfo, Offer, OfferHat, OfferRegistration, OfferStatus};
use super::ports::{ClaimState, OfferStore};
use super::rules::{StatusSetter, check_status_change, claims_released, validate_registration};
use crate::accounts::{Account, Actor};
use crate::auth::sealing::EncryptionKeys;
use crate::error::{DexError, DexResult};
use crate::hats::address::HatAddress;
use crate::hats::calls::HatCalls;
use crate::hats::verify::VerifiedHat;
use crate::hats::{HatHttp, HatStore};
use crate::limits;
use crate::ports::{Clock, Random, SecretStore};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent, Subject};

/// How often a status change is tried again when the offer changed meanwhile.
const STATUS_ATTEMPTS: usize = 3;

pub struct OfferService<'a, S, K> {
    pub store: &'a S,
    pub keys: &'a EncryptionKeys<K>,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    pub allow_ports: bool,
}

fn missing(offer_id: &str) -> DexError {
    DexError::NotFound(format!("no offer {offer_id}"))
}

/// Whether `caller` owns `offer` or is an admin (`registerClaim`, `claims`).
fn check_owner_or_admin(offer: &Offer, caller: &Account, what: &str) -> DexResult<()> {
    if caller.account_id == offer.provider || caller.has(&Role::Admin) {
        Ok(())
    } else {
        Err(DexError::Forbidden(format!(
            "only the offer's owner or an admin may {what}"
        )))
    }
}

impl<S: OfferStore + HatStore, K: SecretStore> OfferService<'_, S, K> {
    /// Registers an offer owned by `caller` (whose `marketplace` role the caller checked),
    /// as a draft, with new HAT credentials.
    pub async fn register(&self, caller: &Account, body: OfferRegistration) -> DexResult<Offer> {
        let terms = validate_registration(body)?;
        let sealer = self.keys.sealer().await?;
        let credentials = credentials::generate(&terms.offer_id, sealer, self.random)?;
        let offer = Offer {
            credentials,
            provider: caller.account_id.clone(),
            status: OfferStatus::Draft,
            created: self.clock.now_millis(),
            claims_kept: 0,
            places_taken: 0,
            claims_released: false,
            version: 1,
            terms,
        };
        // Never the credentials in the log.
        let t = &offer.terms;
        let event = LogEvent::new(
            Subject::offer(&t.offer_id),
            Kind::OfferRegistered,
            &Actor::Account(caller.clone()),
            serde_json::json!({
                "offerId": t.offer_id,
                "title": t.title,
                "starts": t.starts,
                "expires": t.expires,
                "requiredMinUser": t.required_min_user,
                "requiredMaxUser": t.required_max_user,
            }),
        );
        self.store.insert_offer(&offer, event).await?;
        Ok(offer)
    }

    pub async fn get(&self, offer_id: &str) -> DexResult<Offer> {
        check_offer_id(offer_id)?;
        self.store
            .get_offer(offer_id)
            .await?
            .ok_or_else(|| missing(offer_id))
    }

    /// The public list: approved, satisfied and oversubscribed offers, newest first.
    pub async fn listed(&self) -> DexResult<Vec<Offer>> {
        self.store.listed_offers().await
    }

    /// Sets the offer's status: the owner between `draft` and `approved`, an admin any.
    pub async fn set_status(
        &self,
        caller: &Account,
        offer_id: &str,
        status: Option<&str>,
    ) -> DexResult<Offer> {
        let names = || {
            OfferStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let status = match status.map(str::trim) {
            None | Some("") => {
                return Err(DexError::invalid(
                    "status is required",
                    vec![format!("status: one of {}", names())],
                ));
            }
            Some(text) => OfferStatus::parse(text).ok_or_else(|| {
                DexError::invalid(
                    "unknown status",
                    vec![format!("status: one of {}", names())],
                )
            })?,
        };
        for _ in 0..STATUS_ATTEMPTS {
            let current = self.get(offer_id).await?;
            let setter = if caller.has(&Role::Admin) {
                StatusSetter::Admin
            } else if caller.account_id == current.provider {
                StatusSetter::Owner
            } else {
                StatusSetter::Other
            };
            check_status_change(&current, setter, status)?;
            if current.status == status {
                return Ok(current);
            }
            let mut next = current.clone();
            next.status = status;
            next.version = current.version + 1;
            let event = LogEvent::new(
                Subject::offer(offer_id),
                Kind::OfferStatusChanged,
                &Actor::Account(caller.clone()),
                serde_json::json!({ "from": current.status, "to": status }),
            );
            match self
                .store
                .update_offer_status(&next, current.version, event)
                .await
            {
                Ok(()) => return Ok(next),
                Err(DexError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DexError::Conflict(
            "the offer kept changing meanwhile; try again".into(),
        ))
    }

    /// `GET .../claim`: the verified HAT claims the offer.
    pub async fn claim_by_hat<H: HatHttp, C: SecretStore>(
        &self,
        calls: &HatCalls<'_, H, C>,
        hat: &VerifiedHat,
        offer_id: &str,
    ) -> DexResult<ClaimView> {
        let offer = self.get(offer_id).await?;
        // The verifier read the HAT and its certified cluster: not again.
        let address = HatAddress::parse(&hat.address, self.allow_ports)
            .map_err(|e| DexError::invalid("invalid hat", vec![format!("hat: {e}")]))?;
        let registered = OfferHat {
            address: hat.address.clone(),
            public_key: hat.public_key_pem.clone(),
        };
        self.claim(
            calls,
            &offer,
            &address,
            registered,
            &hat.cluster_secret,
            &hat.actor(),
        )
        .await
    }

    /// `PUT .../registerClaim?hat=`: the owner (or an admin) claims the offer for a
    /// registered HAT.
    pub async fn register_claim<H: HatHttp, C: SecretStore>(
        &self,
        calls: &HatCalls<'_, H, C>,
        caller: &Account,
        offer_id: &str,
        hat: Option<&str>,
    ) -> DexResult<ClaimView> {
        let offer = self.get(offer_id).await?;
        check_owner_or_admin(&offer, caller, "register a claim")?;
        let hat = hat
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                DexError::invalid("hat is required", vec!["hat: the HAT address".into()])
            })?;
        limits::check_len("hat", hat, limits::MAX_DOMAIN_LEN + 6)?;
        let (address, registered, cluster) =
            crate::hats::certified_hat(self.store, hat, self.allow_ports).await?;
        let registered = OfferHat {
            address: registered.address,
            public_key: registered.public_key_pem,
        };
        let actor = Actor::Account(caller.clone());
        self.claim(
            calls,
            &offer,
            &address,
            registered,
            &cluster.secret_name,
            &actor,
        )
        .await
    }

    /// Claims `offer` for the registered HAT at `address`, whose cluster's platform
    /// credentials are in `cluster_secret`.
    async fn claim<H: HatHttp, C: SecretStore>(
        &self,
        calls: &HatCalls<'_, H, C>,
        offer: &Offer,
        address: &HatAddress,
        hat: OfferHat,
        cluster_secret: &str,
        actor: &Actor,
    ) -> DexResult<ClaimView> {
        let session = calls.session(address, cluster_secret, calls.deadline());
        let setup = HatClaimSetup::new(session, self.random);
        let claims = ClaimService {
            store: self.store,
            setup: &setup,
            clock: self.clock,
            random: self.random,
        };
        claims.claim_offer(offer, hat, actor).await
    }

    /// `GET .../userClaim`: the verified HAT's own kept claim, or 404.
    pub async fn user_claim(&self, hat: &VerifiedHat, offer_id: &str) -> DexResult<ClaimView> {
        check_offer_id(offer_id)?;
        let claim = self.store.get_claim(offer_id, &hat.address).await?;
        match claim {
            Some(c) if matches!(c.state, ClaimState::Kept { .. }) => claim_view(&c),
            _ => Err(DexError::NotFound(format!(
                "HAT {} has no claim of offer {offer_id}",
                hat.address
            ))),
        }
    }

    /// `GET .../claims` (the owner or an admin): the credentials, with the password opened,
    /// and the confirmed claims once `requiredMinUser` were confirmed at the same time.
    pub async fn claims(&self, caller: &Account, offer_id: &str) -> DexResult<ClaimsInfo> {
        let offer = self.get(offer_id).await?;
        check_owner_or_admin(&offer, caller, "read its claims")?;
        let confirmed = self.store.confirmed_claims(offer_id).await?;
        let released = claims_released(&offer, confirmed.len() as u32);
        if released && !offer.claims_released {
            self.mark_released(caller, &offer, confirmed.len()).await?;
        }
        let mut claims = if released {
            confirmed
                .iter()
                .map(claim_view)
                .collect::<DexResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        claims.sort_by_key(|c| c.claimer_number);
        let sealer = self.keys.sealer().await?;
        Ok(ClaimsInfo {
            credentials: credentials::view(&offer, sealer)?,
            claims,
        })
    }
}

impl<S: OfferStore + HatStore, K: SecretStore> OfferService<'_, S, K> {
    /// Records that the claims were released, so a later `Disable` below `requiredMinUser`
    /// does not take the list back. Another writer changing the offer meanwhile is fine:
    /// the next read records it.
    async fn mark_released(
        &self,
        caller: &Account,
        offer: &Offer,
        confirmed: usize,
    ) -> DexResult<()> {
        let mut next = offer.clone();
        next.claims_released = true;
        next.version = offer.version + 1;
        let event = LogEvent::new(
            Subject::offer(&offer.terms.offer_id),
            Kind::OfferStatusChanged,
            &Actor::Account(caller.clone()),
            serde_json::json!({ "claimsReleased": true, "confirmed": confirmed }),
        );
        match self
            .store
            .update_offer_status(&next, offer.version, event)
            .await
        {
            Ok(()) | Err(DexError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An offer id from a path: a malformed one cannot name an offer (and must not reach a key).
fn check_offer_id(offer_id: &str) -> DexResult<()> {
    let ok = !offer_id.is_empty()
        && offer_id.len() <= super::rules::MAX_OFFER_ID
        && offer_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(DexError::NotFound("no offer has that id".into()))
    }
}
