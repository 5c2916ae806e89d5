//! Reading mails back: `.eml` files of the outbox mailer or an aiosmtpd maildir.

use std::path::Path;

#[derive(Debug, Clone)]
pub struct ReadMail {
    pub to: String,
    /// `Name <address>` as the parser reads the `From` header.
    pub from: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: Option<String>,
    pub auto_submitted: Option<String>,
    /// `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058), trimmed.
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    /// The message as received, for checks on the bytes (DKIM).
    pub raw: Vec<u8>,
}

/// Parses one RFC 5322 message.
pub fn parse(bytes: &[u8]) -> ReadMail {
    let m = mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("a parsable mail");
    let to = m
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    let from = m
        .from()
        .and_then(|a| a.first())
        .map(|a| {
            format!(
                "{} <{}>",
                a.name().unwrap_or_default(),
                a.address().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    ReadMail {
        to,
        from,
        reply_to: m
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string),
        subject: m.subject().unwrap_or_default().to_string(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        message_id: m.message_id().map(str::to_string),
        auto_submitted: m.header_raw("Auto-Submitted").map(|v| v.trim().to_string()),
        list_unsubscribe: m
            .header_raw("List-Unsubscribe")
            .map(|v| v.trim().to_string()),
        list_unsubscribe_post: m
            .header_raw("List-Unsubscribe-Post")
            .map(|v| v.trim().to_string()),
        raw: bytes.to_vec(),
    }
}

/// All mails of a folder (recursively), oldest first by file name.
pub fn read_dir(dir: &Path) -> Vec<ReadMail> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    files
        .iter()
        .map(|p| parse(&std::fs::read(p).expect("readable mail")))
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            collect(&p, out);
        } else if !name.starts_with('.')
            && (name.ends_with(".eml") || dir.ends_with("new") || dir.ends_with("cur"))
        {
            out.push(p);
        }
    }
}

/// The token of the first `/<page>/#t=<token>` link in `text` (`page` = confirm or erase).
pub fn token(text: &str, page: &str) -> Option<String> {
    let marker = format!("/{page}/#t=");
    let start = text.find(&marker)? + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}
