//! Command-line criteria → [`Criteria`]: times, IP prefixes hashed with the pepper, statuses.

use super::AdminKeys;
use anyhow::Context;
use cahier_function::store::admin::Criteria;
use cahier_function::store::Status;
use ipnet::IpNet;
use std::net::IpAddr;

/// At most this many stored prefixes (/24 or /48) behind one `--ip-prefix`.
const MAX_EXPANSION: usize = 4096;

/// Which signatures a bulk command or report means.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CriteriaArgs {
    /// Only this petition (slug).
    #[arg(long)]
    pub petition: Option<String>,
    /// Created at or after: RFC 3339 (`2020-11-17T18:00:00Z`), a date (`2020-11-17`, UTC), Unix
    /// seconds, or relative to now (`-2h`, `-30m`, `-3d`).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Created before (same forms as `--from`).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// An IP network (CIDR, /24 or wider for IPv4, /48 or wider for IPv6); hashed with the
    /// pepper before querying, never stored. Repeatable.
    #[arg(long = "ip-prefix", value_name = "CIDR")]
    pub ip_prefix: Vec<IpNet>,
    /// E-mail domain (`example.org`).
    #[arg(long)]
    pub domain: Option<String>,
    /// Regular expression on the signer's name, matched after local decryption (needs
    /// `--identity`).
    #[arg(long, value_name = "REGEX")]
    pub name_pattern: Option<String>,
    /// One signer's e-mail address (canonicalised and hashed, never stored).
    #[arg(long)]
    pub email: Option<String>,
    /// Heuristic flag (`honeypot`, `fast_fill`, `name_burst`…). Repeatable: any of them.
    #[arg(long = "flag")]
    pub flags: Vec<String>,
    /// Status. Repeatable; default depends on the command.
    #[arg(long = "status", value_enum)]
    pub statuses: Vec<StatusArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Confirmed,
    Held,
    ConfirmedHeld,
    Invalidated,
    Erased,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Status {
        match s {
            StatusArg::Pending => Status::Pending,
            StatusArg::Confirmed => Status::Confirmed,
            StatusArg::Held => Status::Held,
            StatusArg::ConfirmedHeld => Status::ConfirmedHeld,
            StatusArg::Invalidated => Status::Invalidated,
            StatusArg::Erased => Status::Erased,
        }
    }
}

impl CriteriaArgs {
    /// Builds the store criteria; hashes prefixes and the e-mail with `keys`.
    pub fn to_criteria(&self, keys: &AdminKeys, now: i64) -> anyhow::Result<Criteria> {
        let mut prefix_hashes = Vec::new();
        for net in &self.ip_prefix {
            prefix_hashes.extend(
                expand_prefix(*net)?
                    .into_iter()
                    .map(|ip| (keys.prefix_hash)(ip)),
            );
        }
        let email_hash = match &self.email {
            Some(e) => {
                let canonical =
                    (keys.canonical_email)(e).with_context(|| format!("--email {e:?}"))?;
                Some((keys.email_hash)(&canonical))
            }
            None => None,
        };
        let name_pattern = match &self.name_pattern {
            Some(p) => Some(regex::Regex::new(p).with_context(|| format!("--name-pattern {p:?}"))?),
            None => None,
        };
        let from = self
            .from
            .as_deref()
            .map(|s| parse_time(s, now).context("--from"))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .map(|s| parse_time(s, now).context("--to"))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            anyhow::ensure!(f < t, "--from must be before --to");
        }
        Ok(Criteria {
            petition: self.petition.clone(),
            from,
            to,
            prefix_hashes,
            email_domain: self.domain.as_ref().map(|d| d.trim().to_ascii_lowercase()),
            email_hash,
            flags: self.flags.clone(),
            statuses: self.statuses.iter().map(|s| Status::from(*s)).collect(),
            name_pattern,
            over_budget_only: false,
        })
    }
}

/// The stored prefixes (/24 IPv4, /48 IPv6 network addresses) a CIDR covers. Signatures record
/// only those, so a narrower CIDR cannot be matched and is refused.
pub fn expand_prefix(net: IpNet) -> anyhow::Result<Vec<IpAddr>> {
    let stored = match net {
        IpNet::V4(_) => 24,
        IpNet::V6(_) => 48,
    };
    anyhow::ensure!(
        net.prefix_len() <= stored,
        "--ip-prefix {net}: signatures record only the /{stored} of an address; give a /{stored} or wider"
    );
    let count = 1usize
        .checked_shl(u32::from(stored - net.prefix_len()))
        .unwrap_or(usize::MAX);
    anyhow::ensure!(
        count <= MAX_EXPANSION,
        "--ip-prefix {net} covers {count} /{stored} networks; at most {MAX_EXPANSION} at once"
    );
    let subnets = net
        .trunc()
        .subnets(stored)
        .with_context(|| format!("--ip-prefix {net}"))?;
    Ok(subnets.map(|n| n.network()).collect())
}

/// RFC 3339, a UTC date, Unix seconds, or `-<n><s|m|h|d>` relative to `now`.
pub fn parse_time(s: &str, now: i64) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('-') {
        let (n, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: i64 = n
            .parse()
            .with_context(|| format!("bad relative time {s:?}"))?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => anyhow::bail!("bad relative time {s:?}: use s, m, h or d, e.g. -2h"),
        };
        return Ok(now - n * secs);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().with_context(|| format!("bad Unix time {s:?}"));
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    anyhow::bail!("bad time {s:?}: use RFC 3339 (2020-11-17T18:00:00Z), a date (2020-11-17), Unix seconds or -2h")
}

/// `2020-11-17 18:00:00Z`, for tables.
pub fn format_time(t: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_else(|| t.to_string())
}

/// RFC 3339, for CSV and JSON.
pub fn rfc3339(t: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}
