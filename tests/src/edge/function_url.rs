//! The Lambda function URL in front of the function: the request CloudFront sends to it becomes
//! a function-URL event (payload format 2.0) posted to the runtime emulator's invoke endpoint,
//! and the function's JSON answer becomes an HTTP response again.
//!
//! Building the event here (rather than going through the emulator's own function-URL route)
//! is what lets the harness set what only AWS sets: `requestContext.http.sourceIp` (the edge's
//! own address, as CloudFront's origin-facing servers) and `requestContext.authorizer.iam`
//! (present when the function URL's AWS_IAM auth accepted a SigV4-signed request, i.e. OAC).

use super::cache::Stored;
use anyhow::Context;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// The host name of the (pretend) function URL, as Lambda writes it into the event.
pub const FUNCTION_URL_HOST: &str = "edgeharness0123456789.lambda-url.us-east-1.on.aws";

/// One origin request as it reaches the function URL.
#[derive(Debug, Clone)]
pub struct OriginRequest {
    pub method: String,
    pub raw_path: String,
    pub raw_query: String,
    /// Lower-case names, in order; repeated names are joined with `,` as Lambda does.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The address the function URL saw the request come from.
    pub source_ip: IpAddr,
    /// The function URL's IAM auth accepted the request (origin access control).
    pub iam: bool,
}

/// The function-URL event Lambda would hand the function for `req`.
pub fn event(req: &OriginRequest) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().into())));
            continue;
        }
        match headers.get_mut(name) {
            Some(Value::String(v)) => {
                v.push(',');
                v.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    headers.insert("host".into(), Value::String(FUNCTION_URL_HOST.into()));
    let mut query = Map::new();
    for (k, v) in url::form_urlencoded::parse(req.raw_query.as_bytes()) {
        query.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (body, base64) = match std::str::from_utf8(&req.body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&req.body),
            true,
        ),
    };
    let mut context = json!({
        "accountId": if req.iam { "123456789012" } else { "anonymous" },
        "apiId": "edgeharness0123456789",
        "domainName": FUNCTION_URL_HOST,
        "domainPrefix": "edgeharness0123456789",
        "http": {
            "method": req.method,
            "path": req.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": req.source_ip.to_string(),
            "userAgent": "Amazon CloudFront",
        },
        "requestId": format!("edge-{}", now.as_nanos()),
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Jan/2026:00:00:00 +0000",
        "timeEpoch": now.as_millis() as u64,
    });
    if req.iam {
        // What Lambda fills in for a SigV4-signed request to an AWS_IAM function URL; with
        // origin access control the caller is CloudFront's service principal.
        context["authorizer"] = json!({
            "iam": {
                "accessKey": "ASIAEDGEHARNESS00000",
                "accountId": "123456789012",
                "callerId": "AROAEDGEHARNESS00000:cloudfront",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": "arn:aws:sts::123456789012:assumed-role/cloudfront/edge",
                "userId": "AROAEDGEHARNESS00000:cloudfront",
            }
        });
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !req.body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// The HTTP response Lambda makes of the function's answer.
pub fn response(answer: &Value) -> anyhow::Result<Stored> {
    let status = answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .with_context(|| format!("no statusCode in the function's answer: {answer}"))?
        as u16;
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = answer.get("headers") {
        for (k, v) in h {
            headers.push((
                k.to_ascii_lowercase(),
                v.as_str().unwrap_or_default().into(),
            ));
        }
    }
    if let Some(Value::Object(h)) = answer.get("multiValueHeaders") {
        for (k, vs) in h {
            let k = k.to_ascii_lowercase();
            if headers.iter().any(|(n, _)| *n == k) {
                continue;
            }
            for v in vs.as_array().into_iter().flatten() {
                headers.push((k.clone(), v.as_str().unwrap_or_default().into()));
            }
        }
    }
    for c in answer
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        headers.push(("set-cookie".into(), c.as_str().unwrap_or_default().into()));
    }
    let text = answer.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if answer.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .context("the function's base64 body")?
    } else {
        text.as_bytes().to_vec()
    };
    Ok(Stored {
        status,
        headers,
        body,
    })
}

/// Invokes the function under the emulator with `req` (one HTTP round trip).
pub async fn invoke(
    http: &reqwest::Client,
    invoke_url: &str,
    req: &OriginRequest,
) -> anyhow::Result<Stored> {
    let res = http
        .post(invoke_url)
        .json(&event(req))
        .send()
        .await
        .with_context(|| format!("while invoking the function at {invoke_url}"))?;
    let status = res.status();
    let text = res.text().await.context("the invocation's answer")?;
    anyhow::ensure!(
        status.is_success(),
        "the emulator answered {status} to the invocation: {text}"
    );
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("the function's answer is not JSON: {text}"))?;
    response(&answer)
}
