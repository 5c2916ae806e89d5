//! What `deploy/aws/template.yaml` tells CloudFront to do, read from the template itself so that
//! the edge harness and the deployment cannot drift apart: the cache behaviors, origins (origin
//! access control, custom origin headers), cache, origin request and response headers policies,
//! custom error responses and the viewer-request function's code.
//!
//! The CloudFormation short tags (`!Ref`, `!If`, `!Sub`, …) parse as YAML tagged values; the
//! conditions (`!Equals`, `!Not`, `!And`, `!Or`) and `!If` are evaluated for the chosen
//! parameters, `!Ref` of a resource names that resource, and what only a deployment knows
//! (`!Sub`, `!GetAtt` of generated names, secret references) is kept as [`Value::Tagged`].

use anyhow::{bail, Context};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// `ApiAuth`: how CloudFront reaches the function URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAuth {
    /// Origin access control (the template's default): SigV4-signed origin requests.
    AwsIam,
    /// A public function URL; the template's secret origin header proves CloudFront.
    None,
}

impl ApiAuth {
    pub fn parameter(self) -> &'static str {
        match self {
            ApiAuth::AwsIam => "AWS_IAM",
            ApiAuth::None => "NONE",
        }
    }
}

/// Managed cache policies the template may name by id.
const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// Which viewer values a policy selects (cache key or origin request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    None,
    All,
    /// Only these (lower-case names for headers).
    Only(Vec<String>),
    AllExcept(Vec<String>),
}

