//! Length limits of user-controlled strings that become part of a DynamoDB key (partition
//! keys hold at most 2048 bytes, sort keys 1024): checked before any request, as a 400.

use crate::error::{DexError, DexResult};

/// A user-given value used inside a partition key (log subject, actor, kind, ...).
pub const MAX_KEY_PART: usize = 512;
/// One value of a page cursor, handed back to DynamoDB as a start key.
pub const MAX_CURSOR_VALUE: usize = 1024;
/// A DNS name (a cluster domain, a HAT address) has at most 253 bytes.
pub const MAX_DOMAIN_LEN: usize = 253;

/// `Ok` when `value` has at most `max` bytes; else a 400 naming `field`.
pub fn check_len(field: &str, value: &str, max: usize) -> DexResult<()> {
    if value.len() > max {
        return Err(DexError::invalid(
            format!("{field} is too long"),
            vec![format!("{field}: at most {max} bytes")],
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bytes_and_name_the_field() {
        assert!(check_len("subject", &"a".repeat(MAX_KEY_PART), MAX_KEY_PART).is_ok());
        let err = check_len("subject", &"a".repeat(MAX_KEY_PART + 1), MAX_KEY_PART).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.body().details[0].contains("subject"));
        // 200 characters of 3 bytes each are 600 bytes.
        assert!(check_len("kind", &"é".repeat(200), 400).is_ok());
        assert!(check_len("kind", &"€".repeat(200), 400).is_err());
    }
}
