//! Unit tests of the admin commands: parsing, tables, JSON and CSV. The in-memory store below
//! is a test fixture for formatting and command logic only; the real stores are tested end to
//! end once they implement `AdminStore`.

use super::*;
use age::secrecy::ExposeSecret;
use async_trait::async_trait;
use cahier_function::store::admin::Criteria;
use cahier_function::store::{
    AuditEvent, Budget, ConfirmOutcome, Count, EraseOutcome, Listed, NewSignature, SignOutcome,
    SignatureRecord, Status, Store,
};
use clap::Parser;
use std::collections::HashMap;
use std::sync::Mutex;

const T0: i64 = 1_605_636_000; // 2020-11-17T18:00:00Z
const NOW: i64 = T0 + 6 * 3600;

#[derive(Default)]
struct Mem {
    records: Mutex<Vec<SignatureRecord>>,
    events: Mutex<Vec<AuditEvent>>,
    counters: Mutex<HashMap<String, u64>>,
    batches: Mutex<Vec<usize>>,
}

impl Mem {
    fn with(records: Vec<SignatureRecord>) -> Mem {
        let mem = Mem::default();
        for r in &records {
            if r.status == Status::Confirmed {
                *mem.counters
                    .lock()
                    .unwrap()
                    .entry(r.petition.clone())
                    .or_default() += 1;
            }
        }
        *mem.records.lock().unwrap() = records;
        mem
    }

    fn statuses(&self) -> HashMap<String, Status> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.email_hash.clone(), r.status))
            .collect()
    }

    fn counter(&self, p: &str) -> u64 {
        self.counters.lock().unwrap().get(p).copied().unwrap_or(0)
    }

    fn change(&self, r: &mut SignatureRecord, to: Status, event: &str, detail: &str, now: i64) {
        let mut c = self.counters.lock().unwrap();
        let n = c.entry(r.petition.clone()).or_default();
        if r.status == Status::Confirmed {
            *n -= 1;
        }
        if to == Status::Confirmed {
            *n += 1;
        }
        r.status = to;
        self.events.lock().unwrap().push(AuditEvent {
            petition: r.petition.clone(),
            email_hash: r.email_hash.clone(),
            event: event.into(),
            at: now,
            detail: detail.into(),
        });
    }
}

