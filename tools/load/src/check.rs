//! The end-of-run accounting: what the driver sent (`Expected`) against what DEX, the table
//! and the test HATs hold afterwards (`Observed`). Pure, so the unit tests below can show that
//! every wrong total is reported.

use std::collections::{BTreeMap, BTreeSet};

/// `(endpoint, field path)` → count within one namespace (as `stats_support::FieldTotals`).
pub type FieldTotals = BTreeMap<(String, String), i64>;

/// The public counters of `GET /stats` (or their growth during the run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub data_in: i64,
    pub data_out: i64,
    pub hats: i64,
    pub data_plugs: i64,
    pub offer_claims: i64,
}

impl Figures {
    #[must_use]
    pub fn minus(self, base: Self) -> Self {
        Self {
            data_in: self.data_in - base.data_in,
            data_out: self.data_out - base.data_out,
            hats: self.hats - base.hats,
            data_plugs: self.data_plugs - base.data_plugs,
            offer_claims: self.offer_claims - base.offer_claims,
        }
    }
}

/// One capped offer as the driver raced on it.
#[derive(Debug, Clone, Default)]
pub struct OfferExpect {
    pub cap: u32,
    /// Every HAT that sent at least one claim.
    pub claimers: BTreeSet<String>,
    /// `claimerNumber` → HAT, from the 200 answers.
    pub answered: BTreeMap<u64, String>,
    /// A number DEX answered for two different HATs (must never happen).
    pub numbered_twice: Vec<u64>,
}

impl OfferExpect {
    /// Exactly this many claims must be kept: the cap, or every claimer when fewer.
    #[must_use]
    pub fn kept(&self) -> usize {
        self.claimers.len().min(self.cap as usize)
    }
}

/// What the driver did as one HAT.
#[derive(Debug, Clone, Default)]
pub struct HatExpect {
    /// Distinct stats items it sent (resends and racing copies not counted again).
    pub stats_items: u64,
    /// `register-consent` calls answered 200 (each one is recorded).
    pub consents: u64,
    /// Names of the plugs connected to it (connecting twice records one connection).
    pub plugs: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Namespace → what its inbound items added.
    pub namespaces: BTreeMap<String, FieldTotals>,
    /// What `GET /stats` must have grown by.
    pub figures: Figures,
    pub offers: BTreeMap<String, OfferExpect>,
    pub hats: BTreeMap<String, HatExpect>,
}

/// What one HAT's chain (`GET /api/hat/log`) and the test HAT itself hold.
#[derive(Debug, Clone, Default)]
pub struct HatObserved {
    /// `dex::txlog::verify_chain`: the first bad sequence number, if any.
    pub broken_at: Option<u64>,
    pub registered: u64,
    /// Sum of `details.items` over its `stats.accepted` entries.
    pub stats_items: u64,
    pub consents: u64,
    /// `details.plugId` of its `plug.connected` entries (a repeat shows as a count > 1).
    pub plug_connections: BTreeMap<String, u64>,
    /// `details.offerId` of its `offer.claimed` entries.
    pub claims: BTreeMap<String, u64>,
    /// Data debit keys on the test HAT.
    pub debits: BTreeSet<String>,
    /// Emails of the users on the test HAT.
    pub users: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub namespaces: BTreeMap<String, FieldTotals>,
    pub figures: Figures,
    /// Offer → `claims_kept` in the table.
    pub offers_kept: BTreeMap<String, u32>,
    pub hats: BTreeMap<String, HatObserved>,
    /// Plug id → its name (to read chain entries, which name the plug by id).
    pub plug_names: BTreeMap<String, String>,
}

