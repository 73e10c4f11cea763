//! Spin variables: each app variable gets its value from, in order, a
//! `--variable` flag, a `SPIN_VARIABLE_<NAME>` environment variable, the same
//! key in the `.env` file beside the manifest, or its default; a required
//! variable that none provides is a startup error. This is Spin's env provider,
//! so Spin's HTTP trigger and this plugin see the same values; a runtime-config
//! `variables_provider` other than `env` (Vault, Azure Key Vault) is refused
//! rather than ignored, because there they would not.
//! `{{ name }}` templates (component `variables`, trigger settings) render
//! against the resolved values.

pub mod bindings;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::app::VariableDecl;

/// The resolved values of all application variables.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    /// Resolves every declared variable. `flags` are `--variable` values;
    /// `env` is the process environment.
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        flags: &[String],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let from_flags = parse_flags(flags)?;
        let from_env: BTreeMap<String, String> = env
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("SPIN_VARIABLE_")?.to_ascii_lowercase(), v)))
            .collect();
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, decl) in decls {
            let value = from_flags
                .get(name)
                .or_else(|| from_env.get(name))
                .cloned()
                .or_else(|| decl.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None => missing.push(name.as_str()),
            }
        }
        if !missing.is_empty() {
            bail!(
                "required variable(s) {} have no value: set SPIN_VARIABLE_{} or pass --variable {}=...",
                missing.join(", "),
                missing[0].to_ascii_uppercase(),
                missing[0]
            );
        }
        Ok(Variables { values })
    }

    /// Renders a template such as `"{{ kafka_brokers }}"` or `"x-{{a}}-y"`.
    pub fn render(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .with_context(|| format!("unclosed `{{{{` in {template:?}"))?;
            let name = rest[start + 2..start + end].trim();
            validate_name(name)?;
            let value = self
                .values
                .get(name)
                .with_context(|| format!("{template:?} refers to undeclared variable {name:?}"))?;
            out.push_str(value);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Renders every string inside a JSON value (trigger settings).
    pub fn render_json(&self, value: &serde_json::Value) -> Result<serde_json::Value> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.render_json(v)).collect::<Result<_>>()?)
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// The prefix of Spin's env provider.
const ENV_PREFIX: &str = "SPIN_VARIABLE";

/// Spin's env provider, as configured by the runtime config's
/// `[[variables_provider]]` tables (none: the default one). Returns the
/// `.env` file's entries, then the process environment's, so that in
/// [`Variables::resolve`] (last wins) the environment beats the file. Keys are
/// normalised to the `SPIN_VARIABLE_` prefix `resolve` reads.
pub fn provider_environment(
    app_dir: Option<&Path>,
    providers: &[toml::Table],
    process_env: impl IntoIterator<Item = (String, String)>,
    cwd: &Path,
) -> Result<Vec<(String, String)>> {
    let mut prefix = ENV_PREFIX.to_owned();
    let mut dotenv_path = app_dir.map(|dir| cwd.join(dir).join(".env"));
    for provider in providers {
        match provider.get("type").and_then(toml::Value::as_str) {
            Some("env") => {
                if let Some(p) = provider.get("prefix").and_then(toml::Value::as_str) {
                    prefix = p.to_owned();
                }
                if let Some(path) = provider.get("dotenv_path").and_then(toml::Value::as_str) {
                    dotenv_path = Some(cwd.join(path));
                }
            }
            Some(other) => bail!(
                "runtime config [[variables_provider]] type {other:?} is not supported by this trigger (only \"env\"); it would resolve variables differently from Spin"
            ),
            None => bail!("runtime config [[variables_provider]] needs a `type`"),
        }
    }
    let mut entries = Vec::new();
    if let Some(path) = dotenv_path.filter(|p| p.exists()) {
        let file = dotenvy::from_path_iter(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for item in file {
            entries.push(item.with_context(|| format!("invalid line in {}", path.display()))?);
        }
    }
    entries.extend(process_env);
    let own = format!("{prefix}_");
    Ok(entries
        .into_iter()
        .filter_map(|(key, value)| Some((format!("{ENV_PREFIX}_{}", key.strip_prefix(&own)?), value)))
        .collect())
}

/// Spin's variable names: lowercase ASCII letters, digits and underscores,
/// starting with a letter.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("invalid variable name {name:?}: use lowercase letters, digits and underscores");
    }
    Ok(())
}