#[async_trait]
impl Store for Mem {
    async fn init(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn sign(&self, _: &NewSignature) -> anyhow::Result<SignOutcome> {
        anyhow::bail!("not used by the admin tools")
    }
    async fn take_budget(&self, _: &Budget, _: i64) -> anyhow::Result<bool> {
        anyhow::bail!("not used by the admin tools")
    }
    async fn confirm(&self, _: &str, _: &str, _: i64) -> anyhow::Result<ConfirmOutcome> {
        anyhow::bail!("not used by the admin tools")
    }
    async fn erase(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<EraseOutcome> {
        let mut records = self.records.lock().unwrap();
        let Some(r) = records
            .iter_mut()
            .find(|r| r.petition == petition && r.email_hash == email_hash)
        else {
            return Ok(EraseOutcome::NotFound);
        };
        let was_counted = r.status == Status::Confirmed;
        self.change(r, Status::Erased, "erased", "", now);
        r.sealed.clear();
        r.prefix_hash.clear();
        Ok(EraseOutcome::Erased { was_counted })
    }
    async fn count(&self, petition: &str) -> anyhow::Result<Count> {
        Ok(Count {
            count: self.counter(petition),
            ..Default::default()
        })
    }
    // The public list is exercised on the real stores (conformance, `signers` CLI test);
    // this fixture lists nobody.
    async fn listed(&self, _: &str, _: u32, _: u32) -> anyhow::Result<Vec<Listed>> {
        Ok(Vec::new())
    }
    async fn unlist(&self, _: &str, _: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
    async fn suppress(&self, _: &cahier_function::store::Suppression) -> anyhow::Result<bool> {
        anyhow::bail!("not used by these tests")
    }
    async fn mark_once(&self, _: &str, _: &str, _: i64, _: i64) -> anyhow::Result<Option<i64>> {
        unimplemented!("admin commands set no marks")
    }

    async fn suppression(
        &self,
        _: &str,
    ) -> anyhow::Result<Option<cahier_function::store::Suppression>> {
        Ok(None)
    }
    async fn audit(&self, event: &AuditEvent) -> anyhow::Result<()> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
    async fn get(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<Option<SignatureRecord>> {
        let records = self.records.lock().unwrap();
        Ok(records
            .iter()
            .find(|r| r.petition == petition && r.email_hash == email_hash)
            .cloned())
    }
}

#[async_trait]
impl AdminStore for Mem {
    async fn scan(
        &self,
        criteria: &Criteria,
        visit: &mut (dyn FnMut(SignatureRecord) + Send),
    ) -> anyhow::Result<()> {
        let found: Vec<SignatureRecord> = self
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| criteria.matches(r))
            .cloned()
            .collect();
        found.into_iter().for_each(visit);
        Ok(())
    }
    async fn set_status(
        &self,
        petition: &str,
        hashes: &[String],
        from: &[Status],
        to: Status,
        detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        assert!(hashes.len() <= BATCH);
        self.batches.lock().unwrap().push(hashes.len());
        let mut n = 0;
        for r in self.records.lock().unwrap().iter_mut() {
            if r.petition == petition && hashes.contains(&r.email_hash) && from.contains(&r.status)
            {
                self.change(r, to, to.as_str(), detail, now);
                n += 1;
            }
        }
        Ok(n)
    }
    async fn release(
        &self,
        petition: &str,
        hashes: &[String],
        detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        assert!(hashes.len() <= BATCH);
        let mut n = 0;
        for r in self.records.lock().unwrap().iter_mut() {
            if r.petition != petition || !hashes.contains(&r.email_hash) {
                continue;
            }
            let to = match r.status {
                Status::ConfirmedHeld => Status::Confirmed,
                Status::Held => Status::Pending,
                _ => continue,
            };
            r.hold_reason = None;
            self.change(r, to, "released", detail, now);
            n += 1;
        }
        Ok(n)
    }
    async fn recount(&self, petition: &str) -> anyhow::Result<Count> {
        let n = self
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.petition == petition && r.status == Status::Confirmed)
            .count() as u64;
        self.counters.lock().unwrap().insert(petition.into(), n);
        Ok(Count {
            count: n,
            ..Default::default()
        })
    }
    // Offline batches are exercised on the real stores (admin conformance, the CLI test in
    // tests/tests/admin_cli_offline.rs); this fixture has none.
    async fn add_offline(
        &self,
        _: &cahier_function::store::admin::OfflineBatch,
        _: i64,
    ) -> anyhow::Result<cahier_function::store::admin::OfflineAdded> {
        anyhow::bail!("the in-memory fixture keeps no offline batches")
    }
    async fn withdraw_offline(
        &self,
        _: &str,
        _: &str,
        _: i64,
    ) -> anyhow::Result<cahier_function::store::admin::OfflineWithdrawn> {
        anyhow::bail!("the in-memory fixture keeps no offline batches")
    }
    async fn suppression_counts(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        Ok(std::collections::BTreeMap::new())
    }
    async fn offline_batches(
        &self,
        _: Option<&str>,
    ) -> anyhow::Result<Vec<cahier_function::store::admin::OfflineBatch>> {
        Ok(Vec::new())
    }
    async fn purge(&self, older_than: i64, _now: i64) -> anyhow::Result<u64> {
        let mut n = 0;
        for r in self.records.lock().unwrap().iter_mut() {
            if r.created_at < older_than && !r.sealed.is_empty() {
                r.sealed.clear();
                n += 1;
            }
        }
        Ok(n)
    }
    async fn audit_log(
        &self,
        petition: Option<&str>,
        since: i64,
    ) -> anyhow::Result<Vec<AuditEvent>> {
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|e| e.at >= since && petition.is_none_or(|p| p == e.petition))
            .cloned()
            .collect())
    }
}

fn keys() -> AdminKeys {
    AdminKeys {
        canonical_email: Box::new(|e| {
            anyhow::ensure!(e.contains('@'), "not an e-mail address");
            Ok(e.trim().to_lowercase())
        }),
        email_hash: Box::new(|e| format!("h:{e}")),
        prefix_hash: Box::new(|ip| fake_hash(&ip.to_string())),
        unsubscribe: None,
    }
}

