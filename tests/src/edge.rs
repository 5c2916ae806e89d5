//! The edge harness: a small reverse proxy on loopback that does what `deploy/aws/template.yaml`
//! configures CloudFront to do, read from the template itself ([`template`]), in front of the
//! built site (as the S3 bucket) and the real `cahier-function` under the Lambda runtime
//! emulator (as the function URL, [`function_url`]).
//!
//! Played: cache behaviors by path pattern, allowed and cached methods; the viewer-request
//! function (`IndexRewrite`, whose code is checked against [`index_rewrite`] by a test); the
//! origin request policy (only its headers, cookies and query strings reach the function, plus
//! `CloudFront-Viewer-Address` from the real client socket when the policy names it, and
//! `X-Forwarded-For` as CloudFront appends it); the function URL sees the edge's own address as
//! `sourceIp`; origin access control (a POST whose `x-amz-content-sha256` is missing or is not
//! the body's SHA-256 gets the function URL's 403; a signed one reaches the function with
//! `requestContext.authorizer.iam`); custom origin headers (with `ApiAuth=NONE`); the cache
//! policies (key, TTLs from `Cache-Control`; percent-encoded spellings are distinct keys); the
//! custom error responses; the response headers policies. S3 answers 403 for a missing key (no
//! `s3:ListBucket` for CloudFront), as the real bucket does.
//!
//! Not played (only a real account can show them): WAF rules, TLS, compression, HTTP/2 and 3,
//! several edge locations each with its own cache, SigV4 itself.

pub mod cache;
pub mod function_url;
pub mod stack;
pub mod template;
pub mod theme_client;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use cache::{EdgeCache, Stored};
use function_url::OriginRequest;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use template::{ApiAuth, Behavior, Distribution, Origin, Select};

/// The address the function sees requests come from: one of CloudFront's origin-facing servers.
pub const EDGE_SOURCE_IP: &str = "127.0.0.254";

/// Largest body the harness forwards (CloudFront's own limit is far above the API's 8 KiB).
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct EdgeOptions {
    pub template: PathBuf,
    pub api_auth: ApiAuth,
    /// The built site (`public/`), playing the S3 bucket when `bucket` is None.
    pub site_dir: PathBuf,
    /// A real bucket (moto's S3) holding the site, read as CloudFront reads the site origin:
    /// each object with the `Content-Type` and `Cache-Control` it was stored with.
    pub bucket: Option<SiteBucket>,
    /// The emulator's invoke endpoint, `http://127.0.0.1:PORT/2015-03-31/functions/_/invocations`.
    pub invoke_url: String,
    /// The value of the template's custom origin headers whose value only a deployment knows
    /// (the secret origin header of `ApiAuth=NONE`).
    pub origin_secret: Option<String>,
    /// `sourceIp` of every request to the function.
    pub source_ip: IpAddr,
}

/// A bucket on an S3-compatible endpoint (moto's), read with the test credentials as
/// CloudFront reads the bucket through origin access control.
#[derive(Debug, Clone)]
pub struct SiteBucket {
    pub endpoint: String,
    pub name: String,
}

/// One request the edge sent to an origin (a cache miss or an uncached method).
#[derive(Debug, Clone)]
pub struct OriginHit {
    pub origin: String,
    pub method: String,
    /// The cache key the request was made for (empty for methods that are not cached).
    pub cache_key: String,
    pub path: String,
    pub status: u16,
    /// Whether the function ran (false when the function URL refused the request itself).
    pub invoked: bool,
    pub at: Instant,
}

