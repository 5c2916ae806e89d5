//! The `_headers` file the build writes (Netlify / Cloudflare Pages format), read back so that
//! `verify` knows which Content-Security-Policy header each page must be served with.

/// One rule: a path pattern and the headers it sets.
#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    headers: Vec<(String, String)>,
}

/// The rules of a `_headers` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    rules: Vec<Rule>,
}

impl HeaderRules {
    /// Parses `_headers`: an unindented line is a path pattern, the indented `Name: value`
    /// lines under it are its headers, `#` starts a comment.
    pub fn parse(text: &str) -> anyhow::Result<HeaderRules> {
        let mut rules: Vec<Rule> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !line.starts_with([' ', '\t']) {
                rules.push(Rule {
                    pattern: trimmed.to_string(),
                    headers: Vec::new(),
                });
                continue;
            }
            let (name, value) = trimmed.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("_headers line {}: expected `Name: value`", i + 1)
            })?;
            let rule = rules.last_mut().ok_or_else(|| {
                anyhow::anyhow!("_headers line {}: header before any path", i + 1)
            })?;
            rule.headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(HeaderRules { rules })
    }

    /// Every header of every rule matching the URL path, in file order.
    pub fn headers_for(&self, path: &str) -> Vec<(&str, &str)> {
        self.rules
            .iter()
            .filter(|r| matches(&r.pattern, path))
            .flat_map(|r| r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .collect()
    }

    /// The Content-Security-Policy the path must be served with, if any rule sets one
    /// (several are joined with ", ", as CDNs do).
    pub fn csp_for(&self, path: &str) -> Option<String> {
        let v: Vec<&str> = self
            .headers_for(path)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-security-policy"))
            .map(|(_, v)| v)
            .collect();
        (!v.is_empty()).then(|| v.join(", "))
    }
}

/// Netlify semantics: `:name` matches one non-empty segment, `*` matches the rest of the path
/// (possibly empty); anything else matches literally.
fn matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (Some("*"), _) => return true,
            (Some(p), Some(s)) => {
                let ok = if p.starts_with(':') && p.len() > 1 {
                    !s.is_empty()
                } else {
                    p == s
                };
                if !ok {
                    return false;
                }
            }
            (None, None) => return true,
            // "/static/*" also matches "/static".
            (Some(p), None) => return p == "*" && pat.next().is_none(),
            (None, Some(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n/*\n  X-A: 1\n/static/*\n  Cache-Control: immutable\n\
/:slug/thanks/\n  Content-Security-Policy: thanks-policy\n/\n  Content-Security-Policy: root-policy\n";

    #[test]
    fn patterns() {
        assert!(matches("/*", "/"));
        assert!(matches("/*", "/a/b/"));
        assert!(matches("/static/*", "/static/x.css"));
        assert!(!matches("/static/*", "/other/x.css"));
        assert!(matches("/:slug/thanks/", "/noel/thanks/"));
        assert!(!matches("/:slug/thanks/", "//thanks/"));
        assert!(!matches("/:slug/thanks/", "/en/noel/thanks/"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/a/"));
    }

    #[test]
    fn csp_per_path() {
        let r = HeaderRules::parse(FILE).unwrap();
        assert_eq!(r.csp_for("/").as_deref(), Some("root-policy"));
        assert_eq!(r.csp_for("/noel/thanks/").as_deref(), Some("thanks-policy"));
        assert_eq!(r.csp_for("/static/a.css"), None);
        assert_eq!(r.headers_for("/static/a.css").len(), 2);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = HeaderRules::parse("  X: 1\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = HeaderRules::parse("/\n  nonsense\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