/// A stand-in for the keyed prefix hash: deterministic and not the address.
fn fake_hash(s: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A record as the sign path would store it; `prefix` is the stored /24's network address.
fn rec(
    petition: &str,
    email: &str,
    at: i64,
    status: Status,
    prefix: &str,
    sealed: Vec<u8>,
) -> SignatureRecord {
    SignatureRecord {
        petition: petition.into(),
        email_hash: format!("h:{email}"),
        email_domain: email.split('@').nth(1).unwrap().into(),
        ip_hash: format!("i:{email}"),
        prefix_hash: fake_hash(prefix),
        // As records written before networks were kept; see `trending_names_networks`.
        network: String::new(),
        name_hash: String::new(),
        sealed,
        lang: "fr".into(),
        public: false,
        newsletter: false,
        status,
        hold_reason: None,
        flags: vec![],
        created_at: at,
        confirmed_at: (status == Status::Confirmed).then_some(at + 60),
        expires_at: None,
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    admin: AdminArgs,
}

fn parse(args: &[&str]) -> AdminArgs {
    Cli::try_parse_from(std::iter::once("cahier-admin").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .admin
}

async fn exec(store: &Mem, args: &[&str]) -> anyhow::Result<(ExitCode, String)> {
    let mut out = Vec::new();
    let code = run_with(parse(args), store, &keys(), NOW, &mut out).await?;
    Ok((code, String::from_utf8(out).unwrap()))
}

/// 1,200 signatures from one /24 in one evening and 100 legitimate ones elsewhere.
fn attack() -> Vec<SignatureRecord> {
    let mut v = Vec::new();
    for i in 0..1_200 {
        let s = if i % 100 == 0 {
            Status::Confirmed
        } else {
            Status::Pending
        };
        v.push(rec(
            "noel",
            &format!("bot{i}@mail.test"),
            T0 + i,
            s,
            "127.5.5.0",
            vec![],
        ));
    }
    for i in 0..100 {
        let s = if i % 2 == 0 {
            Status::Confirmed
        } else {
            Status::Pending
        };
        v.push(rec(
            "noel",
            &format!("person{i}@gmail.com"),
            T0 + i * 60,
            s,
            &format!("127.9.{i}.0"),
            vec![],
        ));
    }
    v
}

struct Organizer {
    identity: age::x25519::Identity,
    dir: tempfile::TempDir,
}

impl Organizer {
    fn new() -> Self {
        let identity = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "# created: today\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        std::fs::write(dir.path().join("key.txt"), text).unwrap();
        Organizer { identity, dir }
    }

    fn path(&self) -> String {
        self.dir.path().join("key.txt").display().to_string()
    }

    fn seal(&self, name: &str, email: &str, fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: HashMap<&str, &str> = fields.iter().copied().collect();
        let json =
            serde_json::json!({"name": name, "email": email, "fields": fields, "lang": "fr"});
        age::encrypt(&self.identity.to_public(), json.to_string().as_bytes()).unwrap()
    }
}

#[test]
fn parses_criteria_and_refuses_dry_run_with_yes() {
    let a = parse(&[
        "--json",
        "invalidate",
        "--petition",
        "noel",
        "--from",
        "2020-11-17T18:00:00Z",
        "--to",
        "-1h",
        "--ip-prefix",
        "127.5.0.0/16",
        "--domain",
        "Mail.TEST",
        "--flag",
        "honeypot",
        "--status",
        "confirmed-held",
        "--yes",
        "--expect",
        "1200",
    ]);
    assert!(a.json);
    let AdminCommand::Invalidate(b) = a.command else {
        panic!("not invalidate")
    };
    assert!(b.yes && !b.dry_run);
    assert_eq!(b.expect, Some(1200));
    let c = b.criteria.to_criteria(&keys(), NOW).unwrap();
    assert_eq!((c.from, c.to), (Some(T0), Some(NOW - 3600)));
    assert_eq!(c.prefix_hashes.len(), 256);
    assert!(c.prefix_hashes.contains(&fake_hash("127.5.5.0")));
    assert_eq!(c.email_domain.as_deref(), Some("mail.test"));
    assert_eq!(c.statuses, vec![Status::ConfirmedHeld]);

    let err = Cli::try_parse_from([
        "x",
        "invalidate",
        "--domain",
        "a.test",
        "--dry-run",
        "--yes",
    ]);
    assert!(err.is_err(), "--dry-run and --yes conflict");
    assert!(
        Cli::try_parse_from(["x", "export"]).is_err(),
        "export needs --identity"
    );
}

#[test]
fn criteria_errors_are_clear() {
    let bad = |args: &[&str]| {
        let AdminCommand::Invalidate(b) = parse(args).command else {
            panic!()
        };
        format!("{:#}", b.criteria.to_criteria(&keys(), NOW).unwrap_err())
    };
    assert!(bad(&["invalidate", "--ip-prefix", "127.5.5.0/25"]).contains("only the /24"));
    assert!(bad(&["invalidate", "--ip-prefix", "2001:db8::/64"]).contains("only the /48"));
    assert!(bad(&["invalidate", "--ip-prefix", "10.0.0.0/8"]).contains("at most 4096"));
    assert!(bad(&["invalidate", "--from", "yesterday"]).contains("--from"));
    assert!(bad(&["invalidate", "--from", "-1h", "--to", "-2h"]).contains("before --to"));
    assert!(bad(&["invalidate", "--name-pattern", "("]).contains("--name-pattern"));
    assert!(bad(&["invalidate", "--email", "nobody"]).contains("--email"));
}

#[test]
fn times_in_every_documented_form() {
    use criteria::parse_time;
    assert_eq!(parse_time("2020-11-17T18:00:00Z", NOW).unwrap(), T0);
    assert_eq!(parse_time("2020-11-17T19:00:00+01:00", NOW).unwrap(), T0);
    assert_eq!(parse_time("2020-11-17", NOW).unwrap(), T0 - 18 * 3600);
    assert_eq!(parse_time("1605636000", NOW).unwrap(), T0);
    assert_eq!(parse_time("-6h", NOW).unwrap(), T0);
    assert_eq!(parse_time("-90m", NOW).unwrap(), NOW - 5400);
    assert_eq!(parse_time("-2d", NOW).unwrap(), NOW - 172_800);
    assert!(parse_time("-2w", NOW).is_err());
    assert_eq!(criteria::format_time(T0), "2020-11-17 18:00:00Z");
}

#[tokio::test]
async fn invalidate_counts_first_refuses_empty_then_applies_in_batches() {
    let store = Mem::with(attack());
    assert_eq!(store.counter("noel"), 12 + 50);
    let before = store.statuses();

    let err = exec(&store, &["invalidate", "--petition", "noel"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("without a condition"), "{err}");

    let criteria = [
        "invalidate",
        "--petition",
        "noel",
        "--ip-prefix",
        "127.5.5.0/24",
        "--from",
        "2020-11-17T17:00:00Z",
    ];
    let (code, out) = exec(&store, &criteria).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.contains("Dry run: 1200 signatures would be invalidated"),
        "{out}"
    );
    assert!(out.contains("| noel     | confirmed |    12 |"), "{out}");
    assert!(out.contains("| noel     | pending   |  1188 |"), "{out}");
    assert_eq!(store.statuses(), before, "a dry run changes nothing");

    let mut json = criteria.to_vec();
    json.push("--json");
    let (_, out) = exec(&store, &json).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["dry_run"].as_bool(), v["matched"].as_u64()),
        (Some(true), Some(1200))
    );

    let mut wrong = criteria.to_vec();
    wrong.extend(["--yes", "--expect", "1199"]);
    let (code, out) = exec(&store, &wrong).await.unwrap();
    assert_eq!(code, ExitCode::from(1));
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(store.statuses(), before);

    let mut apply = criteria.to_vec();
    apply.extend(["--yes", "--expect", "1200"]);
    let (code, out) = exec(&store, &apply).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(
        out.contains("1200 of 1200 signatures changed; audit id adm-20201118T000000Z-"),
        "{out}"
    );
    let mut batches = store.batches.lock().unwrap().clone();
    batches.sort_unstable();
    assert_eq!(
        batches,
        vec![12, 188, 500, 500],
        "pending in 500s, confirmed in their own batch"
    );
    let after = store.statuses();
    for (hash, status) in &after {
        if hash.starts_with("h:bot") {
            assert_eq!(*status, Status::Invalidated, "{hash}");
        } else {
            assert_eq!(*status, before[hash], "legitimate {hash} untouched");
        }
    }
    assert_eq!(store.counter("noel"), 50, "count corrected");
    let audit_id = out.rsplit("audit id ").next().unwrap().trim();
    let events = store.events.lock().unwrap();
    let bulk: Vec<_> = events
        .iter()
        .filter(|e| e.event == "bulk_invalidate")
        .collect();
    assert_eq!(bulk.len(), 1);
    assert!(bulk[0].detail.starts_with(audit_id), "{}", bulk[0].detail);
    assert!(
        bulk[0].detail.contains("matched=1200 changed=1200"),
        "{}",
        bulk[0].detail
    );
    assert!(
        !bulk[0].detail.contains("127.5.5"),
        "no raw prefix in the audit trail"
    );
    assert_eq!(
        events.iter().filter(|e| e.event == "invalidated").count(),
        1200
    );
}

#[tokio::test]
async fn name_pattern_decrypts_locally() {
    let org = Organizer::new();
    let mut records = Vec::new();
    for (i, name) in ["Bot Dupont", "Bot Martin", "Jeanne Bot", "bot lower"]
        .iter()
        .enumerate()
    {
        let email = format!("n{i}@mail.test");
        records.push(rec(
            "noel",
            &email,
            T0,
            Status::Pending,
            "127.1.1.0",
            org.seal(name, &email, &[]),
        ));
    }
    records.push(rec(
        "noel",
        "erased@mail.test",
        T0,
        Status::Pending,
        "127.1.1.0",
        vec![],
    ));
    let store = Mem::with(records);

    let err = exec(&store, &["invalidate", "--name-pattern", "^Bot "])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--identity"), "{err}");

    let key = org.path();
    let args = ["invalidate", "--name-pattern", "^Bot ", "--identity", &key];
    let (_, out) = exec(&store, &args).await.unwrap();
    assert!(out.contains("Dry run: 2 signatures"), "{out}");
    assert!(
        out.contains("1 signatures without readable personal data"),
        "{out}"
    );
    let mut apply = args.to_vec();
    apply.push("--yes");
    exec(&store, &apply).await.unwrap();
    let s = store.statuses();
    assert_eq!(s["h:n0@mail.test"], Status::Invalidated);
    assert_eq!(s["h:n1@mail.test"], Status::Invalidated);
    assert_eq!(s["h:n2@mail.test"], Status::Pending);
    assert_eq!(s["h:n3@mail.test"], Status::Pending);
}

#[tokio::test]
async fn approve_counts_confirmed_held_and_reject_invalidates() {
    let mut records = vec![
        rec(
            "noel",
            "depute1@assemblee-nationale.fr",
            T0,
            Status::ConfirmedHeld,
            "127.1.1.0",
            vec![],
        ),
        rec(
            "noel",
            "depute2@assemblee-nationale.fr",
            T0,
            Status::Held,
            "127.1.1.0",
            vec![],
        ),
        rec(
            "noel",
            "other@assemblee-nationale.fr",
            T0,
            Status::Confirmed,
            "127.1.1.0",
            vec![],
        ),
        rec(
            "noel",
            "senateur@senat.fr",
            T0,
            Status::ConfirmedHeld,
            "127.1.2.0",
            vec![],
        ),
    ];
    records
        .iter_mut()
        .for_each(|r| r.hold_reason = Some("protected domain".into()));
    let store = Mem::with(records);
    assert_eq!(store.counter("noel"), 1);

    let err = exec(
        &store,
        &[
            "approve",
            "--domain",
            "senat.fr",
            "--status",
            "confirmed",
            "--yes",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("applies only to"), "{err}");

    let (_, out) = exec(
        &store,
        &["approve", "--domain", "assemblee-nationale.fr", "--yes"],
    )
    .await
    .unwrap();
    assert!(out.contains("2 of 2 signatures changed"), "{out}");
    let s = store.statuses();
    assert_eq!(s["h:depute1@assemblee-nationale.fr"], Status::Confirmed);
    assert_eq!(s["h:depute2@assemblee-nationale.fr"], Status::Pending);
    assert_eq!(store.counter("noel"), 2);

    let (_, out) = exec(
        &store,
        &["--json", "reject", "--email", "Senateur@Senat.fr", "--yes"],
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["changed"], 1);
    assert!(v["audit_id"].as_str().unwrap().starts_with("adm-"));
    assert_eq!(store.statuses()["h:senateur@senat.fr"], Status::Invalidated);
    assert_eq!(store.counter("noel"), 2);
}

#[tokio::test]
async fn stats_table_and_json() {
    let mut records = attack();
    records.push(rec(
        "autre",
        "x@y.test",
        T0 - 3600,
        Status::Held,
        "127.3.3.0",
        vec![],
    ));
    records[5].flags = vec!["fast_fill".into()];
    let store = Mem::with(records);
    let (_, out) = exec(&store, &["stats", "--hours", "48"]).await.unwrap();
    let row = out.lines().find(|l| l.starts_with("| noel")).expect(&out);
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        ["noel", "1238", "62", "0", "0", "0", "0", "1", "1300", "62"]
    );
    assert!(
        out.contains("| 2020-11-17 18:00:00Z | noel     | 1260 |"),
        "{out}"
    );
    assert!(
        out.contains("| 2020-11-17 17:00:00Z | autre    |    1 |"),
        "{out}"
    );

    let (_, out) = exec(&store, &["--json", "stats", "--petition", "noel"])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = &v["petitions"][0];
    assert_eq!(
        (
            p["petition"].as_str(),
            p["pending"].as_u64(),
            p["counter"].as_u64()
        ),
        (Some("noel"), Some(1238), Some(62))
    );
    assert_eq!(p["per_hour"]["2020-11-17T19:00:00Z"], 40);
    assert_eq!(v["petitions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn trending_names_labelled_prefixes() {
    let store = Mem::with(attack());
    let (_, out) = exec(
        &store,
        &[
            "trending",
            "--hours",
            "12",
            "--top",
            "3",
            "--label",
            "127.5.0.0/16",
        ],
    )
    .await
    .unwrap();
    let first = out
        .lines()
        .find(|l| l.starts_with("| 127.5.5.0/24"))
        .expect(&out);
    let cells: Vec<&str> = first
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "127.5.5.0/24",
            "1200",
            "2020-11-17 18:00:00Z",
            "1200",
            "12",
            "0"
        ]
    );
    let legit: Vec<String> = (0..100)
        .map(|i| format!("| #{} ", &fake_hash(&format!("127.9.{i}.0"))[..12]))
        .collect();
    let unlabelled = out
        .lines()
        .filter(|l| legit.iter().any(|h| l.starts_with(h.as_str())))
        .count();
    assert_eq!(
        unlabelled, 2,
        "unlabelled prefixes show their short hash: {out}"
    );
    assert!(out.contains("| mail.test "), "{out}");

    let (_, out) = exec(&store, &["--json", "trending", "--label", "127.5.5.0/24"])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prefixes"][0]["label"], "127.5.5.0/24");
    assert_eq!(v["prefixes"][0]["peak_count"], 1200);
    assert_eq!(v["domains"][0]["key"], "mail.test");
    assert_eq!(v["domains"][1]["key"], "gmail.com");
}

#[tokio::test]
async fn export_decrypts_to_csv_and_public_list() {
    let org = Organizer::new();
    let mut a = rec(
        "noel",
        "a@x.test",
        T0 + 10,
        Status::Confirmed,
        "127.1.1.0",
        org.seal("Ana, \"A\"", "a@x.test", &[("city", "Lyon")]),
    );
    a.public = true;
    let b = rec(
        "noel",
        "b@x.test",
        T0,
        Status::Confirmed,
        "127.1.1.0",
        org.seal("Ben", "b@x.test", &[("postcode", "75001")]),
    );
    let mut held = rec(
        "noel",
        "d@senat.fr",
        T0,
        Status::Confirmed,
        "127.1.1.0",
        org.seal("Sénateur", "d@senat.fr", &[]),
    );
    held.public = true;
    held.hold_reason = Some("protected domain".into());
    let pending = rec(
        "noel",
        "p@x.test",
        T0,
        Status::Pending,
        "127.1.1.0",
        org.seal("Pia", "p@x.test", &[]),
    );
    let store = Mem::with(vec![a, b, held, pending]);

    let key = org.path();
    let (_, csv) = exec(&store, &["export", "--identity", &key]).await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "petition,status,created_at,confirmed_at,lang,name,email,public,newsletter,flags,hold_reason,city,postcode"
    );
    assert_eq!(
        lines.next().unwrap(),
        "noel,confirmed,2020-11-17T18:00:00Z,2020-11-17T18:01:00Z,fr,Ben,b@x.test,false,false,,,,75001"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("noel,confirmed,2020-11-17T18:00:00Z,"),
        "then the held one, same time"
    );
    assert_eq!(
        lines.next().unwrap(),
        "noel,confirmed,2020-11-17T18:00:10Z,2020-11-17T18:01:10Z,fr,\"Ana, \"\"A\"\"\",a@x.test,true,false,,,Lyon,"
    );
    assert_eq!(lines.next(), None, "pending not exported by default");

    let out_path = org.dir.path().join("public.csv");
    let out_arg = out_path.display().to_string();
    let (_, msg) = exec(
        &store,
        &[
            "export",
            "--identity",
            &key,
            "--public-only",
            "-o",
            &out_arg,
        ],
    )
    .await
    .unwrap();
    assert!(msg.contains("Exported 1 signatures"), "{msg}");
    let public = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(
        public,
        "petition,name,confirmed_at\nnoel,\"Ana, \"\"A\"\"\",2020-11-17T18:01:10Z\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let (_, json) = exec(
        &store,
        &[
            "--json",
            "export",
            "--identity",
            &key,
            "--status",
            "pending",
        ],
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "Pia");

    let other = Organizer::new();
    let err = exec(&store, &["export", "--identity", &other.path()])
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("of noel") && msg.contains("cannot decrypt"),
        "{msg}"
    );
    std::fs::write(other.dir.path().join("key.txt"), "AGE-SECRET-KEY-1NOPE\n").unwrap();
    let err = exec(&store, &["export", "--identity", &other.path()])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("key.txt:1"), "{err:#}");
}

