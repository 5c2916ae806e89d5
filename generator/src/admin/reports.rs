//! `stats` and `trending`: reports over a scan, the same on every store.

use super::criteria::{expand_prefix, format_time, rfc3339};
use super::out::{short, table};
use super::Ctx;
use cahier_function::store::admin::Criteria;
use cahier_function::store::report::{hour_of, Stats, TrendRow, Trending};
use ipnet::IpNet;
use serde_json::json;
use std::collections::HashMap;
use std::process::ExitCode;

pub async fn stats(
    ctx: &mut Ctx<'_>,
    petition: Option<String>,
    hours: u32,
) -> anyhow::Result<ExitCode> {
    let criteria = Criteria {
        petition,
        ..Default::default()
    };
    let mut stats = Stats::default();
    ctx.store.scan(&criteria, &mut |r| stats.add(&r)).await?;
    let mut counters = HashMap::new();
    for p in stats.petitions.keys() {
        counters.insert(p.clone(), ctx.store.count(p).await?.count);
    }
    let since = hour_of(ctx.now) - i64::from(hours.saturating_sub(1)) * 3600;
    // Site-wide: who asked to hear no more, and the mailboxes SES reported gone or annoyed.
    let suppressed = ctx.store.suppression_counts().await?;

    if ctx.json {
        let petitions: Vec<_> = stats
            .petitions
            .values()
            .map(|p| {
                let mut v = serde_json::to_value(p).expect("plain data");
                v["counter"] = json!(counters[&p.petition]);
                v["per_hour"] = p
                    .per_hour
                    .range(since..)
                    .map(|(h, n)| (rfc3339(*h), json!(n)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                v
            })
            .collect();
        ctx.print_json(&json!({
            "generated_at": rfc3339(ctx.now),
            "petitions": petitions,
            "suppression_list": suppressed,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }

    let headers = [
        "petition",
        "pending",
        "confirmed",
        "held",
        "held, confirmed",
        "invalidated",
        "erased",
        "flagged",
        "total",
        "counter",
    ];
    let rows = stats.petitions.values().map(|p| {
        vec![
            p.petition.clone(),
            p.pending.to_string(),
            p.confirmed.to_string(),
            p.held.to_string(),
            p.confirmed_held.to_string(),
            p.invalidated.to_string(),
            p.erased.to_string(),
            p.flagged.to_string(),
            p.total.to_string(),
            counters[&p.petition].to_string(),
        ]
    });
    writeln!(ctx.out, "{}", table(&headers, &headers[1..], rows))?;
    let hourly: Vec<Vec<String>> = stats
        .petitions
        .values()
        .flat_map(|p| {
            p.per_hour
                .range(since..)
                .map(move |(h, n)| (*h, p.petition.clone(), *n))
        })
        .map(|(h, p, n)| vec![format_time(h), p, n.to_string()])
        .collect();
    let total: u64 = suppressed.values().sum();
    let by_reason: Vec<String> = suppressed.iter().map(|(r, n)| format!("{n} {r}")).collect();
    writeln!(
        ctx.out,
        "\nSuppression list (never mailed again): {total} address{}{}",
        if total == 1 { "" } else { "es" },
        if by_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_reason.join(", "))
        }
    )?;
    writeln!(ctx.out, "\nNew signatures per hour, last {hours} h:")?;
    writeln!(
        ctx.out,
        "{}",
        table(&["hour", "petition", "new"], &["new"], hourly)
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn trending(
    ctx: &mut Ctx<'_>,
    petition: Option<String>,
    hours: u32,
    top: usize,
    labels: &[IpNet],
) -> anyhow::Result<ExitCode> {
    let since = ctx.now - i64::from(hours) * 3600;
    let mut names = HashMap::new();
    for net in labels {
        let len = if net.addr().is_ipv4() { 24 } else { 48 };
        for ip in expand_prefix(*net)? {
            let label = IpNet::new(ip, len).expect("valid length").to_string();
            names.insert((ctx.keys.prefix_hash)(ip), label);
        }
    }
    let criteria = Criteria {
        petition,
        from: Some(since),
        ..Default::default()
    };
    let mut t = Trending::new(since);
    ctx.store.scan(&criteria, &mut |r| t.add(&r)).await?;
    let report = t.report(top);
    // An organizer's label first, else the network the records keep in clear.
    let prefix_name = |r: &TrendRow| names.get(&r.key).cloned().or_else(|| r.network.clone());

    if ctx.json {
        let rows = |rows: &[TrendRow], labelled: bool| -> Vec<serde_json::Value> {
            rows.iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).expect("plain data");
                    v["peak_hour"] = json!(rfc3339(r.peak_hour));
                    if labelled {
                        v["label"] = json!(prefix_name(r));
                    }
                    v
                })
                .collect()
        };
        ctx.print_json(&json!({
            "since": rfc3339(since),
            "prefixes": rows(&report.prefixes, true),
            "domains": rows(&report.domains, false),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }

    let headers = ["peak / hour", "peak hour", "total", "confirmed", "flagged"];
    let cells = |r: &TrendRow| {
        vec![
            r.peak_count.to_string(),
            format_time(r.peak_hour),
            r.total.to_string(),
            r.confirmed.to_string(),
            r.flagged.to_string(),
        ]
    };
    let numeric = ["peak / hour", "total", "confirmed", "flagged"];
    writeln!(
        ctx.out,
        "Networks since {} (older records without a network show their hash; \
         name them with --label CIDR):",
        format_time(since)
    )?;
    let rows = report.prefixes.iter().map(|r| {
        let name = prefix_name(r).unwrap_or_else(|| format!("#{}", short(&r.key)));
        std::iter::once(name).chain(cells(r)).collect::<Vec<_>>()
    });
    let h: Vec<&str> = std::iter::once("network").chain(headers).collect();
    writeln!(ctx.out, "{}", table(&h, &numeric, rows))?;
    writeln!(ctx.out, "\nE-mail domains since {}:", format_time(since))?;
    let rows = report.domains.iter().map(|r| {
        std::iter::once(r.key.clone())
            .chain(cells(r))
            .collect::<Vec<_>>()
    });
    let h: Vec<&str> = std::iter::once("domain").chain(headers).collect();
    writeln!(ctx.out, "{}", table(&h, &numeric, rows))?;
    Ok(ExitCode::SUCCESS)
}
