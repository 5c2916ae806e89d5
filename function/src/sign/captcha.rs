//! Stage 3 of `sign`: the captcha (paid, fail closed, single use), then the block lists.
//!
//! The block lists come after the captcha: answered before it, a blocked domain's 202 (against
//! the 403 of a forged captcha) would tell anyone which domains are blocked, for free.

use super::decode::Decoded;
use crate::email::domain_matches;
use crate::problem::Problem;
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// What the screening after the captcha found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Screened {
    /// Go on to the write.
    Pass,
    /// On a block list: dropped silently (the client still sees the one 202).
    Blocked,
}

pub(super) async fn captcha_then_block_lists(
    state: &AppState,
    d: &Decoded<'_>,
    ip: Option<IpAddr>,
) -> Result<Screened, Response> {
    if !state.0.captcha.verify(&d.form.captcha, ip).await {
        return Err(
            Problem::forbidden("The captcha was not solved; please try again.").into_response(),
        );
    }
    let blocked = state
        .options()
        .blocked_domains
        .iter()
        .any(|listed| domain_matches(&d.email.domain, listed));
    Ok(if blocked {
        Screened::Blocked
    } else {
        Screened::Pass
    })
}