/// `--variable` accepts `KEY=VALUE`, `KEY=@FILE` (value read from a file),
/// `@FILE.json` and `@FILE.toml` (a table of values).
fn parse_flags(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for flag in flags {
        if let Some(file) = flag.strip_prefix('@') {
            let text = std::fs::read_to_string(file).with_context(|| format!("--variable {flag}"))?;
            let table: BTreeMap<String, serde_json::Value> = match Path::new(file).extension().and_then(|e| e.to_str()) {
                Some("json") => serde_json::from_str(&text)?,
                Some("toml") => toml::from_str(&text)?,
                _ => bail!("--variable {flag}: only .json and .toml files hold several variables"),
            };
            for (k, v) in table {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(k.to_ascii_lowercase(), v);
            }
        } else {
            let (key, value) = flag
                .split_once('=')
                .with_context(|| format!("--variable {flag:?}: expected KEY=VALUE"))?;
            let value = match value.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file).with_context(|| format!("--variable {key}"))?,
                None => value.to_owned(),
            };
            out.insert(key.to_ascii_lowercase(), value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        BTreeMap::from([
            ("kafka_brokers".into(), VariableDecl { default: Some("127.0.0.1:9092".into()), secret: false }),
            ("api_token".into(), VariableDecl { default: None, secret: true }),
        ])
    }

    #[test]
    fn flag_beats_env_beats_default() {
        let env = vec![("SPIN_VARIABLE_API_TOKEN".to_owned(), "env".to_owned())];
        let v = Variables::resolve(&decls(), &[], env.clone()).unwrap();
        assert_eq!(v.render("{{ api_token }}").unwrap(), "env");
        assert_eq!(v.render("b={{kafka_brokers}};").unwrap(), "b=127.0.0.1:9092;");
        let v = Variables::resolve(&decls(), &["api_token=flag".into()], env).unwrap();
        assert_eq!(v.render("{{ api_token }}").unwrap(), "flag");
    }

    #[test]
    fn environment_beats_the_dotenv_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nSPIN_VARIABLE_API_TOKEN=from-file\nSPIN_VARIABLE_KAFKA_BROKERS=\"file:9092\"\nOTHER=x\n",
        )
        .unwrap();
        let env = vec![("SPIN_VARIABLE_API_TOKEN".to_owned(), "from-env".to_owned())];
        let merged = provider_environment(Some(dir.path()), &[], env, dir.path()).unwrap();
        let v = Variables::resolve(&decls(), &[], merged).unwrap();
        assert_eq!(v.render("{{ api_token }}").unwrap(), "from-env");
        assert_eq!(v.render("{{ kafka_brokers }}").unwrap(), "file:9092");

        // No .env file: defaults.
        let empty = tempfile::tempdir().unwrap();
        let merged = provider_environment(Some(empty.path()), &[], vec![], empty.path()).unwrap();
        let v = Variables::resolve(&decls(), &["api_token=x".into()], merged).unwrap();
        assert_eq!(v.render("{{ kafka_brokers }}").unwrap(), "127.0.0.1:9092");
    }

    #[test]
    fn runtime_config_providers_env_is_honoured_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vars.env"), "MYAPP_KAFKA_BROKERS=custom:9092\n").unwrap();
        let env_provider: toml::Table =
            toml::from_str("type = \"env\"\nprefix = \"MYAPP\"\ndotenv_path = \"vars.env\"").unwrap();
        let env = vec![("MYAPP_API_TOKEN".to_owned(), "t".to_owned())];
        let merged = provider_environment(None, &[env_provider], env, dir.path()).unwrap();
        let v = Variables::resolve(&decls(), &[], merged).unwrap();
        assert_eq!(v.render("{{ kafka_brokers }}").unwrap(), "custom:9092");
        assert_eq!(v.render("{{ api_token }}").unwrap(), "t");

        let vault: toml::Table = toml::from_str("type = \"vault\"\nurl = \"http://vault:8200\"").unwrap();
        let err = provider_environment(None, &[vault], vec![], dir.path()).unwrap_err().to_string();
        assert!(err.contains("variables_provider") && err.contains("vault"), "{err}");
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = Variables::resolve(&decls(), &[], vec![]).unwrap_err().to_string();
        assert!(err.contains("api_token") && err.contains("SPIN_VARIABLE_API_TOKEN"), "{err}");
    }

    #[test]
    fn bad_templates_fail_clearly() {
        let v = Variables::resolve(&decls(), &["api_token=x".into()], vec![]).unwrap();
        assert!(v.render("{{ nope }}").is_err());
        assert!(v.render("{{ api_token").is_err());
        assert!(v.render("{{ Bad }}").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_template_renders_or_errs_never_panics(template in "[{} a-z_0-9]{0,40}|\\PC{0,60}") {
                let v = Variables::resolve(&decls(), &["api_token=t".into()], vec![]).unwrap();
                match v.render(&template) {
                    Ok(out) if !template.contains("{{") => prop_assert_eq!(out, template),
                    Ok(out) => prop_assert!(!out.contains("{{ ")),
                    Err(_) => {}
                }
            }

            #[test]
            fn text_around_a_variable_is_kept(before in "[^{}]{0,20}", after in "[^{}]{0,20}") {
                let v = Variables::resolve(&decls(), &["api_token=t".into()], vec![]).unwrap();
                prop_assert_eq!(v.render(&format!("{before}{{{{ kafka_brokers }}}}{after}")).unwrap(), format!("{before}127.0.0.1:9092{after}"));
            }
        }
    }
}
