//! DEX's adapters: its ports on DynamoDB, Secrets Manager and (reqwest) the outbound HTTP
//! to HATs.

pub mod dynamo;
pub mod hat_http;
pub mod secrets_manager;

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use dex::error::DexError;

/// The longest one DynamoDB or Secrets Manager call (its retries included) may take: a
/// dependency that accepts connections but never answers costs a request this much, then a
/// 503, well inside the functions' 29 s timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The SDK's own default connect timeout, restated since the timeouts are set here.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The AWS SDK configuration from the standard environment (region, credentials, the
/// `AWS_ENDPOINT_URL_*` overrides used locally), built without a network round trip.
/// When the region and the credentials are in the environment, as they always are on
/// Lambda, they are taken as given: `aws_config::load_from_env` would otherwise build every
/// provider chain (profile, web identity, ECS, IMDS clients; ~10 ms of a function's init),
/// and its region chain may ask IMDS. Otherwise (an operator's machine), the full chains.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        loader = loader.region(aws_config::Region::new(region));
    }
    if env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader.load().await
}

/// The DynamoDB and Secrets Manager clients on [`sdk_config`], each call bounded by
/// [`OPERATION_TIMEOUT`]. Creating a client opens no connection: the first request does (or
/// the warm-up a function starts at init).
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_secretsmanager::Client) {
    let aws = sdk_config().await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    (
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&aws)
                .timeout_config(timeouts.clone())
                .build(),
        ),
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&aws)
                .timeout_config(timeouts)
                .build(),
        ),
    )
}

/// A failure to reach `service` at all, or in time (no connection, a timeout, a dropped
/// answer, or its own 5xx): a 503 the client may retry. The detail goes to the log only.
/// `None` for every other failure.
pub(crate) fn unavailable<E>(service: &str, err: &SdkError<E, HttpResponse>) -> Option<DexError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let down = match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.raw().status().is_server_error(),
        _ => false,
    };
    down.then(|| {
        tracing::warn!(service, error = %DisplayErrorContext(err), "dependency unavailable");
        DexError::Unavailable(format!(
            "{service} cannot be reached right now; retry shortly"
        ))
    })
}
