//! The table layout, and its idempotent creation (used by `dexctl init`, `make run` and the
//! tests; the template declares the same layout for AWS).
//!
//! One table, keys `pk`/`sk`, three overloaded GSIs (`gsi1`..`gsi3`), TTL on `expiresAt`;
//! the key shapes are listed once, in `keys`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use dex::error::DexError;

pub const GSIS: [&str; 3] = ["gsi1", "gsi2", "gsi3"];
pub const TTL_ATTRIBUTE: &str = "expiresAt";

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("static key schema")
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("static attribute definition")
}

/// Creates the table if it does not exist and waits until it is active. Returns whether it
/// created it.
pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, DexError> {
    if let Ok(out) = client.describe_table().table_name(table).send().await {
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(false);
        }
    } else {
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(string_attr("pk"))
            .attribute_definitions(string_attr("sk"));
        for gsi in GSIS {
            let (pk, sk) = (format!("{gsi}pk"), format!("{gsi}sk"));
            request = request
                .attribute_definitions(string_attr(&pk))
                .attribute_definitions(string_attr(&sk))
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(gsi)
                        .key_schema(key(&pk, KeyType::Hash))
                        .key_schema(key(&sk, KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(DexError::internal)?,
                );
        }
        match request.send().await {
            Ok(_) => {}
            // Someone else created it in the meantime: fine, wait for it below.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => {
                return Err(DexError::internal(
                    aws_sdk_dynamodb::error::DisplayErrorContext(e),
                ));
            }
        }
    }
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| DexError::internal(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTRIBUTE)
                        .build()
                        .map_err(DexError::internal)?,
                )
                .send()
                .await
                .ok(); // already enabled is an error on some versions; the setting is what matters
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(DexError::internal(format!(
        "table {table} did not become active"
    )))
}