/// Every difference between what was sent and what is held; empty when all is exact.
#[must_use]
pub fn compare(expected: &Expected, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for (ns, want) in &expected.namespaces {
        let got = observed.namespaces.get(ns).cloned().unwrap_or_default();
        if &got != want {
            let wrong: Vec<String> = want
                .keys()
                .chain(got.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| want.get(*k) != got.get(*k))
                .take(5)
                .map(|k| {
                    format!(
                        "{}/{}: sent {}, DEX has {}",
                        k.0,
                        k.1,
                        want.get(k).copied().unwrap_or(0),
                        got.get(k).copied().unwrap_or(0)
                    )
                })
                .collect();
            out.push(format!(
                "available-data of namespace {ns}: {}",
                wrong.join("; ")
            ));
        }
    }
    let (e, o) = (expected.figures, observed.figures);
    for (name, want, got) in [
        ("Data In", e.data_in, o.data_in),
        ("Data Out", e.data_out, o.data_out),
        ("HATs", e.hats, o.hats),
        ("Data Plugs", e.data_plugs, o.data_plugs),
        ("Total Offer Claims", e.offer_claims, o.offer_claims),
    ] {
        if want != got {
            out.push(format!("/stats {name} grew by {got}, expected {want}"));
        }
    }
    for (id, offer) in &expected.offers {
        let kept = offer.kept();
        for n in &offer.numbered_twice {
            out.push(format!("offer {id}: claimerNumber {n} answered twice"));
        }
        let numbers: Vec<u64> = offer.answered.keys().copied().collect();
        if numbers.iter().any(|n| *n == 0 || *n > u64::from(offer.cap)) {
            out.push(format!(
                "offer {id}: claimer numbers {numbers:?} outside 1..={}",
                offer.cap
            ));
        }
        match observed.offers_kept.get(id) {
            Some(&n) if n as usize == kept => {}
            got => out.push(format!(
                "offer {id}: the table keeps {got:?} claims, expected {kept} (cap {}, {} claimers)",
                offer.cap,
                offer.claimers.len()
            )),
        }
        let chained: BTreeSet<&String> = observed
            .hats
            .iter()
            .filter(|(_, h)| h.claims.contains_key(id))
            .map(|(a, _)| a)
            .collect();
        let debited: BTreeSet<&String> = observed
            .hats
            .iter()
            .filter(|(_, h)| h.debits.contains(id))
            .map(|(a, _)| a)
            .collect();
        if chained.len() != kept {
            out.push(format!(
                "offer {id}: {} HAT chains hold its claim, expected {kept}",
                chained.len()
            ));
        }
        if debited != chained {
            out.push(format!(
                "offer {id}: the HATs with its debit ({}) are not the HATs with its claim ({})",
                debited.len(),
                chained.len()
            ));
        }
        let answered: BTreeSet<&String> = offer.answered.values().collect();
        if !answered.is_subset(&chained) {
            out.push(format!(
                "offer {id}: a HAT was answered 200 but holds no claim"
            ));
        }
        if chained.iter().any(|a| !offer.claimers.contains(*a)) {
            out.push(format!(
                "offer {id}: a HAT that never claimed holds a claim"
            ));
        }
    }
    for (address, want) in &expected.hats {
        let Some(got) = observed.hats.get(address) else {
            out.push(format!("{address}: not checked (no chain read)"));
            continue;
        };
        if let Some(seq) = got.broken_at {
            out.push(format!("{address}: chain broken at entry {seq}"));
        }
        if got.registered != 1 {
            out.push(format!(
                "{address}: {} hat.registered entries",
                got.registered
            ));
        }
        if got.stats_items != want.stats_items {
            out.push(format!(
                "{address}: its chain counts {} stats items, it sent {}",
                got.stats_items, want.stats_items
            ));
        }
        if got.consents != want.consents {
            out.push(format!(
                "{address}: {} consent.recorded entries, {} consents answered 200",
                got.consents, want.consents
            ));
        }
        let connected: BTreeSet<String> = got
            .plug_connections
            .keys()
            .map(|id| {
                observed
                    .plug_names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.clone())
            })
            .collect();
        if connected != want.plugs || got.plug_connections.values().any(|n| *n != 1) {
            out.push(format!(
                "{address}: plug.connected entries {:?}, expected one for each of {:?}",
                got.plug_connections, want.plugs
            ));
        }
        let plug_users: BTreeSet<String> = got
            .users
            .iter()
            .filter(|u| observed.plug_names.values().any(|n| n == *u))
            .cloned()
            .collect();
        if plug_users != want.plugs {
            out.push(format!(
                "{address}: plug users on the HAT {plug_users:?}, expected {:?}",
                want.plugs
            ));
        }
        if got.claims.values().any(|n| *n != 1) {
            out.push(format!(
                "{address}: an offer claimed twice on its chain: {:?}",
                got.claims
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a.load.net:1";
    const B: &str = "b.load.net:1";
    const C: &str = "c.load.net:1";

    /// A consistent run: two HATs of three won a 2-place offer, one plug connected, stats.
    fn exact() -> (Expected, Observed) {
        let totals: FieldTotals = [(("e0".to_owned(), "f0".to_owned()), 7)].into();
        let mut expected = Expected {
            namespaces: [("ns".to_owned(), totals.clone())].into(),
            figures: Figures {
                data_in: 7,
                data_out: 3,
                hats: 3,
                data_plugs: 1,
                offer_claims: 2,
            },
            ..Expected::default()
        };
        expected.offers.insert(
            "o1".into(),
            OfferExpect {
                cap: 2,
                claimers: [A, B, C].map(String::from).into(),
                answered: [(1, A.to_owned()), (2, B.to_owned())].into(),
                numbered_twice: vec![],
            },
        );
        let mut observed = Observed {
            namespaces: [("ns".to_owned(), totals)].into(),
            figures: expected.figures,
            offers_kept: [("o1".to_owned(), 2)].into(),
            plug_names: [("p-id".to_owned(), "plug1".to_owned())].into(),
            ..Observed::default()
        };
        for (address, items, won) in [(A, 5, true), (B, 2, true), (C, 0, false)] {
            let plugs: BTreeSet<String> = if address == A {
                ["plug1".to_owned()].into()
            } else {
                BTreeSet::new()
            };
            expected.hats.insert(
                address.to_owned(),
                HatExpect {
                    stats_items: items,
                    consents: 1,
                    plugs: plugs.clone(),
                },
            );
            observed.hats.insert(
                address.to_owned(),
                HatObserved {
                    broken_at: None,
                    registered: 1,
                    stats_items: items,
                    consents: 1,
                    plug_connections: if address == A {
                        [("p-id".to_owned(), 1)].into()
                    } else {
                        BTreeMap::new()
                    },
                    claims: if won {
                        [("o1".to_owned(), 1)].into()
                    } else {
                        BTreeMap::new()
                    },
                    debits: if won {
                        ["o1".to_owned()].into()
                    } else {
                        BTreeSet::new()
                    },
                    users: plugs,
                },
            );
        }
        (expected, observed)
    }

    fn problems(edit: impl FnOnce(&mut Expected, &mut Observed)) -> Vec<String> {
        let (mut e, mut o) = exact();
        edit(&mut e, &mut o);
        compare(&e, &o)
    }

    #[test]
    fn an_exact_run_passes() {
        assert_eq!(problems(|_, _| {}), Vec::<String>::new());
    }

    #[test]
    fn a_stats_item_counted_twice_or_lost_fails() {
        let p = problems(|_, o| {
            o.namespaces
                .get_mut("ns")
                .unwrap()
                .insert(("e0".into(), "f0".into()), 8);
        });
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("e0/f0: sent 7, DEX has 8"), "{p:?}");
        let p = problems(|_, o| o.namespaces.clear());
        assert!(p[0].contains("DEX has 0"), "{p:?}");
        let p = problems(|_, o| o.hats.get_mut(A).unwrap().stats_items = 4);
        assert!(p[0].contains("counts 4 stats items, it sent 5"), "{p:?}");
    }

    #[test]
    fn a_wrong_public_figure_fails() {
        let p = problems(|_, o| o.figures.data_in += 1);
        assert_eq!(p, ["/stats Data In grew by 8, expected 7"]);
        let p = problems(|_, o| o.figures.offer_claims = 3);
        assert_eq!(p, ["/stats Total Offer Claims grew by 3, expected 2"]);
    }

    #[test]
    fn an_offer_over_its_cap_or_short_of_it_fails() {
        let p = problems(|_, o| {
            o.offers_kept.insert("o1".into(), 3);
        });
        assert!(
            p[0].contains("the table keeps Some(3) claims, expected 2"),
            "{p:?}"
        );
        // A third HAT holding a claim and a debit: the chains say 3.
        let p = problems(|_, o| {
            let c = o.hats.get_mut(C).unwrap();
            c.claims.insert("o1".into(), 1);
            c.debits.insert("o1".into());
        });
        assert!(
            p.iter().any(|m| m.contains("3 HAT chains hold its claim")),
            "{p:?}"
        );
        // A debit on a HAT without the claim.
        let p = problems(|_, o| {
            o.hats.get_mut(C).unwrap().debits.insert("o1".into());
        });
        assert!(
            p.iter().any(|m| m.contains("not the HATs with its claim")),
            "{p:?}"
        );
        let p = problems(|e, _| e.offers.get_mut("o1").unwrap().numbered_twice.push(1));
        assert!(p[0].contains("claimerNumber 1 answered twice"), "{p:?}");
    }

    #[test]
    fn fewer_claimers_than_places_keep_every_claimer() {
        let p = problems(|e, _| {
            e.offers.get_mut("o1").unwrap().cap = 5;
        });
        assert!(p[0].contains("expected 3 (cap 5, 3 claimers)"), "{p:?}");
    }

    #[test]
    fn a_broken_chain_or_a_repeated_connection_fails() {
        let p = problems(|_, o| o.hats.get_mut(B).unwrap().broken_at = Some(4));
        assert_eq!(p, [format!("{B}: chain broken at entry 4")]);
        let p = problems(|_, o| {
            o.hats
                .get_mut(A)
                .unwrap()
                .plug_connections
                .insert("p-id".into(), 2);
        });
        assert!(p[0].contains("plug.connected entries"), "{p:?}");
        let p = problems(|_, o| {
            o.hats.get_mut(A).unwrap().users.clear();
        });
        assert!(p[0].contains("plug users on the HAT"), "{p:?}");
        let p = problems(|_, o| o.hats.get_mut(C).unwrap().consents = 2);
        assert!(
            p[0].contains("2 consent.recorded entries, 1 consents"),
            "{p:?}"
        );
    }
}
