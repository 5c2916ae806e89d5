//! Where `cahier admin` finds the pepper that keys the stored hashes: `CAHIER_PEPPER`, else
//! `cahier_pepper` of the `CAHIER_SECRETS_FILE` TOML, else — for a SQLite store — the
//! `secrets.toml` that `cahier serve` writes next to its database (`.cahier/`), so the admin run
//! beside a development server needs no setup. Explicit settings always win.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// The file `cahier serve` (`ensure_dev_secrets`) writes beside `signatures.sqlite3`.
pub const DEV_SECRETS_FILE: &str = "secrets.toml";

/// The pepper's bytes. `env` reads an environment variable (tests pass their own).
pub fn find(store_url: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Vec<u8>> {
    let from_env = env("CAHIER_PEPPER").filter(|v| !v.is_empty());
    let value = match from_env {
        Some(v) => v,
        None => {
            let file = env("CAHIER_SECRETS_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| dev_secrets_beside(store_url));
            let path = file.with_context(|| {
                format!(
                    "CAHIER_PEPPER is not set (environment, or cahier_pepper in \
                     CAHIER_SECRETS_FILE), and the store {store_url:?} has no {DEV_SECRETS_FILE} \
                     of `cahier serve` beside it: prefixes and e-mails are stored as keyed hashes"
                )
            })?;
            read_pepper(&path)?
        }
    };
    cahier_function::secrets::decode_key(&value).context("while decoding CAHIER_PEPPER")
}

/// `secrets.toml` in the folder of a `sqlite:PATH` store, if it exists.
fn dev_secrets_beside(store_url: &str) -> Option<PathBuf> {
    let path = Path::new(store_url.strip_prefix("sqlite:")?);
    let file = path.parent()?.join(DEV_SECRETS_FILE);
    file.is_file().then_some(file)
}

fn read_pepper(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the secrets file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("while parsing the secrets file {}", path.display()))?;
    Ok(table
        .get("cahier_pepper")
        .and_then(|v| v.as_str())
        .with_context(|| format!("no cahier_pepper in {}", path.display()))?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn finds_the_dev_secrets_of_serve_and_explicit_settings_win() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join(".cahier");
        let paths = cahier_function::secrets::ensure_dev_secrets(&state).unwrap();
        let store = format!("sqlite:{}", state.join("signatures.sqlite3").display());
        let dev = find(&store, &env(&[])).expect("the development secrets are found");
        let dev_text = std::fs::read_to_string(&paths.secrets_file).unwrap();
        let table: toml::Table = toml::from_str(&dev_text).unwrap();
        let expected = hex::decode(table["cahier_pepper"].as_str().unwrap()).unwrap();
        assert_eq!(dev, expected);

        let explicit = hex::encode([7u8; 32]);
        assert_eq!(
            find(&store, &env(&[("CAHIER_PEPPER", explicit.clone())])).unwrap(),
            [7u8; 32],
            "CAHIER_PEPPER wins"
        );
        let other = root.path().join("other.toml");
        std::fs::write(
            &other,
            format!("cahier_pepper = \"{}\"\n", hex::encode([9u8; 32])),
        )
        .unwrap();
        let file = other.display().to_string();
        assert_eq!(
            find(&store, &env(&[("CAHIER_SECRETS_FILE", file)])).unwrap(),
            [9u8; 32],
            "CAHIER_SECRETS_FILE wins"
        );

        // Another folder, or DynamoDB: no development secrets to fall back on.
        let elsewhere = format!("sqlite:{}", root.path().join("db.sqlite3").display());
        let err = format!("{:#}", find(&elsewhere, &env(&[])).unwrap_err());
        assert!(err.contains("CAHIER_PEPPER is not set"), "{err}");
        assert!(find("dynamodb:cahier", &env(&[])).is_err());
    }
}
