//! The bcrypt hash HATs get for a plug's (and an offer's) password: `$2a$`, cost 10, the form
//! HAT2.0 and the original DEX use (docs/decisions.md §13 "Offers").

use crate::error::{DexError, DexResult};
use crate::ports::Random;

pub const COST: u32 = 10;
/// bcrypt reads at most 72 bytes including its terminating zero: a longer password would be
/// cut silently, so it is refused.
pub const MAX_PASSWORD_BYTES: usize = 71;

/// `$2a$10$<salt><hash>` of `password`, the salt from `random` (the system CSPRNG in DEX).
pub fn hash(password: &str, random: &dyn Random) -> DexResult<String> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let parts = bcrypt::non_truncating_hash_with_salt(password, COST, salt)
        .map_err(|e| DexError::bad_request(format!("password cannot be hashed: {e}")))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[test]
    fn a_2a_cost_10_hash_that_verifies() {
        let h = hash("a plug password", &SeededRandom::new(1)).unwrap();
        assert!(h.starts_with("$2a$10$") && h.len() == 60, "{h}");
        assert!(bcrypt::verify("a plug password", &h).unwrap());
        assert!(!bcrypt::verify("another password", &h).unwrap());
        // Fresh salt each time.
        assert_ne!(h, hash("a plug password", &SeededRandom::new(2)).unwrap());
    }

    #[test]
    fn passwords_bcrypt_would_cut_are_refused() {
        assert!(hash(&"x".repeat(MAX_PASSWORD_BYTES), &SeededRandom::new(1)).is_ok());
        let err = hash(&"x".repeat(MAX_PASSWORD_BYTES + 1), &SeededRandom::new(1)).unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
