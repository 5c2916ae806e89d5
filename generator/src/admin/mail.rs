//! `cahier admin mail`: an update to a petition's signers, sent from the organizer's machine.
//!
//! The addresses are read with the organizer's age identity, here and nowhere else; the mails
//! go out through the configured mailer (SMTP, DKIM-signed when a key is set; SES; or an
//! outbox folder), one by one at a bounded rate, each in its signer's language inside the
//! theme's `mail/update.*` frame, with RFC 8058 one-click unsubscribe headers and a visible
//! unsubscribe link ([`cahier_function::unsubscribe`]).
//!
//! Nobody is mailed twice: a journal beside the site (`.cahier/mail/<campaign>.journal`, the
//! campaign being a hash of the petition, the audience, the subject and the bodies) records
//! `sending` before a mail is handed to the mailer and `sent` once it took it, each line
//! flushed to disk. A rerun after a crash skips whoever is `sent`; whoever is only `sending`
//! (the crash came while the mailer had the mail) may or may not have it, and is skipped and
//! reported unless `--resend-interrupted` says to risk a second copy. Unsubscribed, bounced
//! and erased signers are never mailed, and the list of recipients is read again at every run,
//! so an unsubscribe between two runs is honoured.

use super::unseal::Identities;
use super::Ctx;
use crate::admin::out::short;
use anyhow::Context;
use cahier_function::mail_templates::{MailTemplates, UpdateContext};
use cahier_function::mailer::Mailer;
use cahier_function::manifest::Manifest;
use cahier_function::store::admin::Criteria;
use cahier_function::store::{SignatureRecord, Status};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Audience {
    /// Confirmed signers who ticked the petition's newsletter box.
    Newsletter,
    /// Every confirmed signer (news about this petition: its outcome, a hearing).
    Signers,
}

