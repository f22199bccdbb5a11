//! An offer's HAT credentials (docs/decisions.md §9, §13 "Offers"): the login
//! `offer-<offerId>`, a random password from the system CSPRNG, kept only sealed with the
//! deployment's encryption key, and its bcrypt `$2a$` cost-10 hash, which is what the
//! claiming HATs get. Only the `claims` answer opens the password, for the offer's owner or
//! an admin.

use super::model::{CredentialsView, Offer, OfferCredentials, credentials_login};
use crate::auth::sealing::Sealer;
use crate::error::{DexError, DexResult};
use crate::plugs::bcrypt_hash;
use crate::ports::Random;

/// Characters of a generated password: 32 from 62 letters and digits (190 bits), far above
/// the 24 characters asked for and below the 71 bytes bcrypt reads.
pub const PASSWORD_CHARS: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// What the sealed password is bound to: a sealed value copied to another offer's item does
/// not open there.
fn seal_context(offer_id: &str) -> String {
    format!("offer-credentials:{offer_id}")
}

/// A password of [`PASSWORD_CHARS`] characters, uniform over [`ALPHABET`] (bytes past the
/// largest multiple of its length are drawn again, so no character is favoured).
pub fn generate_password(random: &dyn Random) -> String {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(PASSWORD_CHARS);
    while out.len() < PASSWORD_CHARS {
        for b in random.bytes(PASSWORD_CHARS) {
            if b < limit && out.len() < PASSWORD_CHARS {
                out.push(ALPHABET[(b as usize) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// New credentials for `offer_id`: the password sealed, and its hash.
pub fn generate(
    offer_id: &str,
    sealer: &Sealer,
    random: &dyn Random,
) -> DexResult<OfferCredentials> {
    let password = generate_password(random);
    Ok(OfferCredentials {
        password_sealed: sealer.seal(random, &seal_context(offer_id), password.as_bytes())?,
        password_hash: bcrypt_hash::hash(&password, random)?,
    })
}

/// The credentials as the `claims` answer shows them, the password opened.
pub fn view(offer: &Offer, sealer: &Sealer) -> DexResult<CredentialsView> {
    let id = &offer.terms.offer_id;
    let plain = sealer.open(&seal_context(id), &offer.credentials.password_sealed)?;
    let password_plain = String::from_utf8(plain)
        .map_err(|_| DexError::internal(format!("offer {id}: the sealed password is not text")))?;
    Ok(CredentialsView {
        offer_id: id.clone(),
        login: credentials_login(id),
        password_plain,
        password_hash: offer.credentials.password_hash.clone(),
        date_created: offer.created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sealing::{StoredEncryptionKey, StoredEncryptionKeys};
    use crate::testing::SeededRandom;

    fn sealer() -> Sealer {
        Sealer::load(&StoredEncryptionKeys {
            keys: vec![StoredEncryptionKey::generate(&SeededRandom::new(3), 0)],
        })
        .unwrap()
    }

    #[test]
    fn passwords_are_long_alphanumeric_and_fresh() {
        let random = SeededRandom::new(1);
        let a = generate_password(&random);
        let b = generate_password(&random);
        assert_eq!(a.len(), PASSWORD_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_password_is_kept_sealed_and_hashed_and_opens_for_its_offer_only() {
        let random = SeededRandom::new(2);
        let sealer = sealer();
        let credentials = generate("offer-1", &sealer, &random).unwrap();
        assert!(credentials.password_sealed.starts_with("v1."));
        assert!(credentials.password_hash.starts_with("$2a$10$"));
        let plain = String::from_utf8(
            sealer
                .open(&seal_context("offer-1"), &credentials.password_sealed)
                .unwrap(),
        )
        .unwrap();
        assert!(!credentials.password_sealed.contains(&plain));
        assert!(bcrypt::verify(&plain, &credentials.password_hash).unwrap());
        assert!(
            sealer
                .open(&seal_context("offer-2"), &credentials.password_sealed)
                .is_err()
        );
        // Debug shows neither.
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("v1.") && !debug.contains("$2a$"), "{debug}");
    }
}
