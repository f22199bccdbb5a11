//! DynamoDB's limits, as the fake store enforces them, so a plan the real table would refuse
//! fails in the fast tier too. Figures from "Constraints in Amazon DynamoDB",
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
//! (sections "Partition keys and sort keys", "Items", "Expression parameters", "DynamoDB
//! transactions", "API-specific constraints"), and the TransactWriteItems / BatchGetItem API
//! references (100 actions, 4 MB aggregate, no two actions on one item; 100 keys, no
//! duplicates). 1 KB = 1024 bytes there.
//!
//! The adapter turns every such refusal (a `ValidationException`, or a cancellation whose
//! reason is `ValidationError`) into an internal error: a plan the table refuses is a bug, so
//! the fake answers `DexError::Internal` naming the limit.

use std::collections::HashSet;

use crate::error::DexError;

// The figures the planner plans within (`stats::limits`, cited there), so the two agree.
pub use crate::stats::limits::{
    EXPRESSION_BYTES as MAX_EXPRESSION_BYTES, EXPRESSION_OPERATORS as MAX_EXPRESSION_OPERATORS,
    ITEM_BYTES as MAX_ITEM_BYTES, PARTITION_KEY_BYTES as MAX_PARTITION_KEY_BYTES,
    SORT_KEY_BYTES as MAX_SORT_KEY_BYTES, SUBSTITUTION_BYTES as MAX_SUBSTITUTION_BYTES,
    TRANSACTION_ACTIONS as MAX_TRANSACTION_ACTIONS, TRANSACTION_BYTES as MAX_TRANSACTION_BYTES,
};
pub const MAX_BATCH_GET_KEYS: usize = 100;
pub const MAX_BATCH_WRITE_KEYS: usize = 25;

/// What DynamoDB sees of one write action: its key, the size of the item it leaves, and its
/// expressions as the adapter writes them.
#[derive(Debug, Clone)]
pub struct Shape {
    pub pk: String,
    pub sk: String,
    pub item_bytes: usize,
    pub condition: Option<String>,
    pub update: Option<String>,
    /// What the action sends (key, names, values, expressions), when it is not the item
    /// itself: an update sends its changes only. The 4 MB of a transaction are these bytes
    /// (DynamoDB Local: "Transaction payload size cannot exceed 4MB").
    pub request_bytes: Option<usize>,
}

fn refused(what: String) -> DexError {
    DexError::internal(format!("DynamoDB would refuse this request: {what}"))
}

pub fn check_key(pk: &str, sk: &str) -> Result<(), DexError> {
    if pk.is_empty() || pk.len() > MAX_PARTITION_KEY_BYTES {
        return Err(refused(format!(
            "partition key of {} bytes (1 to {MAX_PARTITION_KEY_BYTES})",
            pk.len()
        )));
    }
    if sk.is_empty() || sk.len() > MAX_SORT_KEY_BYTES {
        return Err(refused(format!(
            "sort key of {} bytes (1 to {MAX_SORT_KEY_BYTES})",
            sk.len()
        )));
    }
    Ok(())
}

/// Operators and functions DynamoDB counts in an expression (at most 300 per expression).
/// In an update expression `=` assigns and is not counted; `+`/`-` are (the docs' example:
/// `SET a = :val1 + :val2 + :val3` holds two operators).
pub fn operators(expression: &str, update: bool) -> usize {
    const WORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];
    const FUNCTIONS: [&str; 8] = [
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    ];
    let mut count = 0;
    let mut chars = expression.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' || c == '#' || c == ':' {
            let mut end = start + c.len_utf8();
            while let Some((i, c)) = chars.peek().copied() {
                if c.is_alphanumeric() || c == '_' || c == '#' || c == ':' || c == '.' {
                    end = i + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expression[start..end];
            if WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) || FUNCTIONS.contains(&word) {
                count += 1;
            }
        } else if update {
            count += usize::from(c == '+' || c == '-');
        } else {
            match c {
                '=' => count += 1,
                '<' | '>' => {
                    // <, <=, >, >=, <> are one operator each.
                    if matches!(chars.peek(), Some((_, '=' | '>'))) {
                        chars.next();
                    }
                    count += 1;
                }
                _ => {}
            }
        }
    }
    count
}