impl Audience {
    fn as_str(self) -> &'static str {
        match self {
            Audience::Newsletter => "newsletter",
            Audience::Signers => "signers",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct MailArgs {
    /// The petition whose signers get the update.
    #[arg(long)]
    pub petition: String,
    /// The subject line. A body file may set its own in front matter (`subject = "..."`
    /// between `+++` lines, or `subject: ...` between `---` lines).
    #[arg(long)]
    pub subject: String,
    /// The update, in Markdown. `NAME.<lang>.md` beside `NAME.md`, when it exists, goes to the
    /// signers who signed in that language; the others get this one.
    #[arg(long, value_name = "PATH")]
    pub body: PathBuf,
    /// Who gets it.
    #[arg(long, value_enum, default_value_t = Audience::Newsletter)]
    pub to: Audience,
    /// Count the recipients per language and print the first mail; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The organizer's age identity file (`age-keygen` output), to read the addresses.
    #[arg(long, value_name = "PATH")]
    pub identity: PathBuf,
    /// The mailer: `smtp://host:port?from=..[&dkim_selector=..]`, `ses:?from=..` or
    /// `outbox:DIR` (the function's setting).
    #[arg(long, env = "CAHIER_MAILER")]
    pub mailer: Option<String>,
    /// Mails per second, at most (providers throttle and flag bursts).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Also mail those whose send a crash interrupted (they may get it twice).
    #[arg(long)]
    pub resend_interrupted: bool,
}

/// One body file, for one language or for all.
struct Body {
    subject: String,
    text: String,
    html: String,
    /// Its bytes, for the campaign's id.
    source: Vec<u8>,
}

/// One recipient, read with the identity.
struct Recipient {
    email_hash: String,
    email: String,
    lang: String,
}

/// What a run did (and prints).
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    already_sent: u64,
    interrupted: u64,
    suppressed: u64,
    erased: u64,
    failed: u64,
}

pub async fn run(ctx: &mut Ctx<'_>, args: MailArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate <= 1000.0,
        "--rate must be between 0 and 1000 mails per second"
    );
    let root = if ctx.root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        ctx.root.clone()
    };
    let manifest = site_manifest(&root)?;
    let petition = manifest.petition(&args.petition).with_context(|| {
        format!(
            "no petition {:?} in the site at {} (cahier admin mail reads the site's content)",
            args.petition,
            root.display()
        )
    })?;
    if args.to == Audience::Newsletter && !petition.newsletter {
        anyhow::bail!(
            "the petition {:?} offers no newsletter box (front matter `newsletter`): nobody opted \
             in; use --to signers for news of this petition",
            petition.slug
        );
    }
    let bundle = manifest
        .mails
        .clone()
        .context("the site has no mail templates")?;
    let templates = MailTemplates::compile(&bundle, &manifest.site.default_language)?;
    let bodies = read_bodies(&args.body, &args.subject, &petition.languages)?;
    let campaign = campaign_id(&args, &bodies);
    let ids = Identities::from_file(&args.identity)?;
    let key = ctx
        .keys
        .unsubscribe
        .clone()
        .context("no unsubscribe key: the pepper is needed to sign the links")?;

    let records = recipients(ctx, &petition.slug, args.to).await?;
    let mut tally = Tally::default();
    let mut people = Vec::with_capacity(records.len());
    for r in records {
        if r.sealed.is_empty() {
            tally.erased += 1;
            continue;
        }
        if ctx.store.suppression(&r.email_hash).await?.is_some() {
            tally.suppressed += 1;
            continue;
        }
        let personal = ids.open(&r.sealed).with_context(|| {
            format!(
                "signature #{} of {} with the identity in {}",
                short(&r.email_hash),
                r.petition,
                args.identity.display()
            )
        })?;
        // A bounce is kept under the exact address it went to (`mail_events`), which may
        // differ from the person's canonical one (a +tag, dots).
        let delivered = (ctx.keys.email_hash)(&personal.email);
        if delivered != r.email_hash && ctx.store.suppression(&delivered).await?.is_some() {
            tally.suppressed += 1;
            continue;
        }
        let lang = if petition.languages.contains(&r.lang) {
            r.lang.clone()
        } else {
            manifest.site.default_language.clone()
        };
        people.push(Recipient {
            email_hash: r.email_hash,
            email: personal.email,
            lang,
        });
    }

    let render = |p: &Recipient| {
        let body = bodies.get(&p.lang).unwrap_or(&bodies[""]);
        let prefix = if p.lang == manifest.site.default_language {
            String::new()
        } else {
            format!("/{}", p.lang)
        };
        let token =
            cahier_function::unsubscribe::issue(&key, &petition.slug, &p.email_hash, ctx.now);
        let title = petition
            .titles
            .get(&p.lang)
            .or_else(|| petition.titles.values().next())
            .cloned()
            .unwrap_or_else(|| petition.slug.clone());
        let base = manifest.site.base_url.trim_end_matches('/');
        templates.render_update(&UpdateContext {
            to: &p.email,
            lang: &p.lang,
            organization: &manifest.site.organization,
            title: &title,
            subject: &body.subject,
            body_text: &body.text,
            body_html: &body.html,
            petition_url: &format!("{base}{prefix}/{}/", petition.slug),
            unsubscribe_url: &cahier_function::unsubscribe::page_url(base, &prefix, &token),
            one_click_url: &cahier_function::unsubscribe::one_click_url(
                &manifest.site.api_url,
                &token,
            ),
            reply_to: manifest.site.contact_email.as_deref(),
        })
    };

    if args.dry_run {
        let mut per_lang: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &people {
            *per_lang.entry(p.lang.as_str()).or_default() += 1;
        }
        let sample = people.first().map(&render).transpose()?;
        if ctx.json {
            ctx.print_json(&json!({
                "campaign": campaign, "petition": petition.slug, "to": args.to.as_str(),
                "recipients": people.len(), "per_language": per_lang,
                "suppressed": tally.suppressed, "erased": tally.erased,
                "sample": sample.as_ref().map(|m| json!({"subject": m.subject, "text": m.text})),
            }))?;
        } else {
            writeln!(
                ctx.out,
                "Dry run, campaign {campaign}: {} recipients for {} ({}), nothing sent.",
                people.len(),
                petition.slug,
                args.to.as_str()
            )?;
            for (lang, n) in &per_lang {
                writeln!(ctx.out, "  {lang}: {n}")?;
            }
            writeln!(
                ctx.out,
                "Left out: {} unsubscribed or bounced, {} erased.",
                tally.suppressed, tally.erased
            )?;
            if let Some(m) = sample {
                writeln!(
                    ctx.out,
                    "\nFirst mail — Subject: {}\n\n{}",
                    m.subject, m.text
                )?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mailer_url = args
        .mailer
        .clone()
        .context("no mailer: --mailer or CAHIER_MAILER (smtp://…, ses: or outbox:DIR)")?;
    let mailer = cahier_function::mailer::open(&mailer_url).await?;
    let mut journal = Journal::open(&root.join(".cahier/mail"), &campaign)?;
    let total = people.len() as u64;
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let progress = Progress::new(total);
    for (i, p) in people.iter().enumerate() {
        match journal.state(&p.email_hash) {
            Some(Sent::Done) => {
                tally.already_sent += 1;
                continue;
            }
            Some(Sent::Interrupted) if !args.resend_interrupted => {
                tally.interrupted += 1;
                continue;
            }
            _ => {}
        }
        let mail = render(p)?;
        pace.tick().await;
        journal.mark(&p.email_hash, "sending")?;
        match send(mailer.as_ref(), &mail).await {
            Ok(()) => {
                journal.mark(&p.email_hash, "sent")?;
                tally.sent += 1;
            }
            Err(e) => {
                journal.mark(&p.email_hash, "failed")?;
                tally.failed += 1;
                eprintln!("#{}: {e:#}", short(&p.email_hash));
            }
        }
        progress.show(i as u64 + 1);
    }
    progress.done();
    if ctx.json {
        ctx.print_json(&json!({
            "campaign": campaign, "petition": petition.slug, "to": args.to.as_str(),
            "recipients": total, "sent": tally.sent, "already_sent": tally.already_sent,
            "interrupted": tally.interrupted, "failed": tally.failed,
            "suppressed": tally.suppressed, "erased": tally.erased,
            "journal": journal.path.display().to_string(),
        }))?;
    } else {
        writeln!(
            ctx.out,
            "Campaign {campaign} ({}, {}): sent {}, already sent {}, failed {}; left out {} \
             unsubscribed or bounced, {} erased.",
            petition.slug,
            args.to.as_str(),
            tally.sent,
            tally.already_sent,
            tally.failed,
            tally.suppressed,
            tally.erased
        )?;
        if tally.interrupted > 0 {
            writeln!(
                ctx.out,
                "{} were being sent when an earlier run stopped: they may have the mail, and \
                 were skipped (--resend-interrupted sends to them again).",
                tally.interrupted
            )?;
        }
        if tally.failed > 0 {
            writeln!(
                ctx.out,
                "Run the same command again to retry the failed ones."
            )?;
        }
    }
    Ok(if tally.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn send(mailer: &dyn Mailer, mail: &cahier_function::mailer::Mail) -> anyhow::Result<()> {
    mailer.send(mail).await
}

/// The confirmed, counted signatures of the petition for the audience, in a stable order.
async fn recipients(
    ctx: &Ctx<'_>,
    petition: &str,
    to: Audience,
) -> anyhow::Result<Vec<SignatureRecord>> {
    let criteria = Criteria {
        petition: Some(petition.to_string()),
        statuses: vec![Status::Confirmed],
        ..Default::default()
    };
    let mut records = Vec::new();
    ctx.store
        .scan(&criteria, &mut |r| {
            if criteria.matches(&r)
                && r.hold_reason.is_none()
                && (to == Audience::Signers || r.newsletter)
            {
                records.push(r);
            }
        })
        .await?;
    records.sort_by(|a, b| a.email_hash.cmp(&b.email_hash));
    Ok(records)
}

/// The manifest the build would write, from the site's configuration, content and theme.
fn site_manifest(root: &Path) -> anyhow::Result<Manifest> {
    let cfg = crate::config::load(root)?;
    let content = crate::content::load(root, &cfg, false).map_err(crate::diag::Diagnostics)?;
    let theme = crate::theme::Theme::load(root, &cfg)?;
    Ok(crate::petition_manifest::build(&cfg, &content, &theme))
}

/// The body for every language: `""` is the default file, other keys its `.<lang>.md` siblings.
fn read_bodies(
    path: &Path,
    subject: &str,
    languages: &[String],
) -> anyhow::Result<BTreeMap<String, Body>> {
    let mut bodies = BTreeMap::new();
    bodies.insert(String::new(), read_body(path, subject)?);
    let stem = path.with_extension("");
    for lang in languages {
        let sibling = PathBuf::from(format!("{}.{lang}.md", stem.display()));
        if sibling.is_file() {
            bodies.insert(lang.clone(), read_body(&sibling, subject)?);
        }
    }
    Ok(bodies)
}

fn read_body(path: &Path, default_subject: &str) -> anyhow::Result<Body> {
    let source =
        std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
    let text = String::from_utf8(source.clone())
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let (subject, markdown) = match crate::content::split_front_matter(&text) {
        Some((is_toml, front, body, _)) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Front {
                subject: Option<String>,
            }
            let front: Front = if is_toml {
                toml::from_str(front).with_context(|| {
                    format!(
                        "while reading the front matter of {} (only `subject`)",
                        path.display()
                    )
                })?
            } else {
                serde_yaml::from_str(front).with_context(|| {
                    format!(
                        "while reading the front matter of {} (only `subject`)",
                        path.display()
                    )
                })?
            };
            (
                front.subject.unwrap_or_else(|| default_subject.to_string()),
                body,
            )
        }
        None => (default_subject.to_string(), text.as_str()),
    };
    anyhow::ensure!(
        !subject.trim().is_empty(),
        "{}: the subject is empty",
        path.display()
    );
    anyhow::ensure!(
        !markdown.trim().is_empty(),
        "{}: the update has no text",
        path.display()
    );
    let rendered = crate::markdown::render(markdown);
    // A mail has no page to resolve a relative link against.
    for (url, offset) in rendered.links.iter().chain(&rendered.images) {
        let absolute =
            url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:");
        if !absolute {
            let line = markdown[..(*offset).min(markdown.len())]
                .lines()
                .count()
                .max(1);
            anyhow::bail!(
                "{}, line {line}: the link {url:?} is relative; a mail needs a full https:// address",
                path.display()
            );
        }
    }
    Ok(Body {
        subject: subject.trim().to_string(),
        text: markdown.trim().to_string(),
        html: crate::sanitize::clean(&rendered.html),
        source,
    })
}

/// A short hash naming the campaign: the same petition, audience, subject and texts are the
/// same campaign (a rerun resumes it); any change makes a new one.
fn campaign_id(args: &MailArgs, bodies: &BTreeMap<String, Body>) -> String {
    let mut h = Sha256::new();
    for part in [args.petition.as_bytes(), args.to.as_str().as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    for (lang, body) in bodies {
        for part in [lang.as_bytes(), body.subject.as_bytes(), &body.source] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    hex::encode(&h.finalize()[..8])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Done,
    /// `sending` without `sent`: the run stopped while the mailer had it.
    Interrupted,
}

/// The campaign's journal: one line per step, flushed to disk before the next step.
struct Journal {
    path: PathBuf,
    file: std::fs::File,
    state: BTreeMap<String, Sent>,
}

impl Journal {
    fn open(dir: &Path, campaign: &str) -> anyhow::Result<Journal> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
        let path = dir.join(format!("{campaign}.journal"));
        let mut state = BTreeMap::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("while reading {}", path.display()))?;
            for line in text.lines() {
                // A line cut by a crash has no known word: ignored.
                match line.split_once(' ') {
                    Some(("sending", h)) => {
                        state.entry(h.to_string()).or_insert(Sent::Interrupted);
                    }
                    Some(("sent", h)) => {
                        state.insert(h.to_string(), Sent::Done);
                    }
                    // The mailer refused it: not delivered, tried again next run.
                    Some(("failed", h)) if state.get(h) != Some(&Sent::Done) => {
                        state.remove(h);
                    }
                    _ => {}
                }
            }
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("while opening {}", path.display()))?;
        // After a line cut by a crash, start on a line of its own.
        let len = file.metadata()?.len();
        if len > 0 && !std::fs::read(&path)?.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        Ok(Journal { path, file, state })
    }

    fn state(&self, email_hash: &str) -> Option<Sent> {
        self.state.get(email_hash).copied()
    }

    fn mark(&mut self, email_hash: &str, word: &str) -> anyhow::Result<()> {
        self.file
            .write_all(format!("{word} {email_hash}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("while writing {}", self.path.display()))
    }
}

/// A progress line on standard error when it is a terminal.
struct Progress {
    total: u64,
    tty: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: u64) {
        if self.tty {
            eprint!("\rmailing: {done}/{}", self.total);
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_takes_its_subject_from_front_matter_and_refuses_relative_links() {
        let dir = tempfile::tempdir().unwrap();
        let en = dir.path().join("update.md");
        std::fs::write(
            &en,
            "+++\nsubject = \"Hearing on 3 March\"\n+++\nWe **won** a hearing.\n",
        )
        .unwrap();
        let b = read_body(&en, "Default").unwrap();
        assert_eq!(b.subject, "Hearing on 3 March");
        assert!(b.html.contains("<strong>won</strong>"), "{}", b.html);
        assert_eq!(b.text, "We **won** a hearing.");
        std::fs::write(
            dir.path().join("update.fr.md"),
            "---\nsubject: Audience le 3 mars\n---\nNous avons une audience.\n",
        )
        .unwrap();
        let all = read_bodies(&en, "Default", &["fr".into(), "de".into()]).unwrap();
        assert_eq!(all["fr"].subject, "Audience le 3 mars");
        assert!(!all.contains_key("de"));

        let bad = dir.path().join("bad.md");
        std::fs::write(&bad, "Hello\n\nSee [the page](../petition/).\n").unwrap();
        let e = read_body(&bad, "S").err().unwrap().to_string();
        assert!(e.contains("line 3") && e.contains("relative"), "{e}");
        std::fs::write(&bad, "<script>alert(1)</script>Hi").unwrap();
        assert!(!read_body(&bad, "S").unwrap().html.contains("<script"));
        std::fs::write(&bad, "+++\nsubjet = \"typo\"\n+++\nHi").unwrap();
        let e = format!("{:#}", read_body(&bad, "S").err().unwrap());
        assert!(e.contains("bad.md") && e.contains("subjet"), "{e}");
    }

    #[test]
    fn the_journal_resumes_without_mailing_anyone_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "c1").unwrap();
        j.mark("a", "sending").unwrap();
        j.mark("a", "sent").unwrap();
        j.mark("b", "sending").unwrap();
        j.mark("c", "sending").unwrap();
        j.mark("c", "failed").unwrap();
        // A crash in the middle of a line.
        j.file.write_all(b"sen").unwrap();
        drop(j);
        let j = Journal::open(dir.path(), "c1").unwrap();
        assert_eq!(j.state("a"), Some(Sent::Done));
        assert_eq!(j.state("b"), Some(Sent::Interrupted));
        assert_eq!(j.state("c"), None, "refused by the mailer: retried");
        assert_eq!(j.state("d"), None);
        // What follows the cut line is read back.
        let mut j = j;
        j.mark("d", "sending").unwrap();
        j.mark("d", "sent").unwrap();
        drop(j);
        assert_eq!(
            Journal::open(dir.path(), "c1").unwrap().state("d"),
            Some(Sent::Done)
        );
    }
}
