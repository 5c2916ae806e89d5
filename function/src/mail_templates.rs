//! The mails to signers, rendered from the theme's templates — `templates/mail/signer.txt` and
//! `templates/mail/signer.html`, which a site overrides by name like a page — with the
//! `mail_*` strings of the theme's `i18n/<lang>.toml` (the site's `i18n/` overrides keys), in
//! any language the site has. The build bundles both into the petition manifest
//! ([`MailBundle`]) and checks that every mail renders in every language; the function
//! compiles them once per manifest. A manifest without a bundle (built by an older version)
//! gets the default theme's, compiled into this crate from the same files.
//!
//! Strings may hold `{title}` (the petition's title in the mail's language), `{organization}`
//! and `{days}` (how long an unconfirmed signature is kept); they are filled before the
//! template sees them, as `t.<key>`. Templates also get `kind`, `lang`, `subject`, `intro`,
//! `confirm_url` (absent when there is nothing to confirm), `erase_url`, `organization`,
//! `title` and `expiry_days`. The HTML template is escaped as the pages are.

use crate::mailer::Mail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SIGNER_TEXT: &str = "mail/signer.txt";
pub const SIGNER_HTML: &str = "mail/signer.html";
/// An update to signers (`cahier admin mail`): the organizer's text inside the theme's frame.
pub const UPDATE_TEXT: &str = "mail/update.txt";
pub const UPDATE_HTML: &str = "mail/update.html";
/// A milestone or trending alert to the organizers ([`crate::milestones`]).
pub const MILESTONE_TEXT: &str = "mail/milestone.txt";
pub const MILESTONE_HTML: &str = "mail/milestone.html";
/// The templates a theme must provide for mails.
pub const TEMPLATES: &[&str] = &[
    SIGNER_TEXT,
    SIGNER_HTML,
    UPDATE_TEXT,
    UPDATE_HTML,
    MILESTONE_TEXT,
    MILESTONE_HTML,
];
/// The strings of the update frame (`{title}` and `{organization}` filled).
pub const UPDATE_STRINGS: &[&str] = &[
    "mail_update_reason",
    "mail_update_unsubscribe_intro",
    "mail_update_unsubscribe_label",
];
/// The strings of the organizers' alerts: `{title}`, `{organization}`, `{percent}`, `{count}`,
/// `{goal}` and `{signatures}` filled.
pub const MILESTONE_STRINGS: &[&str] = &[
    "mail_milestone_subject",
    "mail_milestone_intro",
    "mail_trending_subject",
    "mail_trending_intro",
    "mail_milestone_footer",
];
/// Prefix of the i18n keys bundled for mails.
pub const STRING_PREFIX: &str = "mail_";
/// Days an unconfirmed signature is kept, as the mails say.
pub const EXPIRY_DAYS: i64 = crate::token::CONFIRM_TTL_SECS / 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A new signature: confirm it (or say it was not you).
    Confirm,
    /// Signed again while still pending: the confirm link once more.
    AlreadySignedPending,
    /// Signed again after confirming: nothing to do, erase link only.
    AlreadyConfirmed,
    /// A protected domain (parliament, government): someone used this address.
    Protected,
}

impl MailKind {
    pub const ALL: [MailKind; 4] = [
        MailKind::Confirm,
        MailKind::AlreadySignedPending,
        MailKind::AlreadyConfirmed,
        MailKind::Protected,
    ];

    /// The name templates see as `kind`, and the middle of its i18n keys
    /// (`mail_<key>_subject`, `mail_<key>_intro`).
    pub fn key(self) -> &'static str {
        match self {
            MailKind::Confirm => "confirm",
            MailKind::AlreadySignedPending => "already_pending",
            MailKind::AlreadyConfirmed => "already_confirmed",
            MailKind::Protected => "protected",
        }
    }
}