#[tokio::test]
async fn erase_by_email_corrects_the_count() {
    let store = Mem::with(vec![
        rec(
            "noel",
            "jane@example.org",
            T0,
            Status::Confirmed,
            "127.1.1.0",
            vec![1],
        ),
        rec(
            "autre",
            "jane@example.org",
            T0,
            Status::Pending,
            "127.1.1.0",
            vec![1],
        ),
        rec(
            "noel",
            "john@example.org",
            T0,
            Status::Confirmed,
            "127.1.1.0",
            vec![1],
        ),
    ]);
    let (_, out) = exec(&store, &["erase", "--email", " Jane@Example.org "])
        .await
        .unwrap();
    assert!(
        out.contains("| noel     | erased, count corrected |"),
        "{out}"
    );
    assert!(
        out.contains("| autre    | erased                  |"),
        "{out}"
    );
    assert_eq!(store.counter("noel"), 1);
    let (_, out) = exec(
        &store,
        &["erase", "--email", "jane@example.org", "--petition", "noel"],
    )
    .await
    .unwrap();
    assert!(out.contains("already erased"), "{out}");
    let (_, out) = exec(&store, &["erase", "--email", "nobody@example.org"])
        .await
        .unwrap();
    assert!(out.contains("No signature"), "{out}");
}