pub fn check_expression(kind: &str, expression: &str, update: bool) -> Result<(), DexError> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(refused(format!(
            "{kind} of {} bytes (at most {MAX_EXPRESSION_BYTES})",
            expression.len()
        )));
    }
    let count = operators(expression, update);
    if count > MAX_EXPRESSION_OPERATORS {
        return Err(refused(format!(
            "invalid {kind}: the expression contains too many operators; operator count: {count}"
        )));
    }
    Ok(())
}

/// Everything DynamoDB checks of a TransactWriteItems before it looks at a condition.
pub fn check_transaction(actions: &[Shape]) -> Result<(), DexError> {
    if actions.is_empty() {
        return Err(refused("a transaction without actions".into()));
    }
    if actions.len() > MAX_TRANSACTION_ACTIONS {
        return Err(refused(format!(
            "a transaction of {} actions (at most {MAX_TRANSACTION_ACTIONS})",
            actions.len()
        )));
    }
    let mut keys = HashSet::new();
    let mut total = 0;
    for action in actions {
        check_key(&action.pk, &action.sk)?;
        if !keys.insert((&action.pk, &action.sk)) {
            return Err(refused(format!(
                "two actions of one transaction on the item {}/{}",
                action.pk, action.sk
            )));
        }
        if action.item_bytes > MAX_ITEM_BYTES {
            return Err(refused(format!(
                "an item of {} bytes at {}/{} (at most {MAX_ITEM_BYTES})",
                action.item_bytes, action.pk, action.sk
            )));
        }
        // An update's request is mostly its substitution values (at most 2 MB).
        if let Some(sent) = action.request_bytes
            && sent > MAX_SUBSTITUTION_BYTES
        {
            return Err(refused(format!(
                "an update of {sent} bytes at {}/{} (substitutions at most {MAX_SUBSTITUTION_BYTES})",
                action.pk, action.sk
            )));
        }
        total += action.request_bytes.unwrap_or(action.item_bytes);
        if let Some(c) = &action.condition {
            check_expression("ConditionExpression", c, false)?;
        }
        if let Some(u) = &action.update {
            check_expression("UpdateExpression", u, true)?;
        }
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(refused(format!(
            "a transaction of {total} bytes (at most {MAX_TRANSACTION_BYTES})"
        )));
    }
    Ok(())
}

/// A BatchGetItem of these keys: at most 100, no duplicates, each a valid key.
pub fn check_batch_get(keys: &[(String, String)]) -> Result<(), DexError> {
    if keys.len() > MAX_BATCH_GET_KEYS {
        return Err(refused(format!(
            "too many items requested for the BatchGetItem call: {} (at most {MAX_BATCH_GET_KEYS})",
            keys.len()
        )));
    }
    let mut seen = HashSet::new();
    for (pk, sk) in keys {
        check_key(pk, sk)?;
        if !seen.insert((pk, sk)) {
            return Err(refused(
                "provided list of item keys contains duplicates".into(),
            ));
        }
    }
    Ok(())
}

/// The adapter's `batch_get`: these keys read in BatchGetItem calls of at most 100 keys each
/// (in order), every call within the limits of [`check_batch_get`].
pub fn check_batch_gets(keys: &[(String, String)]) -> Result<(), DexError> {
    keys.chunks(MAX_BATCH_GET_KEYS)
        .try_for_each(check_batch_get)
}

/// A BatchWriteItem of these keys: at most 25 puts or deletes, no duplicates.
pub fn check_batch_write(keys: &[(String, String)]) -> Result<(), DexError> {
    if keys.len() > MAX_BATCH_WRITE_KEYS {
        return Err(refused(format!(
            "a BatchWriteItem of {} requests (at most {MAX_BATCH_WRITE_KEYS})",
            keys.len()
        )));
    }
    check_batch_get(keys)
}

/// Item sizes as DynamoDB counts them: attribute names plus values (strings by UTF-8 length,
/// numbers about one byte per two digits plus one, lists 3 bytes plus 1 per element).
#[derive(Debug, Default, Clone, Copy)]
pub struct ItemSize(pub usize);

