//! Milestones: the organizers hear when a petition reaches 25, 50 and 100 % of its goal, and
//! when it is trending (many confirmed signatures within one clock hour) — by a mail to the
//! collective's contact address, a webhook, or both. Off unless `cahier.toml` has a
//! `[milestones]` table and a channel exists (`mail = true` with `contact_email`, or the secret
//! `CAHIER_MILESTONE_WEBHOOK`).
//!
//! Checked after each counted confirmation, against the count then ("reached" means at least,
//! so a count raised by a paper batch or an approval is announced at the next confirmation).
//! Each announcement is claimed in the store with a conditional write
//! ([`crate::store::Store::mark_once`]) before it is sent, so it goes out once whatever the
//! number of instances; each instance also remembers what it saw claimed, so that a petition
//! past its milestones costs no write. A notification that fails is logged, not retried: a
//! signer's confirmation never waits longer than [`WEBHOOK_TIMEOUT`] for it, nor fails with it.
//!
//! Trending: the first check of an hour records the count then (`hour-<h>`, once per petition
//! and hour); the alert goes when the count has grown by `trending_per_hour` since — which may
//! be the organizers' own campaign, or an attack worth a look with `cahier admin trending`.

use crate::mailer::Mail;
use crate::state::{AppState, Loaded};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// The `[milestones]` table of `cahier.toml`, as the manifest carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MilestonePolicy {
    /// Percentages of the goal announced, ascending.
    pub at: Vec<u32>,
    /// Confirmed signatures within one clock hour (UTC) that make a trending alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trending_per_hour: Option<u64>,
    /// Whether the collective's `contact_email` gets a mail.
    pub mail: bool,
}

/// The percentages announced when `cahier.toml` does not say.
pub const DEFAULT_AT: [u32; 3] = [25, 50, 100];
/// Longest a confirmation waits for the webhook.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);
/// Marks an instance remembers; past it, it starts again (and asks the store).
const REMEMBERED: usize = 100_000;

/// What happened, as the webhook posts it and the mail tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The count reached `percent` % of the goal.
    Milestone {
        petition: String,
        title: String,
        url: String,
        percent: u32,
        count: u64,
        goal: u64,
        /// Unix seconds.
        at: i64,
    },
    /// `signatures` confirmed since the start of the hour (`since`, Unix seconds).
    Trending {
        petition: String,
        title: String,
        url: String,
        signatures: u64,
        since: i64,
        count: u64,
        at: i64,
    },
}

impl Event {
    /// One of each, for checking that the theme's templates render them.
    pub fn examples() -> [Event; 2] {
        let (petition, title, url) = (
            "p".to_string(),
            "A \"petition\" <title>".to_string(),
            "https://petitions.example/p/".to_string(),
        );
        [
            Event::Milestone {
                petition: petition.clone(),
                title: title.clone(),
                url: url.clone(),
                percent: 50,
                count: 5_000,
                goal: 10_000,
                at: 0,
            },
            Event::Trending {
                petition,
                title,
                url,
                signatures: 800,
                since: 0,
                count: 5_000,
                at: 0,
            },
        ]
    }
}

/// The marks this instance knows are taken (`slug` + mark), and the count at the start of
/// the current hour per petition.
#[derive(Default)]
pub struct MilestoneMemo {
    taken: Mutex<HashSet<String>>,
    hour_starts: Mutex<std::collections::HashMap<String, (i64, u64)>>,
}

impl MilestoneMemo {
    fn is_taken(&self, slug: &str, mark: &str) -> bool {
        let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.contains(&format!("{slug}\n{mark}"))
    }

    fn set_taken(&self, slug: &str, mark: &str) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if taken.len() >= REMEMBERED {
            taken.clear();
        }
        taken.insert(format!("{slug}\n{mark}"));
    }
}

/// The webhook URL must be `https`, or `http` to this machine (a local relay, the tests).
pub fn check_webhook_url(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("not a URL: {e}"))?;
    let local = matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || parsed.host_str() == Some("localhost");
    anyhow::ensure!(
        parsed.scheme() == "https" || (parsed.scheme() == "http" && local),
        "the milestone webhook must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
    );
    Ok(())
}

/// After a counted confirmation of `slug`: claims and announces what the count now reaches.
pub async fn after_confirm(state: &AppState, slug: &str, now: i64) {
    let loaded = state.loaded();
    let Some(policy) = loaded.manifest.site.milestones.as_ref() else {
        return;
    };
    let mails = policy.mail && loaded.manifest.site.contact_email.is_some();
    if !mails && state.0.secrets.milestone_webhook.is_none() {
        return;
    }
    let Some(petition) = loaded.manifest.petition(slug) else {
        return;
    };
    let memo = &state.0.milestones;
    let open: Vec<u32> = policy
        .at
        .iter()
        .copied()
        .filter(|p| !memo.is_taken(slug, &milestone_mark(*p)))
        .collect();
    if open.is_empty() && policy.trending_per_hour.is_none() {
        return;
    }
    let count = match state.0.counts.get(state.0.store.as_ref(), slug).await {
        Ok(c) => c.count,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "milestones: reading the count failed"
            );
            return;
        }
    };
    let title = petition
        .titles
        .get(&loaded.manifest.site.default_language)
        .or_else(|| petition.titles.values().next())
        .cloned()
        .unwrap_or_else(|| slug.to_string());
    let url =
        crate::sign::respond::petition_url(&loaded, &loaded.manifest.site.default_language, slug);
    let goal = petition.goal.max(1);
    let mut events = Vec::new();
    for percent in open {
        if u128::from(count) * 100 < u128::from(goal) * u128::from(percent) {
            continue;
        }
        if claim(state, slug, &milestone_mark(percent), count as i64, now).await {
            events.push(Event::Milestone {
                petition: slug.to_string(),
                title: title.clone(),
                url: url.clone(),
                percent,
                count,
                goal,
                at: now,
            });
        }
    }
    if let Some(threshold) = policy.trending_per_hour {
        if let Some(since_count) = hour_start(state, slug, now, count).await {
            let grown = count.saturating_sub(since_count);
            let hour = now.div_euclid(3600);
            if grown >= threshold.max(1)
                && !memo.is_taken(slug, &trending_mark(hour))
                && claim(state, slug, &trending_mark(hour), grown as i64, now).await
            {
                events.push(Event::Trending {
                    petition: slug.to_string(),
                    title: title.clone(),
                    url: url.clone(),
                    signatures: grown,
                    since: hour * 3600,
                    count,
                    at: now,
                });
            }
        }
    }
    for event in &events {
        announce(state, &loaded, event, mails).await;
    }
}