#[tokio::test]
async fn purge_counts_then_purges() {
    let old = NOW - 400 * 86_400;
    let store = Mem::with(vec![
        rec(
            "noel",
            "a@x.test",
            old,
            Status::Confirmed,
            "127.1.1.0",
            vec![1],
        ),
        rec(
            "noel",
            "b@x.test",
            old,
            Status::Confirmed,
            "127.1.1.0",
            vec![],
        ),
        rec(
            "noel",
            "c@x.test",
            NOW - 86_400,
            Status::Confirmed,
            "127.1.1.0",
            vec![1],
        ),
    ]);
    let (_, out) = exec(&store, &["purge", "--older-than-days", "365"])
        .await
        .unwrap();
    assert!(out.starts_with("Dry run: 1 signatures"), "{out}");
    assert_eq!(store.records.lock().unwrap()[0].sealed, vec![1]);
    let (_, out) = exec(
        &store,
        &["--json", "purge", "--older-than-days", "365", "--yes"],
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["dry_run"].as_bool(), v["purged"].as_u64()),
        (Some(false), Some(1))
    );
    assert!(store.records.lock().unwrap()[0].sealed.is_empty());
    assert_eq!(store.records.lock().unwrap()[2].sealed, vec![1]);
}

#[tokio::test]
async fn recount_repairs_a_drifted_counter_and_audit_lists_events() {
    let store = Mem::with(attack());
    store.counters.lock().unwrap().insert("noel".into(), 7);
    let (_, out) = exec(&store, &["recount"]).await.unwrap();
    assert!(
        out.contains("| noel     |              7 |                 62 | repaired |"),
        "{out}"
    );
    let (_, out) = exec(&store, &["--json", "recount", "--petition", "noel"])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["petitions"][0]["repaired"], false);

    exec(
        &store,
        &["invalidate", "--email", "bot1@mail.test", "--yes"],
    )
    .await
    .unwrap();
    let (_, out) = exec(&store, &["audit", "--since", "-1h"]).await.unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains("| invalidated ") && l.contains("| h:bot1@mail. |")),
        "{out}"
    );
    assert!(out.contains("bulk_invalidate"), "{out}");
}

