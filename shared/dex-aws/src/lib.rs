//! DEX's adapters: its ports on DynamoDB, Secrets Manager and (reqwest) the outbound HTTP
//! to HATs.

pub mod dynamo;
pub mod hat_http;
pub mod secrets_manager;

/// The AWS clients, from the standard environment (region, credentials, and the
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` overrides used locally).
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_secretsmanager::Client) {
    let aws = aws_config::load_from_env().await;
    (
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_secretsmanager::Client::new(&aws),
    )
}