impl ItemSize {
    pub fn s(mut self, name: &str, value: &str) -> Self {
        self.0 += name.len() + value.len();
        self
    }

    pub fn n(mut self, name: &str, value: impl ToString) -> Self {
        let digits = value
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        self.0 += name.len() + digits.div_ceil(2) + 1;
        self
    }

    pub fn b(mut self, name: &str) -> Self {
        self.0 += name.len() + 1;
        self
    }

    pub fn list<'a>(mut self, name: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.0 += name.len() + 3 + values.into_iter().map(|v| v.len() + 1).sum::<usize>();
        self
    }

    pub fn string_set<'a>(mut self, name: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.0 += name.len() + values.into_iter().map(str::len).sum::<usize>();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pk: &str, sk: &str) -> Shape {
        Shape {
            pk: pk.into(),
            sk: sk.into(),
            item_bytes: 100,
            condition: None,
            update: None,
            request_bytes: None,
        }
    }

    #[test]
    fn operators_are_counted_as_dynamodb_counts_them() {
        assert_eq!(operators("attribute_not_exists(pk)", false), 1);
        assert_eq!(operators("attribute_exists(pk) AND #v = :v", false), 3);
        assert_eq!(
            operators("NOT contains(#h, :m0) AND NOT contains(#h, :m1)", false),
            5
        );
        assert_eq!(operators("#at BETWEEN :from AND :to", false), 2);
        assert_eq!(operators("a <= :x OR b <> :y", false), 3);
        assert_eq!(operators("SET a = :val1 + :val2 + :val3", true), 2);
        assert_eq!(operators("ADD #h :new SET #x = :x", true), 0);
    }

    #[test]
    fn transactions_over_the_limits_are_refused() {
        let many: Vec<Shape> = (0..101).map(|i| shape(&format!("P{i}"), "S")).collect();
        assert!(check_transaction(&many[..100]).is_ok());
        assert!(matches!(
            check_transaction(&many),
            Err(DexError::Internal(_))
        ));
        assert!(check_transaction(&[]).is_err());
        assert!(check_transaction(&[shape("P", "S"), shape("P", "S")]).is_err());
        assert!(check_transaction(&[shape(&"p".repeat(2048), "S")]).is_ok());
        assert!(check_transaction(&[shape(&"p".repeat(2049), "S")]).is_err());
        assert!(check_transaction(&[shape("P", &"s".repeat(1025))]).is_err());
        let mut big = shape("P", "S");
        big.item_bytes = MAX_ITEM_BYTES + 1;
        assert!(check_transaction(&[big]).is_err());
        let heavy: Vec<Shape> = (0..11)
            .map(|i| Shape {
                item_bytes: MAX_ITEM_BYTES,
                ..shape(&format!("P{i}"), "S")
            })
            .collect();
        assert!(check_transaction(&heavy[..10]).is_ok());
        assert!(check_transaction(&heavy).is_err(), "over 4 MB in all");
        let conditions = |n: usize| {
            (0..n)
                .map(|i| format!("NOT contains(#h, :m{i})"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let with = |c: String| Shape {
            condition: Some(c),
            ..shape("P", "S")
        };
        assert!(
            check_transaction(&[with(conditions(100))]).is_ok(),
            "299 operators"
        );
        let err = check_transaction(&[with(conditions(101))]).unwrap_err();
        assert!(err.to_string().contains("too many operators"), "{err}");
        assert!(
            check_transaction(&[with("a = :b OR ".repeat(500))]).is_err(),
            "over 4 KB"
        );
    }

    #[test]
    fn batches_over_the_limits_are_refused() {
        let keys: Vec<(String, String)> = (0..101).map(|i| (format!("P{i}"), "S".into())).collect();
        assert!(check_batch_get(&keys[..100]).is_ok());
        assert!(check_batch_get(&keys).is_err());
        assert!(check_batch_get(&[keys[0].clone(), keys[0].clone()]).is_err());
        assert!(check_batch_gets(&keys).is_ok(), "read in two calls");
        assert!(check_batch_write(&keys[..25]).is_ok());
        assert!(check_batch_write(&keys[..26]).is_err());
    }
}
