//! The notice use cases (docs/decisions.md §13 "Notices"): post (admins, dexctl), a HAT's
//! list, marking read, and the whole list (dexctl).

use serde::Deserialize;

use super::model::{
    MAX_ADDRESSES, MAX_MESSAGE, MAX_SELECTOR_LEN, MAX_SELECTORS, Notice, NoticeItem, NoticeTarget,
};
use super::ports::NoticeStore;
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::hats::verify::VerifiedHat;
use crate::limits::{push_if_long, push_if_many};
use crate::ports::Clock;
use crate::txlog::{Kind, LogEvent, Subject};

/// The body of `POST /api/notices`; `target` may be left out (every HAT).
#[derive(Debug, Default, Deserialize)]
pub struct NewNotice {
    pub message: Option<String>,
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub target: Option<NoticeTarget>,
}

pub struct NoticeService<'a, S> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
}

fn check_target(target: &NoticeTarget, details: &mut Vec<String>) {
    let lists = [
        ("withAnyRole", &target.with_any_role, MAX_SELECTORS),
        ("withAllRoles", &target.with_all_roles, MAX_SELECTORS),
        ("withEmail", &target.with_email, MAX_SELECTORS),
        ("withHatAddress", &target.with_hat_address, MAX_ADDRESSES),
    ];
    for (field, list, max) in lists {
        push_if_many(details, &format!("target.{field}"), list, max);
        for value in list.iter() {
            push_if_long(
                details,
                &format!("target.{field}[]"),
                value,
                MAX_SELECTOR_LEN,
            );
        }
    }
}

/// A notice id as the path gives it: a positive integer, else no notice has it.
fn parse_id(id: &str) -> DexResult<u64> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| DexError::NotFound(format!("no notice {id}")))
}

impl<S: NoticeStore> NoticeService<'_, S> {
    /// Posts a notice: the next id, created now, logged on `notice:<id>`.
    pub async fn post(&self, actor: &Actor, new: NewNotice) -> DexResult<Notice> {
        let mut details = Vec::new();
        let message = new.message.unwrap_or_default();
        if message.is_empty() {
            details.push("message: required, at least one character".to_owned());
        }
        push_if_long(&mut details, "message", &message, MAX_MESSAGE);
        let mut target = new.target.unwrap_or_default();
        check_target(&target, &mut details);
        if !details.is_empty() {
            return Err(DexError::invalid("invalid notice", details));
        }
        // HAT addresses are DNS names: kept as DEX keeps HAT addresses.
        for address in &mut target.with_hat_address {
            *address = address.trim().to_lowercase();
        }
        let event = |notice: &Notice| {
            LogEvent::new(
                notice.subject(),
                Kind::NoticePosted,
                actor,
                serde_json::json!({
                    "noticeId": notice.id,
                    "message": notice.message,
                    "target": notice.target,
                }),
            )
        };
        self.store
            .insert_notice(&message, &target, self.clock.now_millis(), &event)
            .await
    }

    /// The notices addressed to `hat`, newest first, with when it read each.
    pub async fn for_hat(&self, hat: &VerifiedHat) -> DexResult<Vec<NoticeItem>> {
        let notices = self.store.list_notices().await?;
        let reads: std::collections::HashMap<u64, i64> = self
            .store
            .notice_reads(&hat.address)
            .await?
            .into_iter()
            .collect();
        Ok(notices
            .into_iter()
            .filter(|n| n.target.addresses(&hat.address))
            .map(|n| {
                let read = reads.get(&n.id).copied();
                NoticeItem::new(n, read)
            })
            .collect())
    }

    /// Marks notice `id` read by `hat` (404 unless it exists and is addressed to it); the
    /// first read time stays, and marking again writes nothing.
    pub async fn mark_read(&self, hat: &VerifiedHat, id: &str) -> DexResult<NoticeItem> {
        let id = parse_id(id)?;
        let notice = self
            .store
            .get_notice(id)
            .await?
            .filter(|n| n.target.addresses(&hat.address))
            .ok_or_else(|| DexError::NotFound(format!("no notice {id} for this HAT")))?;
        let event = LogEvent::new(
            Subject::hat(&hat.address),
            Kind::NoticeRead,
            &hat.actor(),
            serde_json::json!({ "noticeId": id }),
        );
        let read = self
            .store
            .mark_notice_read(&hat.address, id, self.clock.now_millis(), event)
            .await?;
        Ok(NoticeItem::new(notice, Some(read)))
    }

    /// Every notice, newest first (dexctl).
    pub async fn all(&self) -> DexResult<Vec<Notice>> {
        self.store.list_notices().await
    }
}