#[tokio::test]
async fn export_neutralises_spreadsheet_formulas() {
    let org = Organizer::new();
    let sealed = |name: &str, email: &str, city: &str| org.seal(name, email, &[("city", city)]);
    let mut a = rec(
        "noel",
        "a@x.test",
        T0,
        Status::Confirmed,
        "127.1.1.0",
        sealed(
            "=HYPERLINK(\"http://evil.test\",\"x\")",
            "a@x.test",
            "+33 1",
        ),
    );
    a.public = true;
    let mut b = rec(
        "noel",
        "b@x.test",
        T0 + 1,
        Status::Confirmed,
        "127.1.1.0",
        sealed("@SUM(1+1)", "b@x.test", "-2"),
    );
    b.public = true;
    let c = rec(
        "noel",
        "c@x.test",
        T0 + 2,
        Status::Confirmed,
        "127.1.1.0",
        sealed("\tTab", "c@x.test", "\rCR"),
    );
    let d = rec(
        "noel",
        "d@x.test",
        T0 + 3,
        Status::Confirmed,
        "127.1.1.0",
        sealed("Jean-Paul = ok", "d@x.test", "Lyon"),
    );
    let store = Mem::with(vec![a, b, c, d]);
    let key = org.path();
    let (_, csv) = exec(&store, &["export", "--identity", &key]).await.unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let cell = |row: usize, col: usize| rows[row].get(col).unwrap().to_string();
    assert_eq!(cell(0, 5), "'=HYPERLINK(\"http://evil.test\",\"x\")");
    assert_eq!(cell(0, 11), "'+33 1");
    assert_eq!(cell(1, 5), "'@SUM(1+1)");
    assert_eq!(cell(1, 11), "'-2");
    assert_eq!(cell(2, 5), "'\tTab");
    assert_eq!(cell(2, 11), "'\rCR");
    assert_eq!(
        cell(3, 5),
        "Jean-Paul = ok",
        "only a leading sign is neutralised"
    );
    assert_eq!(cell(3, 11), "Lyon");

    let (_, public) = exec(&store, &["export", "--identity", &key, "--public-only"])
        .await
        .unwrap();
    assert_eq!(
        public,
        "petition,name,confirmed_at\n\
         noel,\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\",2020-11-17T18:01:00Z\n\
         noel,'@SUM(1+1),2020-11-17T18:01:01Z\n"
    );
}

