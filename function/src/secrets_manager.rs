//! Secrets from AWS Secrets Manager, read once at cold start, so that the Lambda environment
//! holds only their ARNs (`CAHIER_PEPPER_ARN`, ...) and the function's role may read exactly
//! those secrets. The values then go through [`Secrets::load`] like environment values.
//!
//! The endpoint is the SDK's: `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` point it
//! at a local Secrets Manager-compatible server in tests.

use crate::secrets::{Secrets, SECRET_VARIABLES};
use anyhow::Context;
use std::collections::HashMap;

/// Resolves every `NAME_ARN` of `env` to its secret string, as `NAME → value`.
pub async fn resolve_arns(
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<HashMap<String, String>> {
    let wanted: Vec<(&str, String)> = SECRET_VARIABLES
        .iter()
        .filter_map(|name| {
            env(&format!("{name}_ARN"))
                .filter(|arn| !arn.trim().is_empty())
                .map(|arn| (*name, arn.trim().to_string()))
        })
        .collect();
    let mut values = HashMap::new();
    if wanted.is_empty() {
        return Ok(values);
    }
    let config = crate::aws::sdk_config(None, None).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    for (name, arn) in wanted {
        let out = client
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            // The ARN names the secret, never its value: safe in the error.
            .with_context(|| format!("while reading {name} from Secrets Manager ({arn})"))?;
        let value = out
            .secret_string()
            .with_context(|| format!("the secret {arn} ({name}) has no string value"))?;
        values.insert(name.to_string(), value.trim().to_string());
    }
    Ok(values)
}

/// The function's secrets: Secrets Manager for every `NAME_ARN` that is set, then the
/// environment (and `CAHIER_SECRETS_FILE`) for the rest.
pub async fn load(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> anyhow::Result<Secrets> {
    let resolved = resolve_arns(env).await?;
    let file = env("CAHIER_SECRETS_FILE").map(std::path::PathBuf::from);
    Secrets::load(file.as_deref(), &|k| {
        resolved.get(k).cloned().or_else(|| env(k))
    })
}
