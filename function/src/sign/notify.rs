//! Stage 5 of `sign` (and of a confirmation that releases queued mails): the e-mail, only when
//! the write created a pending signature, or a reminder is due, and the per-domain mail budget
//! allows it.

use super::record::{short, Recorded};
use super::respond::page_url;
use super::Ctx;
use crate::mail_templates::{MailContext, MailKind};
use crate::manifest::Petition;
use crate::store::{AuditEvent, Budget, QueuedMail, SignOutcome, Status};
use crate::token::{TokenClaims, TokenKind, CONFIRM_TTL_SECS};

/// One mail to send.
pub(super) struct Letter<'a> {
    pub petition: &'a Petition,
    pub lang: &'a str,
    /// The address the mail goes to (tags and dots as typed; not the dedup key).
    pub to: &'a str,
    pub email_hash: &'a str,
    pub kind: MailKind,
}

/// Which mail a sign outcome warrants, if any (the daily reminder budget taken for duplicates).
async fn mail_kind(ctx: &Ctx<'_>, r: &Recorded) -> Option<MailKind> {
    match r.outcome {
        SignOutcome::Created { .. } if r.queued() => None,
        SignOutcome::Created {
            status: Status::Pending,
            ..
        } => Some(MailKind::Confirm),
        SignOutcome::Created {
            status: Status::Held,
            over_budget: None,
        } if r.protected => Some(MailKind::Protected),
        SignOutcome::Created { .. } => None,
        SignOutcome::Duplicate { status } => {
            let kind = match status {
                Status::Pending | Status::Held if r.protected => MailKind::Protected,
                Status::Pending | Status::Held => MailKind::AlreadySignedPending,
                Status::Confirmed | Status::ConfirmedHeld => MailKind::AlreadyConfirmed,
                Status::Invalidated | Status::Erased => return None,
            };
            let daily = Budget::new(format!("remind:{}:{}", r.email_hash, ctx.slug), 1, 86_400);
            let due = ctx
                .state
                .0
                .store
                .take_budget(&daily, ctx.now)
                .await
                .unwrap_or(false);
            due.then_some(kind)
        }
    }
}

/// The sign path's mail, after the write.
pub(super) async fn notify(ctx: &Ctx<'_>, petition: &Petition, lang: &str, to: &str, r: &Recorded) {
    if let Some(kind) = mail_kind(ctx, r).await {
        let letter = Letter {
            petition,
            lang,
            to,
            email_hash: &r.email_hash,
            kind,
        };
        send_within_budget(ctx, &letter).await;
    }
}

/// Sends `letter` if the recipient's registrable domain still has mail budget. For the large
/// providers that budget is an alarm, not a gate: an attacker must not be able to stop every
/// honest signer's mail by draining it, and what reaches this point is already within its own
/// network's budget (the suspicious share was queued before).
pub(super) async fn send_within_budget(ctx: &Ctx<'_>, letter: &Letter<'_>) -> bool {
    if undeliverable(ctx, letter).await {
        return false;
    }
    let policy = &ctx.loaded.budgets;
    let domain = letter.to.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let budget = policy.mail_budget(domain);
    let within = ctx
        .state
        .0
        .store
        .take_budget(&budget, ctx.now)
        .await
        .unwrap_or(false);
    let alarm_only = policy.is_large_provider(domain);
    if !within {
        tracing::info!(
            target: "cahier::fraud",
            decision = if alarm_only { "mail_surge" } else { "mail_over_budget" },
            petition = ctx.slug,
            budget = %budget.key,
            email = short(letter.email_hash),
            "the per-domain mail budget is exhausted"
        );
    }
    if !(within || alarm_only) || !under_site_ceiling(ctx, letter).await {
        return false;
    }
    send_mail(ctx, letter).await;
    true
}

/// Takes one unit of the site-wide mail ceiling ([`crate::budgets::BudgetPolicy::mail_site`]).
/// When it is spent the mail is logged as `mail_ceiling` (the alarm), and refused only if the
/// site made the ceiling hard (`mail_site_hard`): by default an attacker who drains it must
/// not silence every honest signer of every petition. A failed read sends: a store that
/// cannot count is already an alarm of its own.
async fn under_site_ceiling(ctx: &Ctx<'_>, letter: &Letter<'_>) -> bool {
    let policy = &ctx.loaded.budgets;
    let budget = policy.site_mail_budget();
    match ctx.state.0.store.take_budget(&budget, ctx.now).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(
                target: "cahier::fraud",
                decision = "mail_ceiling",
                petition = ctx.slug,
                budget = %budget.key,
                email = short(letter.email_hash),
                sent = !policy.mail_site_hard,
                "the site-wide mail ceiling is reached"
            );
            !policy.mail_site_hard
        }
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "the site-wide mail ceiling could not be read"
            );
            true
        }
    }
}