fn milestone_mark(percent: u32) -> String {
    format!("milestone-{percent}")
}

fn trending_mark(hour: i64) -> String {
    format!("trending-{hour}")
}

/// True when this call took `mark` (and so must announce it); remembered either way.
async fn claim(state: &AppState, slug: &str, mark: &str, value: i64, now: i64) -> bool {
    match state.0.store.mark_once(slug, mark, value, now).await {
        Ok(first) => {
            state.0.milestones.set_taken(slug, mark);
            first.is_none()
        }
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                mark,
                "milestones: the claim failed"
            );
            false
        }
    }
}

/// The count when this hour's first check ran (recorded by it, once per petition and hour).
async fn hour_start(state: &AppState, slug: &str, now: i64, count: u64) -> Option<u64> {
    let hour = now.div_euclid(3600);
    let memo = &state.0.milestones;
    {
        let starts = memo.hour_starts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((h, start)) = starts.get(slug) {
            if *h == hour {
                return Some(*start);
            }
        }
    }
    let first = match state
        .0
        .store
        .mark_once(slug, &format!("hour-{hour}"), count as i64, now)
        .await
    {
        Ok(first) => first.map_or(count, |v| v.max(0) as u64),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "milestones: the hour mark failed");
            return None;
        }
    };
    let mut starts = memo.hour_starts.lock().unwrap_or_else(|e| e.into_inner());
    if starts.len() >= REMEMBERED {
        starts.clear();
    }
    starts.insert(slug.to_string(), (hour, first));
    Some(first)
}

/// Sends `event` on every channel configured; failures are logged.
async fn announce(state: &AppState, loaded: &Loaded, event: &Event, mails: bool) {
    tracing::info!(?event, "milestone");
    if mails {
        if let Some(to) = loaded.manifest.site.contact_email.as_deref() {
            match render_mail(loaded, event, to) {
                Ok(mail) => {
                    if let Err(e) = state.0.mailer.send(&mail).await {
                        tracing::error!(error = format!("{e:#}"), "milestones: the mail failed");
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "milestones: rendering failed"),
            }
        }
    }
    if let Some(url) = state.0.secrets.milestone_webhook.as_deref() {
        if let Err(e) = post_webhook(loaded, url, event).await {
            // The URL is a secret: never in the log.
            tracing::error!(error = format!("{e:#}"), "milestones: the webhook failed");
        }
    }
}

fn render_mail(loaded: &Loaded, event: &Event, to: &str) -> anyhow::Result<Mail> {
    loaded
        .mails
        .render_milestone(&crate::mail_templates::MilestoneContext {
            to,
            lang: &loaded.manifest.site.default_language,
            organization: &loaded.manifest.site.organization,
            event,
        })
}

/// The JSON body posted: the event, plus a `text` line that chat webhooks (Mattermost, Slack,
/// Rocket.Chat, Discord's `content`) show as is.
#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(flatten)]
    event: &'a Event,
    text: String,
    content: String,
}

async fn post_webhook(loaded: &Loaded, url: &str, event: &Event) -> anyhow::Result<()> {
    let text = loaded
        .mails
        .render_milestone(&crate::mail_templates::MilestoneContext {
            to: "webhook@invalid",
            lang: &loaded.manifest.site.default_language,
            organization: &loaded.manifest.site.organization,
            event,
        })?
        .subject;
    let body = WebhookBody {
        event,
        text: text.clone(),
        content: text,
    };
    let client = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cahier/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let res = client
        .post(url)
        .json(&body)
        .send()
        .await
        // reqwest puts the URL in its errors: dropped, since the URL is the secret.
        .map_err(|e| anyhow::anyhow!("the request failed: {}", e.without_url()))?;
    anyhow::ensure!(
        res.status().is_success(),
        "the webhook answered {}",
        res.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_https_or_local() {
        assert!(check_webhook_url("https://chat.example/hooks/abc").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9/hook").is_ok());
        assert!(check_webhook_url("http://[::1]:9/hook").is_ok());
        assert!(check_webhook_url("http://localhost/hook").is_ok());
        for bad in [
            "http://chat.example/hooks/abc",
            "ftp://127.0.0.1/x",
            "hooks.example",
            "",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_serialize_with_their_kind() {
        let e = Event::Milestone {
            petition: "p".into(),
            title: "T".into(),
            url: "https://s.example/p/".into(),
            percent: 50,
            count: 5,
            goal: 10,
            at: 1,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "milestone");
        assert_eq!(v["percent"], 50);
    }
}