/// Every string key a language must have for the mails.
pub fn required_strings() -> Vec<String> {
    let mut keys: Vec<String> = MailKind::ALL
        .iter()
        .flat_map(|k| {
            [
                format!("mail_{}_subject", k.key()),
                format!("mail_{}_intro", k.key()),
            ]
        })
        .collect();
    for k in [
        "mail_confirm_label",
        "mail_erase_intro",
        "mail_erase_label",
        "mail_expiry",
    ]
    .iter()
    .chain(UPDATE_STRINGS)
    .chain(MILESTONE_STRINGS)
    {
        keys.push(k.to_string());
    }
    keys
}

/// What one update is, for one recipient.
#[derive(Debug, Clone)]
pub struct UpdateContext<'a> {
    pub to: &'a str,
    pub lang: &'a str,
    pub organization: &'a str,
    pub title: &'a str,
    pub subject: &'a str,
    /// The organizer's text as written (Markdown reads as plain text).
    pub body_text: &'a str,
    /// The same rendered to HTML and sanitized by the caller; inserted as is.
    pub body_html: &'a str,
    pub petition_url: &'a str,
    /// The page with the unsubscribe button (the visible link).
    pub unsubscribe_url: &'a str,
    /// The RFC 8058 one-click target (`List-Unsubscribe`).
    pub one_click_url: &'a str,
    pub reply_to: Option<&'a str>,
}

/// An alert to the organizers.
#[derive(Debug, Clone)]
pub struct MilestoneContext<'a> {
    pub to: &'a str,
    pub lang: &'a str,
    pub organization: &'a str,
    pub event: &'a crate::milestones::Event,
}

/// What one mail is about.
#[derive(Debug, Clone)]
pub struct MailContext<'a> {
    pub to: &'a str,
    pub lang: &'a str,
    pub organization: &'a str,
    pub title: &'a str,
    pub confirm_url: Option<&'a str>,
    pub erase_url: &'a str,
    /// The collective's contact address, for `Reply-To`.
    pub reply_to: Option<&'a str>,
}

/// The mail templates and strings, as the build bundles them into the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailBundle {
    /// Template name (`mail/signer.txt`) → its source.
    pub templates: BTreeMap<String, String>,
    /// Language → its `mail_*` strings.
    pub strings: BTreeMap<String, BTreeMap<String, String>>,
}

impl MailBundle {
    /// The default theme's mails (English, French, German), for a manifest without a bundle.
    pub fn default_theme() -> MailBundle {
        let templates = BTreeMap::from([
            (
                SIGNER_TEXT.to_string(),
                include_str!("../../themes/default/templates/mail/signer.txt").to_string(),
            ),
            (
                SIGNER_HTML.to_string(),
                include_str!("../../themes/default/templates/mail/signer.html").to_string(),
            ),
            (
                UPDATE_TEXT.to_string(),
                include_str!("../../themes/default/templates/mail/update.txt").to_string(),
            ),
            (
                UPDATE_HTML.to_string(),
                include_str!("../../themes/default/templates/mail/update.html").to_string(),
            ),
            (
                MILESTONE_TEXT.to_string(),
                include_str!("../../themes/default/templates/mail/milestone.txt").to_string(),
            ),
            (
                MILESTONE_HTML.to_string(),
                include_str!("../../themes/default/templates/mail/milestone.html").to_string(),
            ),
        ]);
        let mut strings = BTreeMap::new();
        for (lang, toml_text) in [
            ("en", include_str!("../../themes/default/i18n/en.toml")),
            ("fr", include_str!("../../themes/default/i18n/fr.toml")),
            ("de", include_str!("../../themes/default/i18n/de.toml")),
        ] {
            let all: BTreeMap<String, String> =
                toml::from_str(toml_text).expect("the default theme's i18n files are valid TOML");
            strings.insert(lang.to_string(), mail_strings(&all));
        }
        MailBundle { templates, strings }
    }
}

