//! Stage 4 of `sign`: the one conditional write. De-duplication on the keyed hash of the
//! canonical e-mail and the durable budgets ([`crate::budgets`]), with the heuristics' flags,
//! the sealed personal data and, should a network budget be exhausted, the queued mail.

use super::decode::Decoded;
use super::Ctx;
use crate::crypto::PersonalData;
use crate::deferred::Letter;
use crate::email::domain_matches;
use crate::heuristics::{assess, HeuristicInput};
use crate::problem::Problem;
use crate::store::{NewSignature, OverBudget, SignOutcome, Status};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// What the write did, for the mail stage.
pub(super) struct Recorded {
    pub email_hash: String,
    /// The e-mail's domain is protected: held for review, mailed distinctly.
    pub protected: bool,
    pub outcome: SignOutcome,
    /// The exhausted budget the store reported and what it does ([`OverBudget`]).
    pub over: Option<(String, OverBudget)>,
}

impl Recorded {
    /// Stored pending with its mail queued behind an exhausted network budget.
    pub fn queued(&self) -> bool {
        matches!(
            self.outcome,
            SignOutcome::Created {
                status: Status::Pending,
                ..
            }
        ) && matches!(self.over, Some((_, OverBudget::Defer)))
    }
}

pub(super) async fn record(
    ctx: &Ctx<'_>,
    d: &Decoded<'_>,
    ip: Option<IpAddr>,
) -> Result<Recorded, Response> {
    let (state, loaded, slug, now) = (ctx.state, ctx.loaded, ctx.slug, ctx.now);
    let hasher = state.hasher();
    let email = &d.email;
    let email_hash = hasher.email(&email.canonical);
    let protected = loaded
        .manifest
        .site
        .protected_domains
        .iter()
        .any(|listed| domain_matches(&email.domain, listed));
    let (ip_hash, prefix_hash) = match ip {
        Some(ip) => (hasher.ip(ip), hasher.prefix(ip)),
        None => (String::new(), String::new()),
    };
    let name_hash = hasher.name(&d.form.name);
    let flags = assess(&HeuristicInput {
        name: &d.form.name,
        email: &email.canonical,
        email_domain: &email.domain,
        website: &d.form.website,
        fill_ms: d.form.fill_ms,
        js: d.wants_json,
        name_hash: &name_hash,
        now,
        disposable: &state.0.disposable,
        burst: Some(&state.0.name_burst),
    });
    let budgets = loaded
        .budgets
        .budgets_for(slug, ip, |label| hasher.budget(label), &email.domain);
    let personal = PersonalData {
        name: d.form.name.clone(),
        email: email.address.clone(),
        fields: d.form.fields.clone(),
        lang: d.lang.clone(),
        text_sha256: d.petition.text_sha256.get(&d.lang).cloned(),
        consent_sha256: d.petition.consent_sha256.get(&d.lang).cloned(),
    };
    let unavailable = |what: &str, e: anyhow::Error| {
        tracing::error!(error = format!("{e:#}"), "{what} failed");
        Problem::unavailable().into_response()
    };
    let sealed = loaded
        .sealer
        .seal(&personal)
        .map_err(|e| unavailable("sealing", e))?;
    // Only a network budget queues; no network (no address) means nothing could queue it.
    let deferred_mail = if ip.is_some() && !protected {
        let letter = Letter {
            to: email.address.clone(),
            lang: d.lang.clone(),
        };
        Some(
            state
                .0
                .letters
                .seal(&letter)
                .map_err(|e| unavailable("sealing a queued mail", e))?,
        )
    } else {
        None
    };
    let listing = crate::signers::PublicEntry::of(d.petition, &d.form, protected)
        .map(|entry| state.0.signer_seal.seal(&entry))
        .transpose()
        .map_err(|e| unavailable("sealing a list entry", e))?;
    let sig = NewSignature {
        petition: slug.to_string(),
        email_hash: email_hash.clone(),
        email_domain: email.domain.clone(),
        ip_hash,
        prefix_hash,
        // The truncated prefix in clear (/24, /48), so organizers can name a network.
        network: match ip {
            Some(ip) if ip != crate::client_ip::UNKNOWN_CLIENT => crate::network::network_of(ip),
            _ => String::new(),
        },
        name_hash,
        sealed,
        lang: d.lang.clone(),
        public: d.form.public,
        newsletter: d.form.newsletter,
        hold_reason: protected.then(|| "protected domain".to_string()),
        flags,
        created_at: now,
        expires_at: now + state.options().pending_ttl_secs,
        budgets,
        deferred_mail,
        listing,
        // From the plaintext form, before only its sealed copy remains.
        region: crate::geography::region_of(d.petition, &d.form),
    };
    let outcome = state
        .0
        .store
        .sign(&sig)
        .await
        .map_err(|e| unavailable("store.sign", e))?;
    let over = match &outcome {
        SignOutcome::Created {
            over_budget: Some(key),
            ..
        } => sig
            .budgets
            .iter()
            .find(|b| &b.key == key)
            .map(|b| (key.clone(), b.over)),
        _ => None,
    };
    let recorded = Recorded {
        email_hash,
        protected,
        outcome,
        over,
    };
    log_decision(&sig, &recorded);
    Ok(recorded)
}

/// The first 12 hex characters of a keyed hash: enough to correlate log lines, never an
/// address or a name.
pub(super) fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// One structured, pseudonymous event per hold, queue, alarm or flag (JSON under Lambda).
fn log_decision(sig: &NewSignature, r: &Recorded) {
    let flags = sig.flags.join(",");
    let budget = r.over.as_ref().map(|(k, _)| k.as_str()).unwrap_or("");
    let decision = match (&r.outcome, r.over.as_ref().map(|(_, o)| *o)) {
        (SignOutcome::Duplicate { .. }, _) => return,
        (
            SignOutcome::Created {
                status: Status::Held,
                ..
            },
            Some(OverBudget::Hold),
        ) => "over_budget",
        (
            SignOutcome::Created {
                status: Status::Held,
                ..
            },
            _,
        ) => "held",
        (_, Some(OverBudget::Defer)) => "mail_queued",
        (_, Some(OverBudget::Alarm)) => "surge",
        _ if !sig.flags.is_empty() => "flagged",
        _ => return,
    };
    tracing::info!(
        target: "cahier::fraud",
        decision,
        petition = %sig.petition,
        budget,
        hold_reason = sig.hold_reason.as_deref().unwrap_or(""),
        email = short(&sig.email_hash),
        prefix = short(&sig.prefix_hash),
        domain = %sig.email_domain,
        flags = %flags,
        "sign decision"
    );
}
