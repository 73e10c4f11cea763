//! One model of a Spin application, whichever way it was loaded: from a
//! `spin.toml` (manifest mode, running without Spin) or from the locked app
//! Spin hands a trigger plugin (`SPIN_LOCKED_URL`). Everything after loading
//! works on this model only, so the two modes differ in nothing else.

pub mod locked;
pub mod manifest;
pub mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// A loaded application.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub name: String,
    pub variables: BTreeMap<String, VariableDecl>,
    pub components: BTreeMap<String, ComponentDef>,
    pub triggers: Vec<TriggerDef>,
    /// App-wide trigger settings: `[application.trigger.<type>]` in a
    /// manifest, `metadata.triggers.<type>` in a locked app.
    pub trigger_settings: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// An application variable as declared (`[variables]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariableDecl {
    /// `None` means required: some provider must give a value.
    pub default: Option<String>,
    pub secret: bool,
}

/// A component as declared.
#[derive(Debug, Clone, Default)]
pub struct ComponentDef {
    pub id: String,
    pub source: PathBuf,
    /// Database labels it may open (`sqlite_databases`, locked: `databases`).
    pub databases: Vec<String>,
    /// Its `variables` table: name -> template over app variables.
    pub config: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    /// `allowed_outbound_hosts` as written (templates unrendered).
    pub allowed_outbound_hosts: Vec<String>,
    /// Declared features this host cannot honour, by manifest key; running a
    /// component that has any is a startup error naming them.
    pub unsupported: Vec<String>,
    /// Host features it requires (locked app `host_requirements`); this host
    /// provides none, so running such a component is a startup error.
    pub host_requirements: Vec<String>,
}

/// A `[[trigger.<type>]]` entry.
#[derive(Debug, Clone)]
pub struct TriggerDef {
    pub id: String,
    pub trigger_type: String,
    pub component: String,
    /// The entry as written (including `component`).
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// Whether this host can honour an `allowed_outbound_hosts` entry: outbound
/// PostgreSQL is provided; a templated entry is judged once rendered.
pub fn outbound_host_supported(entry: &str) -> bool {
    let entry = entry.trim();
    entry.starts_with("postgres://") || entry.starts_with("*://") || entry.contains("{{")
}

impl App {
    pub fn triggers_of<'a>(&'a self, trigger_type: &'a str) -> impl Iterator<Item = &'a TriggerDef> {
        self.triggers.iter().filter(move |t| t.trigger_type == trigger_type)
    }

    /// The component a trigger runs, refusing what this host cannot honour.
    pub fn runnable_component(&self, trigger: &TriggerDef) -> Result<&ComponentDef> {
        let component = self.components.get(&trigger.component).with_context(|| {
            format!("trigger {} names unknown component {:?}", trigger.id, trigger.component)
        })?;
        if !component.unsupported.is_empty() {
            bail!(
                "component {:?} uses {} which this host does not support",
                component.id,
                component.unsupported.join(", ")
            );
        }
        if !component.host_requirements.is_empty() {
            bail!(
                "component {:?} requires host feature(s) {}, which this trigger does not provide",
                component.id,
                component.host_requirements.join(", ")
            );
        }
        Ok(component)
    }

    pub fn settings(&self, trigger_type: &str) -> serde_json::Map<String, serde_json::Value> {
        self.trigger_settings.get(trigger_type).cloned().unwrap_or_default()
    }
}
