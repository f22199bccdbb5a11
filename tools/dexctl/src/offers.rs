//! `dexctl offers ...`: list offers and set their status as the operator, who may set any
//! status like an admin (docs/decisions.md §9). Straight on the store: the offer service
//! answers accounts, and an operator is none.

use dex::accounts::Actor;
use dex::offers::rules::{StatusSetter, check_status_change};
use dex::offers::{OfferStatus, OfferStore, OfferView};
use dex::txlog::{Kind, LogEvent, Subject};
use dex::{DexError, DexResult};
use dex_aws::dynamo::DynamoStore;

use super::{fail, print_json, subcommand};

pub(crate) const USAGE: &str = "\
  dexctl offers list [--listed]          every offer (or the public list), newest first
  dexctl offers status OFFER_ID STATUS   draft, approved, rejected, satisfied, oversubscribed, paid
";

/// How often a status change is tried again when the offer changed meanwhile.
const ATTEMPTS: usize = 3;

pub(crate) async fn offers(store: DynamoStore, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "list" => {
            let listed = args.flag("--listed");
            args.finish()?;
            let offers = if listed {
                store.listed_offers().await
            } else {
                store.all_offers().await
            }
            .map_err(fail)?;
            let views: Vec<OfferView> = offers.iter().map(OfferView::from).collect();
            print_json(&views);
        }
        "status" => {
            let rest = args.finish()?;
            let [id, status] = rest.as_slice() else {
                return Err(format!("usage:\n{USAGE}"));
            };
            let status = OfferStatus::parse(status)
                .ok_or_else(|| format!("unknown status {status:?}\n{USAGE}"))?;
            let offer = set_status(&store, id, status).await.map_err(fail)?;
            print_json(&OfferView::from(&offer));
        }
        _ => return Err(format!("usage:\n{USAGE}")),
    }
    Ok(())
}

async fn set_status(
    store: &DynamoStore,
    offer_id: &str,
    status: OfferStatus,
) -> DexResult<dex::offers::Offer> {
    for _ in 0..ATTEMPTS {
        let mut offer = store
            .get_offer(offer_id)
            .await?
            .ok_or_else(|| DexError::NotFound(format!("no offer {offer_id}")))?;
        check_status_change(&offer, StatusSetter::Admin, status)?;
        if offer.status == status {
            return Ok(offer);
        }
        let version = offer.version;
        let event = LogEvent::new(
            Subject::offer(offer_id),
            Kind::OfferStatusChanged,
            &Actor::Operator,
            serde_json::json!({ "offerId": offer_id, "from": offer.status, "status": status }),
        );
        offer.status = status;
        match store.update_offer_status(&offer, version, event).await {
            Ok(()) => {
                offer.version = version + 1;
                return Ok(offer);
            }
            Err(DexError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(DexError::Conflict(
        "the offer kept changing meanwhile; try again".into(),
    ))
}
