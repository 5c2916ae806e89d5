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

/// The `endpoint=URL&region=REGION` options of a store or bucket setting (`dynamodb:TABLE?…`,
/// `--log-bucket BUCKET?…`); `what` names the setting in the error for any other option.
pub fn endpoint_options(
    query: &str,
    what: &str,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    let (mut endpoint, mut region) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "endpoint" => endpoint = Some(v.into_owned()),
            "region" => region = Some(v.into_owned()),
            other => {
                anyhow::bail!("unknown option {other:?} in {what}: expected endpoint= or region=")
            }
        }
    }
    Ok((endpoint, region))
}
