//! A real moto server (DynamoDB, SES, … from PyPI's `moto[server]`) on a free loopback port,
//! killed when the guard drops. The tests fail, never skip, when it cannot start.
//!
//! moto is started through its own `moto.server.main` (what `.venv/bin/moto_server` runs) with
//! one change: requests are served one at a time. moto's threaded server is not safe for
//! concurrent transactions: a cancelled TransactWriteItems rolls the table back to a copy taken
//! when it began, undoing writes that concurrent requests made meanwhile, which real DynamoDB
//! (serializable transactions) never does. Serving requests one by one gives each request
//! DynamoDB's isolation while clients still race between requests (read, then conditional
//! write), which is what the conformance suite's concurrency scenarios exercise.
//!
//! And changes of cost, none of behaviour. moto's TransactWriteItems backs up each table it
//! touches by deep-copying the whole table, once *per item* of the transaction, each copy
//! overwriting the last; and moto remembers every item object it ever made, copies included,
//! for its dashboard. A sign writes about ten items, so each sign cost ten copies of the whole
//! table and the process grew without end: through the edge, the first of a crowd signed in
//! 130 ms, the 190th in 800 ms, and the count of 300 took more than four minutes. The launcher
//! backs a table up once per transaction, copying its item containers (references) and only
//! the items the transaction names (deeply): a transaction can change nothing else, so the
//! rollback restores the same state. A Query on the table (not an index) looks only at the
//! partition it names, where moto sorted and filtered every item of the table. And the
//! launcher stops tracking DynamoDB objects for the dashboard; the tests read only SES's sent
//! mail from `/moto-api/data.json`.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python of the venv holding moto: `$CAHIER_VENV/bin/python`, else `<repo>/.venv/bin/python`.
pub fn venv_python() -> PathBuf {
    std::env::var_os("CAHIER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(".venv")
        })
        .join("bin")
        .join("python")
}

/// `moto_server`'s entry point, with requests served one at a time and one backup copy per
/// table and transaction (see the module doc).
const LAUNCHER: &str = "
import copy, sys
import moto.server as server
import moto.dynamodb.models as ddb
run_simple = server.run_simple
def serial(*args, **kwargs):
    kwargs['threaded'] = False
    return run_simple(*args, **kwargs)
server.run_simple = serial

from collections import defaultdict
from moto.dynamodb.models.dynamo_type import DynamoType

def backup(table, transact_items):
    saved = copy.copy(table)
    saved.items = defaultdict(dict)
    for h, v in table.items.items():
        saved.items[h] = dict(v) if table.has_range_key else v
    for entry in transact_items:
        op = next(iter(entry.values()))
        if op.get('TableName') != table.name:
            continue
        key = op.get('Key') or op.get('Item')
        h = DynamoType(key[table.hash_key_attr])
        if table.has_range_key:
            r = DynamoType(key[table.range_key_attr])
            if r in table.items.get(h, {}):
                saved.items[h][r] = copy.deepcopy(table.items[h][r])
        elif h in table.items:
            saved.items[h] = copy.deepcopy(table.items[h])
    return saved

class OneBackupPerTable:
    transaction = None
    backups = {}
    def __getattr__(self, name):
        return getattr(copy, name)
    def deepcopy(self, obj, memo=None):
        if self.transaction is None or not isinstance(obj, ddb.Table):
            return copy.deepcopy(obj, memo)
        if id(obj) not in self.backups:
            try:
                self.backups[id(obj)] = backup(obj, self.transaction)
            except (KeyError, TypeError, AttributeError):
                self.backups[id(obj)] = copy.deepcopy(obj)
        return self.backups[id(obj)]
shim = OneBackupPerTable()
ddb.copy = shim
transact = ddb.DynamoDBBackend.transact_write_items
def transact_write_items(self, transact_items, *args, **kwargs):
    shim.transaction, shim.backups = transact_items, {}
    try:
        return transact(self, transact_items, *args, **kwargs)
    finally:
        shim.transaction, shim.backups = None, {}
ddb.DynamoDBBackend.transact_write_items = transact_write_items

query = ddb.Table.query
def query_one_partition(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get('index_name')
    if index_name is not None or hash_key is None or not self.range_key_attr:
        return query(self, hash_key, *args, **kwargs)
    self.all_items = lambda: list(self.items.get(hash_key, {}).values())
    try:
        return query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items
ddb.Table.query = query_one_partition

from moto.core.model_instances import model_data
class Untracked(list):
    def append(self, item):
        pass
for model in model_data['dynamodb'].values():
    model.instances_tracked = Untracked()
server.main(sys.argv[1:])
";

/// A running moto server.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts moto on a free port and waits (at most 30 s) until it answers HTTP.
    pub fn start() -> anyhow::Result<Moto> {
        let bin = venv_python();
        if !bin.exists() {
            bail!(
                "no Python venv at {}: run scripts/test.sh, which creates it and installs \
                 tests/requirements.txt (moto[server], aiosmtpd, cfn-lint)",
                bin.display()
            );
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = Command::new(&bin)
            .args(["-c", LAUNCHER, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("while starting moto with {}", bin.display()))?;
        let mut moto = Moto { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                bail!(
                    "moto exited at start ({status}); is moto[server] installed in {}? \
                     run scripts/test.sh",
                    bin.display()
                );
            }
            if moto.get("/moto-api/").is_ok() {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                bail!("moto_server did not answer on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, for the SDK's `endpoint_url` and the `?endpoint=` settings.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain HTTP/1.0 GET on moto (its `/moto-api/` inspection routes); returns the body if
    /// the status is 200.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("malformed HTTP response from moto")?;
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 200") {
            bail!("GET {path} on moto: {status}");
        }
        Ok(body.to_string())
    }

    /// SDK configuration for this server: region us-east-1 and dummy static credentials, set on
    /// the config only (the test process's environment is left alone).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}

/// An S3 client on moto (path-style: moto has no per-bucket host names).
pub async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await)
            .force_path_style(true)
            .build(),
    )
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A table name no other test uses.
pub fn fresh_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Moves each secret of `env` (`CAHIER_PEPPER`, ...) into this server's Secrets Manager and
/// puts `NAME_ARN` in its place, as the stack does for the Lambda function; adds what the SDK
/// needs to reach moto. Other variables pass through.
pub async fn into_secrets_manager(
    moto: &Moto,
    env: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let mut out = vec![
        ("AWS_ENDPOINT_URL".to_string(), moto.endpoint()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
    ];
    for (name, value) in env {
        if !cahier_function::secrets::SECRET_VARIABLES.contains(&name.as_str()) {
            if !out.iter().any(|(k, _)| *k == name) {
                out.push((name, value));
            }
            continue;
        }
        let created = client
            .create_secret()
            .name(format!("cahier/{}/{name}", fresh_table("secret")))
            .secret_string(value)
            .send()
            .await
            .expect("secret created in moto");
        out.push((format!("{name}_ARN"), created.arn().unwrap().to_string()));
    }
    out
}

/// The mails moto's SES holds (sent raw, as `SesMailer` sends them), parsed, oldest first.
pub fn ses_mails(moto: &Moto) -> anyhow::Result<Vec<crate::outbox::ReadMail>> {
    let data: serde_json::Value = serde_json::from_str(&moto.get("/moto-api/data.json")?)?;
    Ok(data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| crate::outbox::parse(m["raw_data"].as_str().unwrap_or_default().as_bytes()))
        .collect())
}