/// The `mail_*` strings of one language's i18n table.
pub fn mail_strings(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| k.starts_with(STRING_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Escapes text for HTML; unlike Tera's default it leaves `/` alone so URLs stay readable.
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bundle compiled, ready to render.
pub struct MailTemplates {
    tera: tera::Tera,
    strings: BTreeMap<String, BTreeMap<String, String>>,
    default_language: String,
}

impl std::fmt::Debug for MailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTemplates")
            .field("languages", &self.strings.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MailTemplates {
    /// Compiles `bundle`; refuses a missing template or string, then renders every mail in
    /// every language once, so that a broken override fails here and not in front of a signer.
    pub fn compile(bundle: &MailBundle, default_language: &str) -> anyhow::Result<MailTemplates> {
        let bundle = &with_later_defaults(bundle);
        for name in TEMPLATES {
            anyhow::ensure!(
                bundle.templates.contains_key(*name),
                "the mail template {name:?} is missing (the theme's templates/{name})"
            );
        }
        anyhow::ensure!(
            !bundle.strings.is_empty(),
            "the mails have no strings in any language"
        );
        for (lang, strings) in &bundle.strings {
            for key in required_strings() {
                anyhow::ensure!(
                    strings.contains_key(&key),
                    "the mails in {lang:?} lack the string {key:?} (i18n/{lang}.toml)"
                );
            }
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.set_escape_fn(escape_html);
        tera.add_raw_templates(
            bundle
                .templates
                .iter()
                .map(|(n, s)| (n.as_str(), s.as_str())),
        )
        .map_err(|e| anyhow::anyhow!("in the mail templates: {}", chain(&e)))?;
        let compiled = MailTemplates {
            tera,
            strings: bundle.strings.clone(),
            default_language: default_language.to_string(),
        };
        for lang in bundle.strings.keys() {
            for kind in MailKind::ALL {
                compiled.render(
                    kind,
                    &MailContext {
                        to: "signer@example.org",
                        lang,
                        organization: "Collective <&>",
                        title: "A \"petition\" <title>",
                        confirm_url: Some("https://petitions.example/p/confirm/#t=x"),
                        erase_url: "https://petitions.example/p/erase/#t=y",
                        reply_to: None,
                    },
                )?;
            }
            compiled.render_update(&UpdateContext {
                to: "signer@example.org",
                lang,
                organization: "Collective <&>",
                title: "A \"petition\" <title>",
                subject: "News <&>",
                body_text: "Some *news*.",
                body_html: "<p>Some <em>news</em>.</p>",
                petition_url: "https://petitions.example/p/",
                unsubscribe_url: "https://petitions.example/unsubscribe/#t=z",
                one_click_url: "https://petitions.example/api/unsubscribe?t=z",
                reply_to: None,
            })?;
            for event in crate::milestones::Event::examples() {
                compiled.render_milestone(&MilestoneContext {
                    to: "team@example.org",
                    lang,
                    organization: "Collective <&>",
                    event: &event,
                })?;
            }
        }
        Ok(compiled)
    }

    /// Renders one update in `ctx.lang` (else the default language), with its one-click
    /// unsubscribe headers. Not `Auto-Submitted`: a person wrote it, to people who may answer.
    pub fn render_update(&self, ctx: &UpdateContext<'_>) -> anyhow::Result<Mail> {
        let (lang, strings) = self.strings_for(ctx.lang);
        let fill = |s: &str| {
            s.replace("{title}", ctx.title)
                .replace("{organization}", ctx.organization)
        };
        let t: BTreeMap<&str, String> =
            strings.iter().map(|(k, v)| (k.as_str(), fill(v))).collect();
        let subject = one_line(ctx.subject);
        let mut c = tera::Context::new();
        c.insert("kind", "update");
        c.insert("lang", lang);
        c.insert("subject", &subject);
        c.insert("t", &t);
        c.insert("body_text", ctx.body_text);
        c.insert("body_html", ctx.body_html);
        c.insert("petition_url", ctx.petition_url);
        c.insert("unsubscribe_url", ctx.unsubscribe_url);
        c.insert("organization", ctx.organization);
        c.insert("title", ctx.title);
        let render = |name: &str| {
            self.tera.render(name, &c).map_err(|e| {
                anyhow::anyhow!("while rendering the update mail in {lang}: {}", chain(&e))
            })
        };
        Ok(Mail {
            to: ctx.to.to_string(),
            subject,
            text: render(UPDATE_TEXT)?,
            html: render(UPDATE_HTML)?,
            from_name: Some(ctx.organization.to_string()),
            reply_to: ctx.reply_to.map(str::to_string),
            auto_submitted: false,
            list_unsubscribe: Some(ctx.one_click_url.to_string()),
        })
    }

    /// Renders an alert to the organizers in `ctx.lang` (the site's default language).
    pub fn render_milestone(&self, ctx: &MilestoneContext<'_>) -> anyhow::Result<Mail> {
        use crate::milestones::Event;
        let (lang, strings) = self.strings_for(ctx.lang);
        let (kind, title, url, count, percent, goal, signatures) = match ctx.event {
            Event::Milestone {
                title,
                url,
                percent,
                count,
                goal,
                ..
            } => ("milestone", title, url, *count, *percent, *goal, 0),
            Event::Trending {
                title,
                url,
                signatures,
                count,
                ..
            } => ("trending", title, url, *count, 0, 0, *signatures),
        };
        let number = |n: u64| n.to_string();
        let fill = |s: &str| {
            s.replace("{title}", title)
                .replace("{organization}", ctx.organization)
                .replace("{percent}", &percent.to_string())
                .replace("{count}", &number(count))
                .replace("{goal}", &number(goal))
                .replace("{signatures}", &number(signatures))
        };
        let t: BTreeMap<&str, String> =
            strings.iter().map(|(k, v)| (k.as_str(), fill(v))).collect();
        let subject = one_line(&t[format!("mail_{kind}_subject").as_str()]);
        let mut c = tera::Context::new();
        c.insert("kind", kind);
        c.insert("lang", lang);
        c.insert("subject", &subject);
        c.insert("intro", &t[format!("mail_{kind}_intro").as_str()]);
        c.insert("t", &t);
        c.insert("event", ctx.event);
        c.insert("petition_url", url);
        c.insert("organization", ctx.organization);
        c.insert("title", title);
        let render = |name: &str| {
            self.tera.render(name, &c).map_err(|e| {
                anyhow::anyhow!("while rendering the {kind} mail in {lang}: {}", chain(&e))
            })
        };
        Ok(Mail {
            to: ctx.to.to_string(),
            subject,
            text: render(MILESTONE_TEXT)?,
            html: render(MILESTONE_HTML)?,
            from_name: Some(ctx.organization.to_string()),
            reply_to: None,
            auto_submitted: true,
            list_unsubscribe: None,
        })
    }

    /// The strings of `lang`, else of the default language, else of any.
    fn strings_for(&self, lang: &str) -> (&String, &BTreeMap<String, String>) {
        self.strings
            .get_key_value(lang)
            .or_else(|| self.strings.get_key_value(&self.default_language))
            .or_else(|| self.strings.iter().next())
            .expect("compile refuses a bundle without strings")
    }

    /// The languages mails can be written in.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.strings.keys().map(String::as_str)
    }

    /// Renders one mail in `ctx.lang`, else in the site's default language, else in any.
    pub fn render(&self, kind: MailKind, ctx: &MailContext<'_>) -> anyhow::Result<Mail> {
        let (lang, strings) = self.strings_for(ctx.lang);
        let days = EXPIRY_DAYS.to_string();
        let fill = |s: &str| {
            s.replace("{title}", ctx.title)
                .replace("{organization}", ctx.organization)
                .replace("{days}", &days)
        };
        let t: BTreeMap<&str, String> =
            strings.iter().map(|(k, v)| (k.as_str(), fill(v))).collect();
        let subject = one_line(&t[format!("mail_{}_subject", kind.key()).as_str()]);
        let intro = t[format!("mail_{}_intro", kind.key()).as_str()].clone();
        let confirm_url = match kind {
            MailKind::AlreadyConfirmed => None,
            _ => ctx.confirm_url,
        };
        let mut c = tera::Context::new();
        c.insert("kind", kind.key());
        c.insert("lang", lang);
        c.insert("subject", &subject);
        c.insert("intro", &intro);
        c.insert("t", &t);
        c.insert("confirm_url", &confirm_url);
        c.insert("erase_url", ctx.erase_url);
        c.insert("organization", ctx.organization);
        c.insert("title", ctx.title);
        c.insert("expiry_days", &EXPIRY_DAYS);
        let render = |name: &str| {
            self.tera.render(name, &c).map_err(|e| {
                anyhow::anyhow!(
                    "while rendering the {} mail in {lang}: {}",
                    kind.key(),
                    chain(&e)
                )
            })
        };
        Ok(Mail {
            to: ctx.to.to_string(),
            subject,
            text: render(SIGNER_TEXT)?,
            html: render(SIGNER_HTML)?,
            from_name: Some(ctx.organization.to_string()),
            reply_to: ctx.reply_to.map(str::to_string),
            auto_submitted: true,
            list_unsubscribe: None,
        })
    }
}

/// A subject on one line: a header cannot hold a line break.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mails added after the first manifests: their templates and strings, one group each.
const LATER_MAILS: &[(&[&str], &[&str])] = &[
    (&[UPDATE_TEXT, UPDATE_HTML], UPDATE_STRINGS),
    (&[MILESTONE_TEXT, MILESTONE_HTML], MILESTONE_STRINGS),
];

/// A bundle from a manifest built before a mail existed lacks its templates and strings: the
/// default theme's stand in, so such a manifest still loads. A bundle with any template of a
/// group is from a build that knows that mail: checked as is.
fn with_later_defaults(bundle: &MailBundle) -> MailBundle {
    let mut b = bundle.clone();
    let defaults = MailBundle::default_theme();
    for (templates, keys) in LATER_MAILS {
        if templates.iter().any(|n| b.templates.contains_key(*n)) {
            continue;
        }
        for name in *templates {
            b.templates
                .entry(name.to_string())
                .or_insert_with(|| defaults.templates[*name].clone());
        }
        for (lang, strings) in b.strings.iter_mut() {
            let from = defaults
                .strings
                .get(lang)
                .unwrap_or(&defaults.strings["en"]);
            for k in *keys {
                if !strings.contains_key(*k) {
                    strings.insert(k.to_string(), from[*k].clone());
                }
            }
        }
    }
    b
}

/// A Tera error with its causes (Tera puts the useful part in the source).
fn chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(lang: &str) -> MailContext<'_> {
        MailContext {
            to: "a@b.org",
            lang,
            organization: "Collectif <X>",
            title: "Noël",
            confirm_url: Some("https://s.example/p/confirm/#t=abc"),
            erase_url: "https://s.example/p/erase/#t=def",
            reply_to: Some("contact@s.example"),
        }
    }

    #[test]
    fn the_default_theme_in_french_and_english_with_links() {
        let mails = MailTemplates::compile(&MailBundle::default_theme(), "fr").unwrap();
        let m = mails.render(MailKind::Confirm, &ctx("fr")).unwrap();
        assert_eq!(m.subject, "Confirmez votre signature : Noël");
        assert!(m.text.contains("#t=abc") && m.text.contains("#t=def"));
        assert!(m.text.contains("au bout de 7 jours"), "{}", m.text);
        assert!(m.html.contains("Collectif &lt;X&gt;"), "{}", m.html);
        assert!(m.html.contains("href=\"https://s.example/p/erase/#t=def\""));
        assert!(m.html.starts_with("<!doctype html>\n<html lang=\"fr\">"));
        let en = mails.render(MailKind::Protected, &ctx("en")).unwrap();
        assert!(en.subject.starts_with("Someone used your address"));
        assert!(
            en.text.contains("unless Collectif <X> reviews it"),
            "{}",
            en.text
        );
        let done = mails
            .render(MailKind::AlreadyConfirmed, &ctx("fr"))
            .unwrap();
        assert!(!done.text.contains("#t=abc") && done.text.contains("#t=def"));
        assert!(
            !done.text.contains("7 jours"),
            "nothing to confirm, nothing expires"
        );
        let de = mails.render(MailKind::Confirm, &ctx("de")).unwrap();
        assert_eq!(de.subject, "Bestätigen Sie Ihre Unterschrift: Noël");
        // A language the site does not have: the default language.
        let other = mails.render(MailKind::Confirm, &ctx("it")).unwrap();
        assert!(other.subject.starts_with("Confirmez"));
    }

    #[test]
    fn an_update_has_its_frame_in_the_signers_language_and_one_click_headers() {
        let mails = MailTemplates::compile(&MailBundle::default_theme(), "fr").unwrap();
        let ctx = |lang| UpdateContext {
            to: "a@b.org",
            lang,
            organization: "Collectif <X>",
            title: "Noël",
            subject: "Audience\r\nBcc: x@evil.example",
            body_text: "We **won**.",
            body_html: "<p>We <strong>won</strong>.</p>",
            petition_url: "https://s.example/noel/",
            unsubscribe_url: "https://s.example/en/unsubscribe/#t=u",
            one_click_url: "https://s.example/api/unsubscribe?t=u",
            reply_to: Some("contact@s.example"),
        };
        let en = mails.render_update(&ctx("en")).unwrap();
        assert_eq!(en.subject, "Audience Bcc: x@evil.example", "one line");
        assert!(en
            .text
            .contains("You receive this because you signed the petition \"Noël\""));
        assert!(
            en.text.contains("https://s.example/en/unsubscribe/#t=u"),
            "{}",
            en.text
        );
        assert!(
            en.html.contains("<p>We <strong>won</strong>.</p>"),
            "{}",
            en.html
        );
        assert!(en.html.contains("Collectif &lt;X&gt;"), "{}", en.html);
        assert_eq!(
            en.list_unsubscribe.as_deref(),
            Some("https://s.example/api/unsubscribe?t=u")
        );
        assert!(!en.auto_submitted);
        let fr = mails.render_update(&ctx("fr")).unwrap();
        assert!(fr
            .text
            .contains("Pour ne plus recevoir de nouvelles de Collectif <X>"));
        let de = mails.render_update(&ctx("de")).unwrap();
        assert!(de.text.contains("abmelden") || de.html.contains("abmelden"));
        // A manifest from before updates: the default theme's frame stands in.
        let mut old = MailBundle::default_theme();
        old.templates.remove(UPDATE_TEXT);
        old.templates.remove(UPDATE_HTML);
        for s in old.strings.values_mut() {
            s.retain(|k, _| !k.starts_with("mail_update_"));
        }
        assert!(MailTemplates::compile(&old, "fr").is_ok());
        // A theme with an update template but not the strings is refused.
        let mut broken = MailBundle::default_theme();
        broken
            .strings
            .get_mut("de")
            .unwrap()
            .remove("mail_update_reason");
        let e = MailTemplates::compile(&broken, "fr")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mail_update_reason"), "{e}");
    }

    #[test]
    fn an_override_in_another_language_is_rendered_and_a_broken_one_refused() {
        let mut bundle = MailBundle::default_theme();
        let mut de = bundle.strings["en"].clone();
        de.insert(
            "mail_confirm_subject".into(),
            "Bestätigen Sie Ihre Unterschrift: {title}".into(),
        );
        bundle.strings.insert("de".into(), de);
        bundle.templates.insert(
            SIGNER_TEXT.into(),
            "{{ kind }}|{{ lang }}|{{ intro }}|{{ erase_url }}".into(),
        );
        let mails = MailTemplates::compile(&bundle, "en").unwrap();
        let m = mails.render(MailKind::Confirm, &ctx("de")).unwrap();
        assert_eq!(m.subject, "Bestätigen Sie Ihre Unterschrift: Noël");
        assert!(m.text.starts_with("confirm|de|Thank you"), "{}", m.text);

        let mut broken = bundle.clone();
        broken
            .templates
            .insert(SIGNER_HTML.into(), "{{ t.mail_no_such_key }}".into());
        let e = MailTemplates::compile(&broken, "en")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mail_no_such_key"), "{e}");
        let mut missing = bundle;
        missing
            .strings
            .get_mut("de")
            .unwrap()
            .remove("mail_erase_label");
        let e = MailTemplates::compile(&missing, "en")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"de\"") && e.contains("mail_erase_label"),
            "{e}"
        );
    }
}