impl Select {
    pub fn includes(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match self {
            Select::None => false,
            Select::All => true,
            Select::Only(v) => v.contains(&name),
            Select::AllExcept(v) => !v.contains(&name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CachePolicy {
    pub min_ttl: u64,
    pub default_ttl: u64,
    pub max_ttl: u64,
    pub headers: Select,
    pub cookies: Select,
    pub query: Select,
}

#[derive(Debug, Clone)]
pub struct OriginRequestPolicy {
    pub headers: Select,
    pub cookies: Select,
    pub query: Select,
}

/// One header a response headers policy sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHeader {
    pub name: String,
    pub value: String,
    /// Replace the origin's value (else only added when the origin sent none).
    pub override_origin: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ResponseHeadersPolicy {
    pub headers: Vec<PolicyHeader>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Origin {
    pub id: String,
    /// An S3 origin (the built site) rather than a custom one (the function URL).
    pub s3: bool,
    /// Requests to it are signed with origin access control.
    pub access_control: bool,
    /// `OriginCustomHeaders`: name and value; `None` when the value is only known to a
    /// deployment (a `!Sub` of a secret): the harness fills in its own secret.
    pub custom_headers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct Behavior {
    /// `None` for the default behavior.
    pub path_pattern: Option<String>,
    pub origin: String,
    pub allowed_methods: Vec<String>,
    pub cached_methods: Vec<String>,
    pub cache: CachePolicy,
    pub origin_request: Option<OriginRequestPolicy>,
    pub response_headers: Option<ResponseHeadersPolicy>,
    /// Code of the viewer-request CloudFront Function, if one is associated.
    pub viewer_request: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ErrorResponse {
    pub error_code: u16,
    pub response_code: Option<u16>,
    pub page_path: Option<String>,
    pub min_ttl: u64,
}

/// The distribution as the template declares it for one set of parameters.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// `CacheBehaviors` in order, then the default behavior.
    pub behaviors: Vec<Behavior>,
    pub origins: BTreeMap<String, Origin>,
    pub error_responses: Vec<ErrorResponse>,
    pub default_root_object: Option<String>,
    /// What the site bucket answers for a missing key: 404 when its policy lets CloudFront
    /// list the bucket (`s3:ListBucket`), else S3's 403.
    pub s3_missing_status: u16,
}

impl Distribution {
    /// Reads `template` with `ApiAuth = api_auth` (other parameters at their defaults).
    pub fn load(template: &Path, api_auth: ApiAuth) -> anyhow::Result<Distribution> {
        let text = std::fs::read_to_string(template)
            .with_context(|| format!("while reading {}", template.display()))?;
        Distribution::parse(&text, api_auth)
            .with_context(|| format!("while reading the distribution of {}", template.display()))
    }

    pub fn parse(text: &str, api_auth: ApiAuth) -> anyhow::Result<Distribution> {
        let doc: Value = serde_yaml::from_str(text).context("the template is not YAML")?;
        let ctx = Resolver::new(&doc, api_auth)?;
        let config = ctx.resolve(
            doc.get("Resources")
                .and_then(|r| r.get("Distribution"))
                .and_then(|d| d.get("Properties"))
                .and_then(|p| p.get("DistributionConfig"))
                .context("no Resources.Distribution.Properties.DistributionConfig")?,
        )?;
        let origins = seq(&config, "Origins")?
            .iter()
            .map(|o| ctx.origin(o))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect();
        let mut behaviors = Vec::new();
        for b in seq(&config, "CacheBehaviors").map_or(&[][..], |v| v.as_slice()) {
            behaviors.push(ctx.behavior(b, true)?);
        }
        behaviors.push(
            ctx.behavior(
                config
                    .get("DefaultCacheBehavior")
                    .context("no DefaultCacheBehavior")?,
                false,
            )?,
        );
        let error_responses = seq(&config, "CustomErrorResponses")
            .map_or(&[][..], |v| v.as_slice())
            .iter()
            .map(|e| {
                Ok(ErrorResponse {
                    error_code: number(e, "ErrorCode")?.context("ErrorCode")? as u16,
                    response_code: number(e, "ResponseCode")?.map(|n| n as u16),
                    page_path: string(e, "ResponsePagePath"),
                    // CloudFront's default error caching is 10 s.
                    min_ttl: number(e, "ErrorCachingMinTTL")?.unwrap_or(10),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let lists = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::S3::BucketPolicy"))
            .any(|(_, r)| {
                serde_yaml::to_string(&r.get("Properties"))
                    .unwrap_or_default()
                    .contains("s3:ListBucket")
            });
        Ok(Distribution {
            s3_missing_status: if lists { 404 } else { 403 },
            behaviors,
            origins,
            error_responses,
            default_root_object: string(&config, "DefaultRootObject"),
        })
    }

    /// The behavior CloudFront picks for `path`: the first matching pattern, else the default.
    pub fn behavior_for(&self, path: &str) -> &Behavior {
        self.behaviors
            .iter()
            .find(|b| b.path_pattern.as_deref().is_none_or(|p| glob(p, path)))
            .expect("the default behavior matches everything")
    }

    /// The custom error response for an origin's `status`, if declared.
    pub fn error_response(&self, status: u16) -> Option<&ErrorResponse> {
        self.error_responses.iter().find(|e| e.error_code == status)
    }
}

/// CloudFront's path patterns: `*` any run of characters (slashes included), `?` exactly one;
/// case-sensitive; a pattern without its leading `/` matches as if it had one.
pub fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let pattern = if pattern.starts_with('/') || pattern.starts_with('*') {
        pattern.to_string()
    } else {
        format!("/{pattern}")
    };
    go(pattern.as_bytes(), path.as_bytes())
}

fn seq<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_sequence)
        .with_context(|| format!("`{key}` is not a list"))
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number(v: &Value, key: &str) -> anyhow::Result<Option<u64>> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_u64()),
        Some(Value::String(s)) => Ok(Some(s.parse().with_context(|| format!("`{key}` = {s:?}"))?)),
        Some(other) => bail!("`{key}` is not a number: {other:?}"),
    }
}

fn boolean(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Evaluates the intrinsic functions CloudFront's settings depend on.
struct Resolver<'a> {
    doc: &'a Value,
    parameters: BTreeMap<String, Value>,
    conditions: BTreeMap<String, bool>,
}

/// What `!Ref` of a resource resolves to here: its logical name, marked.
const RESOURCE: &str = "resource:";

impl<'a> Resolver<'a> {
    fn new(doc: &'a Value, api_auth: ApiAuth) -> anyhow::Result<Resolver<'a>> {
        let mut parameters = BTreeMap::new();
        if let Some(Value::Mapping(m)) = doc.get("Parameters") {
            for (k, v) in m {
                let name = k.as_str().context("parameter name")?.to_string();
                let value = v.get("Default").cloned().unwrap_or(Value::Null);
                parameters.insert(name, value);
            }
        }
        anyhow::ensure!(
            parameters.contains_key("ApiAuth"),
            "the template has no ApiAuth parameter"
        );
        parameters.insert("ApiAuth".into(), Value::String(api_auth.parameter().into()));
        let mut r = Resolver {
            doc,
            parameters,
            conditions: BTreeMap::new(),
        };
        if let Some(Value::Mapping(m)) = doc.get("Conditions") {
            // Conditions may refer to each other: evaluate until all are known.
            let mut pending: Vec<(String, Value)> = m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
                .collect();
            while !pending.is_empty() {
                let before = pending.len();
                let mut later = Vec::new();
                for (name, expr) in pending {
                    match r.condition(&expr) {
                        Ok(b) => {
                            r.conditions.insert(name, b);
                        }
                        Err(_) => later.push((name, expr)),
                    }
                }
                pending = later;
                anyhow::ensure!(
                    pending.len() < before,
                    "conditions that cannot be evaluated: {:?}",
                    pending.iter().map(|p| &p.0).collect::<Vec<_>>()
                );
            }
        }
        Ok(r)
    }

    fn condition(&self, expr: &Value) -> anyhow::Result<bool> {
        let (tag, arg) = intrinsic(expr).context("a condition must be an intrinsic function")?;
        let list = || arg.as_sequence().context("a list of conditions");
        Ok(match tag.as_str() {
            "Equals" => {
                let v = list()?;
                anyhow::ensure!(v.len() == 2, "!Equals takes two values");
                self.resolve(&v[0])? == self.resolve(&v[1])?
            }
            "Not" => !self.condition(list()?.first().context("!Not of nothing")?)?,
            "And" => list()?
                .iter()
                .map(|c| self.condition(c))
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .all(|b| b),
            "Or" => list()?
                .iter()
                .map(|c| self.condition(c))
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .any(|b| b),
            "Condition" => *self
                .conditions
                .get(arg.as_str().context("condition name")?)
                .context("condition not evaluated yet")?,
            other => bail!("!{other} is not a condition function"),
        })
    }

    /// `v` with `!Ref`/`!If`/`AWS::NoValue` evaluated; other intrinsics kept as tagged values.
    /// `None` stands for `AWS::NoValue` (the key or item is dropped).
    fn resolve_opt(&self, v: &Value) -> anyhow::Result<Option<Value>> {
        if let Some((tag, arg)) = intrinsic(v) {
            return match tag.as_str() {
                "Ref" => {
                    let name = arg.as_str().context("!Ref of a name")?;
                    if name == "AWS::NoValue" {
                        Ok(None)
                    } else if let Some(p) = self.parameters.get(name) {
                        Ok(Some(p.clone()))
                    } else if self.resource(name).is_some() {
                        Ok(Some(Value::String(format!("{RESOURCE}{name}"))))
                    } else {
                        // Pseudo parameters (AWS::StackName, …): only a deployment knows.
                        Ok(Some(v.clone()))
                    }
                }
                "If" => {
                    let a = arg.as_sequence().context("!If takes a list")?;
                    anyhow::ensure!(a.len() == 3, "!If takes [condition, then, else]");
                    let name = a[0].as_str().context("!If's condition name")?;
                    let yes = *self
                        .conditions
                        .get(name)
                        .with_context(|| format!("unknown condition {name}"))?;
                    self.resolve_opt(&a[if yes { 1 } else { 2 }])
                }
                "GetAtt" => {
                    // `Resource.Attribute`: the resource's name is what the harness needs.
                    let target = match arg {
                        Value::String(s) => s.split('.').next().unwrap_or_default().to_string(),
                        Value::Sequence(v) => {
                            v.first().and_then(Value::as_str).unwrap_or_default().into()
                        }
                        _ => bail!("!GetAtt of {arg:?}"),
                    };
                    Ok(Some(Value::Tagged(Box::new(TaggedValue {
                        tag: Tag::new("GetAtt"),
                        value: Value::String(target),
                    }))))
                }
                _ => Ok(Some(v.clone())),
            };
        }
        Ok(Some(match v {
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, v) in m {
                    if let Some(v) = self.resolve_opt(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Mapping(out)
            }
            Value::Sequence(s) => Value::Sequence(
                s.iter()
                    .map(|v| self.resolve_opt(v))
                    .collect::<anyhow::Result<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
            other => other.clone(),
        }))
    }

    fn resolve(&self, v: &Value) -> anyhow::Result<Value> {
        Ok(self.resolve_opt(v)?.unwrap_or(Value::Null))
    }

    fn resource(&self, name: &str) -> Option<&'a Value> {
        self.doc.get("Resources")?.get(name)
    }

    /// The resolved `Properties.<config>` of the resource a `!Ref`/`!GetAtt` names.
    fn referenced(&self, r: &Value, config: &str) -> anyhow::Result<Option<Value>> {
        let name = match r {
            Value::String(s) if s.starts_with(RESOURCE) => s[RESOURCE.len()..].to_string(),
            Value::Tagged(t) if t.tag == "GetAtt" => {
                t.value.as_str().unwrap_or_default().to_string()
            }
            _ => return Ok(None),
        };
        let res = self
            .resource(&name)
            .with_context(|| format!("no resource {name}"))?;
        let props = res
            .get("Properties")
            .and_then(|p| p.get(config))
            .with_context(|| format!("{name} has no Properties.{config}"))?;
        Ok(Some(self.resolve(props)?))
    }

    fn origin(&self, o: &Value) -> anyhow::Result<Origin> {
        let id = string(o, "Id").context("an origin without Id")?;
        let custom_headers = match o.get("OriginCustomHeaders") {
            Some(Value::Sequence(v)) => v
                .iter()
                .map(|h| {
                    Ok((
                        string(h, "HeaderName").context("HeaderName")?,
                        h.get("HeaderValue")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Origin {
            s3: o.get("S3OriginConfig").is_some(),
            access_control: o.get("OriginAccessControlId").is_some_and(|v| !v.is_null()),
            custom_headers,
            id,
        })
    }

    fn behavior(&self, b: &Value, has_pattern: bool) -> anyhow::Result<Behavior> {
        let path_pattern = if has_pattern {
            Some(string(b, "PathPattern").context("a cache behavior without PathPattern")?)
        } else {
            None
        };
        let methods = |key: &str| -> Vec<String> {
            b.get(key)
                .and_then(Value::as_sequence)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_else(|| vec!["GET".into(), "HEAD".into()])
        };
        let cache_id = b.get("CachePolicyId").context("CachePolicyId")?;
        let cache = match cache_id.as_str() {
            Some(CACHING_OPTIMIZED) => CachePolicy {
                min_ttl: 1,
                default_ttl: 86_400,
                max_ttl: 31_536_000,
                headers: Select::None,
                cookies: Select::None,
                query: Select::None,
            },
            Some(CACHING_DISABLED) => CachePolicy {
                min_ttl: 0,
                default_ttl: 0,
                max_ttl: 0,
                headers: Select::None,
                cookies: Select::None,
                query: Select::None,
            },
            _ => {
                let c = self
                    .referenced(cache_id, "CachePolicyConfig")?
                    .with_context(|| format!("unknown cache policy {cache_id:?}"))?;
                let key = c
                    .get("ParametersInCacheKeyAndForwardedToOrigin")
                    .context("ParametersInCacheKeyAndForwardedToOrigin")?;
                CachePolicy {
                    min_ttl: number(&c, "MinTTL")?.unwrap_or(0),
                    default_ttl: number(&c, "DefaultTTL")?.unwrap_or(86_400),
                    max_ttl: number(&c, "MaxTTL")?.unwrap_or(31_536_000),
                    headers: select(key.get("HeadersConfig"), "Header", true)?,
                    cookies: select(key.get("CookiesConfig"), "Cookie", false)?,
                    query: select(key.get("QueryStringsConfig"), "QueryString", false)?,
                }
            }
        };
        let origin_request = match b.get("OriginRequestPolicyId") {
            None => None,
            Some(id) => {
                let c = self
                    .referenced(id, "OriginRequestPolicyConfig")?
                    .with_context(|| format!("unknown origin request policy {id:?}"))?;
                Some(OriginRequestPolicy {
                    headers: select(c.get("HeadersConfig"), "Header", true)?,
                    cookies: select(c.get("CookiesConfig"), "Cookie", false)?,
                    query: select(c.get("QueryStringsConfig"), "QueryString", false)?,
                })
            }
        };
        let response_headers = match b.get("ResponseHeadersPolicyId") {
            None => None,
            Some(id) => Some(response_headers(
                &self
                    .referenced(id, "ResponseHeadersPolicyConfig")?
                    .with_context(|| format!("unknown response headers policy {id:?}"))?,
            )?),
        };
        let mut viewer_request = None;
        for f in b
            .get("FunctionAssociations")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if string(f, "EventType").as_deref() == Some("viewer-request") {
                let code = self
                    .referenced(f.get("FunctionARN").context("FunctionARN")?, "FunctionCode")?
                    .context("a viewer-request function that is not in the template")?;
                viewer_request = Some(code.as_str().context("FunctionCode text")?.to_string());
            } else {
                bail!("the harness plays viewer-request functions only, not {f:?}");
            }
        }
        Ok(Behavior {
            path_pattern,
            origin: string(b, "TargetOriginId").context("TargetOriginId")?,
            allowed_methods: methods("AllowedMethods"),
            cached_methods: methods("CachedMethods"),
            cache,
            origin_request,
            response_headers,
            viewer_request,
        })
    }
}

/// A `(short tag | Fn::X | Ref) → argument` view of an intrinsic function.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            if k == "Ref" || k == "Condition" {
                Some((k.to_string(), arg))
            } else {
                k.strip_prefix("Fn::").map(|f| (f.to_string(), arg))
            }
        }
        _ => None,
    }
}

/// `HeadersConfig` / `CookiesConfig` / `QueryStringsConfig` of a policy.
fn select(config: Option<&Value>, kind: &str, lower: bool) -> anyhow::Result<Select> {
    let Some(c) = config else {
        return Ok(Select::None);
    };
    let behavior = string(c, &format!("{kind}Behavior")).unwrap_or_else(|| "none".into());
    let names = || -> Vec<String> {
        c.get(format!("{kind}s"))
            .and_then(|v| v.as_sequence())
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(|s| {
                        if lower {
                            s.to_ascii_lowercase()
                        } else {
                            s.to_string()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(match behavior.as_str() {
        "none" => Select::None,
        "all" | "allViewer" => Select::All,
        "whitelist" => Select::Only(names()),
        "allExcept" => Select::AllExcept(names()),
        other => bail!("{kind}Behavior {other:?} is not played by the harness"),
    })
}

/// The headers a response headers policy sets, with CloudFront's spelling of each value.
fn response_headers(c: &Value) -> anyhow::Result<ResponseHeadersPolicy> {
    let mut p = ResponseHeadersPolicy::default();
    let mut add = |name: &str, value: String, item: &Value| {
        p.headers.push(PolicyHeader {
            name: name.to_ascii_lowercase(),
            value,
            override_origin: boolean(item, "Override"),
        })
    };
    if let Some(s) = c.get("SecurityHeadersConfig") {
        if let Some(h) = s.get("StrictTransportSecurity") {
            let mut v = format!(
                "max-age={}",
                number(h, "AccessControlMaxAgeSec")?.context("AccessControlMaxAgeSec")?
            );
            if boolean(h, "IncludeSubdomains") {
                v.push_str("; includeSubDomains");
            }
            if boolean(h, "Preload") {
                v.push_str("; preload");
            }
            add("Strict-Transport-Security", v, h);
        }
        if let Some(h) = s.get("ContentTypeOptions") {
            add("X-Content-Type-Options", "nosniff".into(), h);
        }
        if let Some(h) = s.get("FrameOptions") {
            add(
                "X-Frame-Options",
                string(h, "FrameOption").context("FrameOption")?,
                h,
            );
        }
        if let Some(h) = s.get("ReferrerPolicy") {
            add(
                "Referrer-Policy",
                string(h, "ReferrerPolicy").context("ReferrerPolicy")?,
                h,
            );
        }
        if let Some(h) = s.get("ContentSecurityPolicy") {
            add(
                "Content-Security-Policy",
                string(h, "ContentSecurityPolicy")
                    .context("ContentSecurityPolicy")?
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                h,
            );
        }
        if let Some(h) = s.get("XSSProtection") {
            let mut v = if boolean(h, "Protection") { "1" } else { "0" }.to_string();
            if boolean(h, "ModeBlock") {
                v.push_str("; mode=block");
            }
            add("X-XSS-Protection", v, h);
        }
    }
    if let Some(items) = c
        .get("CustomHeadersConfig")
        .and_then(|c| c.get("Items"))
        .and_then(Value::as_sequence)
    {
        for h in items {
            add(
                &string(h, "Header").context("Header")?,
                string(h, "Value").context("Value")?,
                h,
            );
        }
    }
    if c.get("CorsConfig").is_some() {
        bail!("the harness does not play CorsConfig in response headers policies yet");
    }
    if let Some(items) = c
        .get("RemoveHeadersConfig")
        .and_then(|c| c.get("Items"))
        .and_then(Value::as_sequence)
    {
        p.remove = items
            .iter()
            .filter_map(|h| string(h, "Header"))
            .map(|h| h.to_ascii_lowercase())
            .collect();
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_as_cloudfront() {
        assert!(glob("/api/*", "/api/petitions/x/count"));
        assert!(!glob("/api/*", "/apix"));
        assert!(glob("*/embed/*", "/en/x/embed/"));
        assert!(glob("*/embed/*", "/x/embed/index.html"));
        assert!(!glob("*/embed/*", "/x/embedded"));
        assert!(glob("a?c", "/abc"));
    }

    #[test]
    fn the_repository_template_reads_for_both_api_auths() {
        let path = crate::repo_root().join("deploy/aws/template.yaml");
        let iam = Distribution::load(&path, ApiAuth::AwsIam).unwrap();
        let none = Distribution::load(&path, ApiAuth::None).unwrap();
        assert!(iam.origins["api"].access_control);
        assert!(!none.origins["api"].access_control);
        assert!(!iam.origins["api"].s3 && iam.origins["site"].s3);
        let api = iam.behavior_for("/api/petitions/x/count");
        assert_eq!(api.origin, "api");
        assert!(api.origin_request.is_some());
        assert_eq!(iam.behavior_for("/x/").origin, "site");
        assert!(iam.behavior_for("/x/").viewer_request.is_some());
    }
}
