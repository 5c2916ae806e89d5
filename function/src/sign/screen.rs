//! Stage 2 of `sign`: the in-memory token buckets per client address and prefix (no I/O).

use crate::problem::Problem;
use crate::state::AppState;
use std::net::IpAddr;

/// 429 with `Retry-After` when the address or its prefix is over its bucket. No address (none
/// we can trust): nothing to bucket here; the durable budgets still apply.
pub(super) fn screen(state: &AppState, ip: Option<IpAddr>) -> Result<(), Problem> {
    if let Some(ip) = ip {
        if let Err(retry) = state.0.limiter.check(ip) {
            return Err(Problem::too_many_requests(retry));
        }
    }
    Ok(())
}
