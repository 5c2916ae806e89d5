//! Cahier's generator: petitions written in Markdown become a static, CDN-ready site.
//!
//! The CLI (`cahier build|new|check`, and `serve`/`verify`/`admin` added beside it) is a thin
//! layer over this library: [`build`], [`check`] and [`config::load`].

pub mod admin;
pub mod check;
pub mod config;
pub mod content;
pub mod diag;
pub mod feeds;
pub mod headers;
pub mod images;
pub mod integrity;
pub mod layout;
pub mod log_verify;
pub mod markdown;
pub mod new;
pub mod offline_sync;
pub mod og;
pub mod pages;
pub mod petition_manifest;
pub mod sanitize;
pub mod serve;
pub mod site;
pub mod templates;
pub mod theme;
pub mod verify;

pub use check::CheckReport;
pub use site::{BuildOptions, BuildReport};

use std::path::Path;

/// Builds the site described by `opts` (see [`site::build`]).
pub fn build(opts: &BuildOptions) -> anyhow::Result<BuildReport> {
    site::build(opts)
}

/// Validates the site at `root` without writing anything (see [`check::check`]).
pub fn check(root: &Path) -> anyhow::Result<CheckReport> {
    check::check(root)
}
