//! `public/api/manifest.json`: the generator's promise to the signing function about every
//! petition (see `cahier_function::manifest`).

use crate::config::{Config, Signing};
use crate::content::Content;
use crate::integrity::sha256_hex;
use crate::pages::{consent_text, petition_text, texts_by_lang};
use crate::theme::Theme;
use cahier_function::manifest::{Field, Manifest, Petition, SiteInfo, MANIFEST_VERSION};

pub fn build(cfg: &Config, content: &Content, theme: &Theme) -> Manifest {
    let site = SiteInfo {
        base_url: cfg.base_url.clone(),
        api_url: cfg.api_url(),
        origins: cfg.origins(),
        default_language: cfg.default_language().to_string(),
        languages: cfg.languages.clone(),
        organization: cfg.organization.name.clone(),
        contact_email: Some(cfg.organization.email.trim().to_string()).filter(|e| e.contains('@')),
        captcha_provider: cfg.captcha.provider.clone(),
        captcha_sitekey: cfg.captcha.sitekey.clone(),
        protected_domains: cfg.protected_domains.clone(),
        allowed_domains: cfg.allowed_domains.clone(),
        retention_days: cfg.retention_days,
        age_recipient: cfg.age_recipient.clone(),
        signing: (cfg.signing == Signing::Paused).then(|| "paused".to_string()),
        budgets: cfg.budgets.clone(),
        log_public_key: cfg.log_public_key.clone(),
        milestones: cfg
            .milestones
            .as_ref()
            .map(|m| m.policy(cfg.organization.email.contains('@'))),
    };
    let petitions = content
        .petitions
        .iter()
        .map(|p| Petition {
            slug: p.slug.clone(),
            languages: cfg
                .languages
                .iter()
                .filter(|l| p.texts.contains_key(*l))
                .cloned()
                .collect(),
            titles: texts_by_lang(p, |l| p.texts[l].title.clone()),
            opens_at: p.opens_at(),
            closes_at: p.closes_at(),
            goal: p.meta.goal,
            fields: p
                .meta
                .fields
                .iter()
                .map(|f| Field {
                    name: f.name.clone(),
                    kind: f.kind(),
                    required: f.required,
                    max_len: f.max_len(),
                })
                .collect(),
            public_signers: p.meta.public_signers,
            public_city: p.meta.public_city,
            geography_threshold: p.meta.geography_threshold(),
            newsletter: p.meta.newsletter.is_some(),
            text_sha256: texts_by_lang(p, |l| sha256_hex(petition_text(p, l).as_bytes())),
            consent_sha256: texts_by_lang(p, |l| {
                sha256_hex(consent_text(cfg, &theme.strings[l], p, l).as_bytes())
            }),
        })
        .collect();
    Manifest {
        version: MANIFEST_VERSION,
        site,
        petitions,
        mails: Some(theme.mails.clone()),
    }
}

pub fn to_json(m: &Manifest) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(m).expect("serializable");
    v.push(b'\n');
    v
}
