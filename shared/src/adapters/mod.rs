//! The adapters of the ports on AWS and the network: DynamoDB, Secrets Manager, and the
//! outbound HTTP to HATs.

pub mod dynamo;
pub mod hat_http;
pub mod secrets_manager;
