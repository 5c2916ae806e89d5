//! The AWS backends: DynamoDB store and SES mailer, each behind its cargo feature (both on by
//! default; the Lambda package is built with `--no-default-features --features dynamodb,ses`).
//!
//! They live beside the other stores and mailers (`store/dynamo.rs`, `mailer/ses.rs`); this
//! module holds what they share: the SDK configuration.

/// Loads the AWS configuration (credentials from the environment or the Lambda role), with an
/// explicit region and endpoint when given, standard retries and bounded timeouts.
pub async fn sdk_config(endpoint: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(2))
                .operation_attempt_timeout(std::time::Duration::from_secs(4))
                .operation_timeout(std::time::Duration::from_secs(20))
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
