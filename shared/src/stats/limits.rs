//! Every limit that shapes the ingestion of a report, in one place: DynamoDB's own (the plan
//! must stay within them whatever a HAT sends) and the caps DEX puts on what one report may
//! add to the statistics (README, "Statistics, exactly once").
//!
//! DynamoDB's figures are from "Constraints in Amazon DynamoDB"
//! (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html), where
//! 1 KB = 1024 bytes; the quoted words are the guide's. `testing::limits` enforces the same
//! figures in the fake store, and DynamoDB Local refuses past each of them.

// ---- DynamoDB ---------------------------------------------------------------------------

/// "A transaction cannot contain more than 100 unique items" (DynamoDB transactions).
pub const TRANSACTION_ACTIONS: usize = 100;
/// "A transaction cannot contain more than 4 MB of data" (DynamoDB transactions). What counts
/// is the request ("Transaction payload size cannot exceed 4MB. Payload Size: ..."), not the
/// items as the updates leave them: DynamoDB Local takes twelve 380 KB sets growing by one
/// marker in one transaction.
pub const TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// "The maximum item size in DynamoDB is 400 KB, which includes both attribute name binary
/// length (UTF-8 length) and attribute value lengths" (Items).
pub const ITEM_BYTES: usize = 400 * 1024;
/// "The maximum length of any expression string is 4 KB" (Expression parameters, Lengths).
pub const EXPRESSION_BYTES: usize = 4 * 1024;
/// "The maximum number of operators or functions allowed in an UpdateExpression is 300"
/// (Expression parameters, Operators and operands). DynamoDB applies it to condition
/// expressions too: 101 `NOT contains(..)` joined by `AND` answer "Invalid
/// ConditionExpression: The expression contains too many operators; operator count: 301".
pub const EXPRESSION_OPERATORS: usize = 300;
/// "The maximum length of all substitution variables in an expression is 2 MB. This is the
/// sum of the lengths of all ExpressionAttributeNames and ExpressionAttributeValues".
pub const SUBSTITUTION_BYTES: usize = 2 * 1024 * 1024;
/// "The minimum length of a partition key value is 1 byte. The maximum length is 2048 bytes";
/// sort keys: 1024 bytes (Partition keys and sort keys).
pub const PARTITION_KEY_BYTES: usize = 2048;
pub const SORT_KEY_BYTES: usize = 1024;

// ---- what one chunk (one transaction) of a report may hold ------------------------------

/// Room left for the log entry and its chain head (`DynamoStore::commit` adds both).
pub const MAX_CHUNK_ACTIONS: usize = TRANSACTION_ACTIONS - 4;
/// What a chunk's actions may carry in all (keys, values, names, expressions), leaving a
/// quarter of the transaction's 4 MB for the log entry, its head and the estimate's slack.
pub const MAX_CHUNK_BYTES: usize = TRANSACTION_BYTES * 3 / 4;
/// A marker bucket's condition: `(attribute_not_exists(#h) OR size(#h) <= :room)` is 4
/// operators plus the `AND` that joins it, and each marker adds `AND NOT contains(#h, :mN)`
/// (3): 5 + 3 × 98 - 1 = 298 ≤ 300. Its text: about 28 bytes a marker, 2.8 KB ≤ 4 KB.
pub const MAX_MARKERS_PER_ACTION: usize = (EXPRESSION_OPERATORS - 5 + 1) / 3;
/// A field item's update carries, per field, `#fN :fN, ` in its update expression (≤ 12
/// bytes) and `contains(#n, :nN) AND ` in its condition (2 operators, ≤ 24 bytes); with the
/// room clause (4 operators) 140 fields are 283 operators and about 3.4 KB.
pub const MAX_FIELDS_PER_ACTION: usize = 140;

// ---- items that grow ---------------------------------------------------------------------

/// Duplicate markers of one HAT and hour are spread over this many bucket items by identity.
pub const SEEN_BUCKETS: u8 = 8;
/// Markers one bucket item holds at most: 16,000 × 22 bytes = 352 KB, under 400 KB with the
/// key and the TTL. With 8 buckets a HAT can have about 128,000 items counted per hour of
/// item time, twice a HAT sending a full 1000-item report every minute (docs/hats.md §3
/// groups events by 100 items or 60 s); items past the cap are skipped with a reason, never
/// a failed report.
pub const MAX_MARKERS_PER_BUCKET: usize = 16_000;
/// Field counts are spread over this many shard items per endpoint (a HAT always writes the
/// same one, `ingest::field_shard`).
pub const FIELD_SHARDS: u64 = 16;
/// Distinct field names one field shard item holds at most: 500 × (a 130-byte attribute and
/// a 128-byte name in its set) ≈ 130 KB ≤ 400 KB. New fields past it are counted in the
/// endpoint's "(other fields)", so no HAT can make an item that other HATs write too large.
pub const MAX_FIELDS_PER_SHARD_ITEM: usize = 500;

// ---- names and the caps of one report ----------------------------------------------------

/// `<namespace>/<endpoint>`: a namespace of 1 to 64 bytes of `[A-Za-z0-9_.-]`.
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// An endpoint of 1 to 128 bytes of `[A-Za-z0-9_.-/]` (HAT endpoints are paths).
pub const MAX_ENDPOINT_BYTES: usize = 128;
/// A field path of 1 to 128 bytes, no control characters.
pub const MAX_FIELD_BYTES: usize = 128;
/// Distinct namespaces, endpoints and field names one report may bring; items past a cap are
/// skipped. A HAT's report covers the activity of a few minutes, usually a handful of
/// endpoints; the caps are far above that and bound what one report adds to public reads.
pub const MAX_NAMESPACES_PER_REPORT: usize = 32;
pub const MAX_ENDPOINTS_PER_REPORT: usize = 128;
pub const MAX_FIELDS_PER_REPORT: usize = 2_000;

// The derived figures stay within DynamoDB's limits; checked when the crate compiles.
const _: () = {
    assert!(MAX_MARKERS_PER_ACTION == 98);
    assert!(5 + 3 * MAX_MARKERS_PER_ACTION - 1 <= EXPRESSION_OPERATORS);
    assert!(5 + 3 * (MAX_MARKERS_PER_ACTION + 1) - 1 > EXPRESSION_OPERATORS);
    assert!(4 + 2 * MAX_FIELDS_PER_ACTION <= EXPRESSION_OPERATORS);
    assert!(MAX_MARKERS_PER_BUCKET * 22 + 2048 < ITEM_BYTES);
    assert!(MAX_FIELDS_PER_SHARD_ITEM * (2 * MAX_FIELD_BYTES + 16) + 4096 < ITEM_BYTES);
    // The description and field sort keys: namespace, `/`, endpoint.
    assert!(MAX_NAMESPACE_BYTES + 1 + MAX_ENDPOINT_BYTES < SORT_KEY_BYTES);
    assert!(MAX_FIELDS_PER_ACTION < MAX_FIELDS_PER_SHARD_ITEM);
};