#[tokio::test]
async fn trending_names_the_networks_kept_in_clear() {
    let records = attack()
        .into_iter()
        .map(|mut r| {
            if r.email_hash.starts_with("h:bot") {
                r.network = "127.5.5.0/24".into();
            }
            r
        })
        .collect();
    let store = Mem::with(records);
    let (_, out) = exec(&store, &["trending", "--hours", "12", "--top", "3"])
        .await
        .unwrap();
    assert!(
        out.lines().any(|l| l.starts_with("| 127.5.5.0/24 ")),
        "the attacking network is named without --label: {out}"
    );
    let (_, out) = exec(&store, &["--json", "trending"]).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prefixes"][0]["label"], "127.5.5.0/24");
    assert_eq!(v["prefixes"][0]["network"], "127.5.5.0/24");
    assert_eq!(v["prefixes"][0]["total"], 1200);
    assert!(
        v["prefixes"][1]["label"].is_null(),
        "a record without a network stays a hash"
    );
}

#[tokio::test]
async fn release_counts_confirmed_over_budget_holds_after_a_dry_run() {
    // A crowd behind one carrier's /24: three confirmed their mail while held over budget, one
    // did not yet; a protected-domain hold on the same network; a pending one elsewhere.
    let over = |email: &str, status: Status| {
        let mut r = rec("noel", email, T0, status, "127.7.7.0", vec![]);
        r.hold_reason = Some("over budget ip24:abc:noel".into());
        r
    };
    let mut protected = rec(
        "noel",
        "d@senat.fr",
        T0,
        Status::ConfirmedHeld,
        "127.7.7.0",
        vec![],
    );
    protected.hold_reason = Some("protected domain".into());
    let store = Mem::with(vec![
        over("a@mobile.test", Status::ConfirmedHeld),
        over("b@mobile.test", Status::ConfirmedHeld),
        over("c@mobile.test", Status::ConfirmedHeld),
        over("p@mobile.test", Status::Held),
        protected,
        rec("noel", "x@x.test", T0, Status::Pending, "127.9.9.0", vec![]),
    ]);
    assert_eq!(store.counter("noel"), 0);

    let err = exec(&store, &["release", "--yes"]).await.unwrap_err();
    assert!(err.to_string().contains("without a condition"), "{err}");

    let (_, out) = exec(&store, &["release", "--ip-prefix", "127.7.7.0/24"])
        .await
        .unwrap();
    assert!(
        out.contains("Dry run: 4 signatures would be released"),
        "{out}"
    );
    assert_eq!(store.counter("noel"), 0, "a dry run changes nothing");

    let (code, out) = exec(
        &store,
        &["release", "--petition", "noel", "--yes", "--expect", "5"],
    )
    .await
    .unwrap();
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert_eq!(store.counter("noel"), 0);

    let (_, out) = exec(
        &store,
        &[
            "--json",
            "release",
            "--petition",
            "noel",
            "--yes",
            "--expect",
            "4",
        ],
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["changed"], 4, "{out}");
    assert_eq!(store.counter("noel"), 3, "the confirmed ones count now");
    let s = store.statuses();
    assert_eq!(s["h:a@mobile.test"], Status::Confirmed);
    assert_eq!(s["h:p@mobile.test"], Status::Pending);
    assert_eq!(
        s["h:d@senat.fr"],
        Status::ConfirmedHeld,
        "review holds stay"
    );
    assert_eq!(s["h:x@x.test"], Status::Pending);
    let events = store.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| e.event == "released").count(), 4);
    assert!(events
        .iter()
        .any(|e| e.event == "bulk_release" && e.detail.contains("hold=over_budget")));
    drop(events);

    let (_, out) = exec(
        &store,
        &[
            "release",
            "--domain",
            "senat.fr",
            "--include-protected",
            "--yes",
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("1 of 1 signatures changed"), "{out}");
    assert_eq!(store.counter("noel"), 4);
}