struct Inner {
    dist: Distribution,
    opts: EdgeOptions,
    cache: EdgeCache,
    http: reqwest::Client,
    hits: Mutex<Vec<OriginHit>>,
    /// One lock per cache key being fetched: concurrent misses of one key wait for the first
    /// (CloudFront's request collapsing) instead of all reaching the origin.
    inflight: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A running edge; stops when dropped.
pub struct Edge {
    /// `http://127.0.0.1:PORT`: what a browser or client calls, the distribution's address.
    pub base: String,
    pub dist: Distribution,
    inner: Arc<Inner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Edge {
    /// Serves the distribution described by `opts.template` on `listener`.
    pub fn start(listener: std::net::TcpListener, opts: EdgeOptions) -> anyhow::Result<Edge> {
        let dist = Distribution::load(&opts.template, opts.api_auth)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let inner = Arc::new(Inner {
            dist: dist.clone(),
            opts,
            cache: EdgeCache::default(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            hits: Mutex::new(Vec::new()),
            inflight: Mutex::new(std::collections::HashMap::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Edge {
            base: format!("http://{addr}"),
            dist,
            inner,
            stop: Some(stop),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every origin request so far, oldest first.
    pub fn origin_hits(&self) -> Vec<OriginHit> {
        self.inner.hits.lock().expect("hits lock").clone()
    }

    /// The requests that reached the function itself.
    pub fn invocations(&self) -> Vec<OriginHit> {
        self.origin_hits()
            .into_iter()
            .filter(|h| h.invoked)
            .collect()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What the template's `IndexRewrite` viewer-request function does to a URI.
pub fn index_rewrite(uri: &str) -> String {
    if uri.ends_with('/') {
        format!("{uri}index.html")
    } else if !uri.rsplit('/').next().unwrap_or_default().contains('.') {
        format!("{uri}/index.html")
    } else {
        uri.to_string()
    }
}

/// Lowercase hex SHA-256 of `body`: the `x-amz-content-sha256` a signed POST carries.
pub fn content_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// `%XX` decoding, as S3 reads an object key from the request path.
fn percent_decode(path: &str) -> Vec<u8> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(digits, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn plain(status: u16, content_type: &str, body: &str) -> Stored {
    Stored {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    }
}

async fn handle(
    State(edge): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => return into_response(plain(413, "text/plain", "body too large"), false),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let behavior = edge.dist.behavior_for(&path).clone();
    let method = parts.method.as_str().to_string();
    if !behavior.allowed_methods.contains(&method) {
        return finish(
            &behavior,
            plain(403, "text/plain", "method not allowed"),
            false,
        );
    }
    let uri = match &behavior.viewer_request {
        Some(_) => index_rewrite(&path),
        None => path.clone(),
    };
    let cached = behavior.cached_methods.contains(&method);
    let key = if cached {
        cache_key(&behavior, &uri, &query, &parts.headers)
    } else {
        String::new()
    };
    let collapse = cached.then(|| {
        edge.inflight
            .lock()
            .expect("inflight lock")
            .entry(key.clone())
            .or_default()
            .clone()
    });
    let _fetching = match &collapse {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    if cached {
        if let Some(hit) = edge.cache.get(&key) {
            return finish(&behavior, hit, true);
        }
    }
    let origin = edge
        .dist
        .origins
        .get(&behavior.origin)
        .expect("the template's behaviors name its origins")
        .clone();
    let (mut response, invoked) = if origin.s3 {
        (site_get(&edge, &uri, &method).await, false)
    } else {
        let request = origin_request(
            &edge,
            &behavior,
            &origin,
            &parts.method,
            &uri,
            &query,
            &parts.headers,
            body,
            peer,
        );
        match request {
            Err(refusal) => (refusal, false),
            Ok(req) => match function_url::invoke(&edge.http, &edge.opts.invoke_url, &req).await {
                Ok(r) => (r, true),
                Err(e) => (
                    plain(502, "text/plain", &format!("origin error: {e:#}")),
                    false,
                ),
            },
        }
    };
    edge.hits.lock().expect("hits lock").push(OriginHit {
        origin: origin.id.clone(),
        method: method.clone(),
        cache_key: key.clone(),
        path: path.clone(),
        status: response.status,
        invoked,
        at: Instant::now(),
    });
    let error = edge.dist.error_response(response.status).cloned();
    if let Some(e) = &error {
        if let Some(page) = &e.page_path {
            let page = site_get(&edge, page, "GET").await;
            if page.status == 200 {
                response = Stored {
                    status: e.response_code.unwrap_or(response.status),
                    ..page
                };
            }
        }
    }
    if cached {
        let ttl = cache::ttl(
            &behavior.cache,
            response.status,
            header(&response.headers, "cache-control"),
            error.map(|e| e.min_ttl),
        );
        edge.cache.put(key, ttl, response.clone());
    }
    finish(&behavior, response, false)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The cache key of a request under the behavior's cache policy.
fn cache_key(behavior: &Behavior, uri: &str, query: &str, headers: &HeaderMap) -> String {
    let policy = &behavior.cache;
    let mut key = format!(
        "{}|{uri}",
        behavior.path_pattern.as_deref().unwrap_or("default")
    );
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            policy
                .query
                .includes(p.split('=').next().unwrap_or_default())
        })
        .collect();
    pairs.sort_unstable();
    key.push('?');
    key.push_str(&pairs.join("&"));
    let mut names: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| policy.headers.includes(k))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let values: Vec<&str> = headers
            .get_all(&name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        key.push_str(&format!("|{name}={}", values.join(",")));
    }
    if !matches!(policy.cookies, Select::None) {
        if let Some(c) = headers.get("cookie").and_then(|v| v.to_str().ok()) {
            key.push_str(&format!("|cookie={c}"));
        }
    }
    key
}

/// The site origin: the real bucket when the edge has one, else the folder.
async fn site_get(edge: &Inner, uri: &str, method: &str) -> Stored {
    match &edge.opts.bucket {
        Some(bucket) => bucket_get(edge, bucket, uri, method).await,
        None => s3_get(edge, uri, method),
    }
}

fn denied() -> Stored {
    plain(
        403,
        "application/xml",
        "<Error><Code>AccessDenied</Code></Error>",
    )
}

/// The object at the (percent-decoded) key of a real bucket, with its stored `Content-Type`
/// and `Cache-Control`; a missing key as the bucket policy makes it (404 with `s3:ListBucket`,
/// else 403).
async fn bucket_get(edge: &Inner, bucket: &SiteBucket, uri: &str, method: &str) -> Stored {
    if method != "GET" && method != "HEAD" {
        return denied();
    }
    let Ok(key) = String::from_utf8(percent_decode(uri.trim_start_matches('/'))) else {
        return denied();
    };
    let key = if key.is_empty() {
        edge.dist.default_root_object.clone().unwrap_or_default()
    } else {
        key
    };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&bucket.endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "edge",
            ))
            .force_path_style(true)
            .build(),
    );
    let out = match s3.get_object().bucket(&bucket.name).key(&key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            return if edge.dist.s3_missing_status == 404 {
                plain(
                    404,
                    "application/xml",
                    "<Error><Code>NoSuchKey</Code></Error>",
                )
            } else {
                denied()
            };
        }
        Err(e) => return plain(502, "text/plain", &format!("bucket error: {e}")),
    };
    let headers: Vec<(String, String)> = [
        ("content-type", out.content_type()),
        ("cache-control", out.cache_control()),
        ("etag", out.e_tag()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
    .collect();
    match out.body.collect().await {
        Ok(body) => Stored {
            status: 200,
            headers,
            body: body.to_vec(),
        },
        Err(e) => plain(502, "text/plain", &format!("bucket error: {e}")),
    }
}

/// The site folder playing the bucket: the object at the (percent-decoded) key, or S3's 403
/// for a missing key.
fn s3_get(edge: &Inner, uri: &str, method: &str) -> Stored {
    if method != "GET" && method != "HEAD" {
        return plain(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        );
    }
    let decoded = percent_decode(uri.trim_start_matches('/'));
    let Ok(key) = String::from_utf8(decoded) else {
        return plain(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        );
    };
    let key = if key.is_empty() {
        edge.dist.default_root_object.clone().unwrap_or_default()
    } else {
        key
    };
    if key.split('/').any(|s| s == ".." || s == ".") {
        return plain(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        );
    }
    let file = edge.opts.site_dir.join(&key);
    match std::fs::read(&file) {
        Ok(body) if file.is_file() => Stored {
            status: 200,
            headers: vec![("content-type".into(), content_type(&key).into())],
            body,
        },
        _ if edge.dist.s3_missing_status == 404 => plain(
            404,
            "application/xml",
            "<Error><Code>NoSuchKey</Code></Error>",
        ),
        _ => plain(
            403,
            "application/xml",
            "<Error><Code>AccessDenied</Code></Error>",
        ),
    }
}

/// Content types as `aws s3 sync` guesses them from the extension.
pub fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "txt" => "text/plain",
        "woff2" => "font/woff2",
        _ => "binary/octet-stream",
    }
}

/// The request CloudFront sends to the function URL, or the function URL's own refusal.
#[allow(clippy::too_many_arguments)]
fn origin_request(
    edge: &Inner,
    behavior: &Behavior,
    origin: &Origin,
    method: &Method,
    uri: &str,
    query: &str,
    viewer: &HeaderMap,
    body: Vec<u8>,
    peer: SocketAddr,
) -> Result<OriginRequest, Stored> {
    let forwards = |name: &str| {
        behavior.cache.headers.includes(name)
            || behavior
                .origin_request
                .as_ref()
                .is_some_and(|p| p.headers.includes(name))
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in viewer {
        let name = name.as_str().to_ascii_lowercase();
        // CloudFront sets its own CloudFront-* headers; a viewer's are never passed on.
        if name.starts_with("cloudfront-") || name == "host" || name == "x-forwarded-for" {
            continue;
        }
        if name == "cookie" {
            let cookies = behavior
                .origin_request
                .as_ref()
                .map_or(Select::None, |p| p.cookies.clone());
            if matches!(cookies, Select::None) {
                continue;
            }
        } else if !forwards(&name) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            headers.push((name, v.to_string()));
        }
    }
    if forwards("cloudfront-viewer-address") {
        headers.push(("cloudfront-viewer-address".into(), viewer_address(peer)));
    }
    // CloudFront appends the viewer's address to whatever X-Forwarded-For the viewer sent.
    let xff = viewer
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| format!("{v}, {}", peer.ip()))
        .unwrap_or_else(|| peer.ip().to_string());
    headers.push(("x-forwarded-for".into(), xff));
    headers.push((
        "via".into(),
        "2.0 edgeharness.cloudfront.net (CloudFront)".into(),
    ));
    headers.push(("x-amz-cf-id".into(), format!("edge-{}", peer.port())));
    headers.push(("x-forwarded-proto".into(), "https".into()));
    for (name, value) in &origin.custom_headers {
        // A dynamic reference (`{{resolve:secretsmanager:...}}`) is resolved by CloudFormation
        // at deploy time: here, the stack's own origin secret stands for it.
        let value = value
            .clone()
            .filter(|v| !v.contains("{{resolve:"))
            .or_else(|| edge.opts.origin_secret.clone());
        if let Some(value) = value {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_ascii_lowercase(), value));
        }
    }
    let forwarded_query = match behavior.origin_request.as_ref().map(|p| &p.query) {
        Some(Select::All) => query.to_string(),
        Some(sel) => query
            .split('&')
            .filter(|p| {
                let k = p.split('=').next().unwrap_or_default();
                sel.includes(k) || behavior.cache.query.includes(k)
            })
            .collect::<Vec<_>>()
            .join("&"),
        None => query
            .split('&')
            .filter(|p| {
                behavior
                    .cache
                    .query
                    .includes(p.split('=').next().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("&"),
    };
    if origin.access_control && (has_body(method) || !body.is_empty()) {
        // Lambda does not accept unsigned payloads: CloudFront signs the viewer's hash.
        let sent = viewer
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok());
        if sent != Some(content_sha256(&body).as_str()) {
            return Err(plain(
                403,
                "application/json",
                r#"{"Message":"Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}"#,
            ));
        }
    }
    Ok(OriginRequest {
        method: method.as_str().to_string(),
        raw_path: uri.to_string(),
        raw_query: forwarded_query,
        headers,
        body,
        source_ip: edge.opts.source_ip,
        iam: origin.access_control,
    })
}

fn has_body(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH].contains(method)
}

/// `CloudFront-Viewer-Address` as CloudFront writes it: `ip:port`, IPv6 unbracketed.
pub fn viewer_address(peer: SocketAddr) -> String {
    format!("{}:{}", peer.ip(), peer.port())
}

/// The response with the behavior's response headers policy applied.
fn finish(behavior: &Behavior, stored: Stored, hit: bool) -> Response {
    let mut headers = stored.headers.clone();
    if let Some(policy) = &behavior.response_headers {
        headers.retain(|(n, _)| !policy.remove.contains(&n.to_ascii_lowercase()));
        for h in &policy.headers {
            let present = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&h.name));
            if h.override_origin {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&h.name));
            }
            if h.override_origin || !present {
                headers.push((h.name.clone(), h.value.clone()));
            }
        }
    }
    into_response(Stored { headers, ..stored }, hit)
}

fn into_response(stored: Stored, hit: bool) -> Response {
    let mut res = Response::new(Body::from(stored.body));
    *res.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = res.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            if n == "content-length" || n == "transfer-encoding" || n == "connection" {
                continue;
            }
            h.append(n, v);
        }
    }
    h.insert(
        "x-cache",
        HeaderValue::from_static(if hit {
            "Hit from cloudfront"
        } else {
            "Miss from cloudfront"
        }),
    );
    res
}