/// True if this exact address bounced for good, or its owner complained
/// ([`crate::mail_events`]: bounces are keyed by the delivered address, complaints by the
/// person): its mail is not sent, and takes no mail budget. An unsubscribe is not enough: it
/// stops updates, not the confirmation of a new signature. The signer still gets the same
/// answer as everyone; a failed read of the list sends (one bounce is cheaper than a lost
/// confirmation).
async fn undeliverable(ctx: &Ctx<'_>, letter: &Letter<'_>) -> bool {
    use crate::store::SuppressionReason;
    let delivered = ctx.state.hasher().email(letter.to);
    let mut reason = None;
    for key in [delivered.as_str(), letter.email_hash] {
        match ctx.state.0.store.suppression(key).await {
            Ok(Some(e))
                if matches!(
                    e.reason,
                    SuppressionReason::Bounced | SuppressionReason::Complained
                ) =>
            {
                reason = Some(e.reason);
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "reading the suppression list failed"
                );
            }
        }
        if delivered == letter.email_hash {
            break;
        }
    }
    let Some(reason) = reason else {
        return false;
    };
    tracing::info!(
        target: "cahier::fraud",
        decision = "mail_suppressed",
        petition = ctx.slug,
        reason = reason.as_str(),
        email = short(letter.email_hash),
        "not mailed: the address is on the suppression list"
    );
    true
}

/// Renders and sends one mail with fresh confirm and erase links; records `mailed`.
pub(super) async fn send_mail(ctx: &Ctx<'_>, letter: &Letter<'_>) {
    let (state, loaded, now) = (ctx.state, ctx.loaded, ctx.now);
    let petition = letter.petition;
    let keys = state.token_key();
    let claims = |kind, expires_at| TokenClaims {
        kind,
        petition: petition.slug.clone(),
        email_hash: letter.email_hash.to_string(),
        expires_at,
    };
    let confirm = keys.issue(&claims(TokenKind::Confirm, now + CONFIRM_TTL_SECS));
    let retention = (loaded.manifest.site.retention_days.max(30) as i64) * 86_400;
    let erase = keys.issue(&claims(TokenKind::Erase, now + retention));
    let confirm_url = format!(
        "{}#t={confirm}",
        page_url(loaded, letter.lang, &petition.slug, "confirm")
    );
    let erase_url = format!(
        "{}#t={erase}",
        page_url(loaded, letter.lang, &petition.slug, "erase")
    );
    let title = petition
        .titles
        .get(letter.lang)
        .or_else(|| petition.titles.values().next())
        .map(String::as_str)
        .unwrap_or(&petition.slug);
    let rendered = loaded.mails.render(
        letter.kind,
        &MailContext {
            to: letter.to,
            lang: letter.lang,
            organization: &loaded.manifest.site.organization,
            title,
            confirm_url: Some(&confirm_url),
            erase_url: &erase_url,
            reply_to: loaded.manifest.site.contact_email.as_deref(),
        },
    );
    // Every mail rendered once when the manifest was loaded: this is not expected to fail.
    let mail = match rendered {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "rendering a mail failed");
            return;
        }
    };
    match state.0.mailer.send(&mail).await {
        Ok(()) => {
            let event = AuditEvent {
                petition: petition.slug.clone(),
                email_hash: letter.email_hash.to_string(),
                event: "mailed".to_string(),
                at: now,
                detail: format!("{:?}", letter.kind),
            };
            if let Err(e) = state.0.store.audit(&event).await {
                tracing::warn!(error = %e, "audit of a sent mail failed");
            }
        }
        Err(e) => tracing::error!(error = format!("{e:#}"), "sending a mail failed"),
    }
}

/// After a first confirmation: sends the mails it released from the queue of its network
/// ([`crate::store::Store::confirm_and_release`], [`crate::deferred::RELEASED_PER_CONFIRMATION`]
/// at most).
pub(crate) async fn send_released(ctx: &Ctx<'_>, released: Vec<QueuedMail>) {
    let Some(petition) = ctx.loaded.manifest.petition(ctx.slug) else {
        return;
    };
    for queued in released {
        let letter = match ctx.state.0.letters.open(&queued.sealed) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "a queued mail could not be opened"
                );
                continue;
            }
        };
        tracing::info!(
            target: "cahier::fraud",
            decision = "mail_released",
            petition = ctx.slug,
            email = short(&queued.email_hash),
            "a queued mail is released by a confirmation from its network"
        );
        let letter = Letter {
            petition,
            lang: &letter.lang,
            to: &letter.to,
            email_hash: &queued.email_hash,
            kind: MailKind::Confirm,
        };
        send_within_budget(ctx, &letter).await;
    }
}
