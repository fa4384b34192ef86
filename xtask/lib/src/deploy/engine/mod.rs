//! One function's deploy: what it should be ([`Desired`]), what AWS has and what has to change
//! ([`plan`], reads only, printed by [`Plan::describe`]), and its version made ready
//! ([`prepare`]: role, function, code, configuration, publish). Moving its alias is the
//! caller's last step, so a failure before it leaves every alias where it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::artifact::Artifact;
use super::history::{AliasHistory, Routing, VersionStamp};
use crate::arch::Arch;
use crate::manifest::triggers::QueueRef;

mod plan;
mod prepare;
mod reads;

pub use plan::{config_diff, plan, variables_of};
pub use prepare::prepare;
pub use reads::{alias_names, get_alias, get_function, get_version};

/// Lambda's cap on a zip uploaded directly (not through S3).
const MAX_DIRECT_UPLOAD: u64 = 50 * 1024 * 1024;

/// What one function should look like in one environment.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The function's key in the manifest.
    pub function: String,
    /// Its Lambda name in this environment.
    pub name: String,
    pub alias: String,
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
    pub artifact: Artifact,
    pub stamp: VersionStamp,
}

/// The configuration a published version freezes, as the manifest wants it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub arch: Arch,
    pub memory_mb: i32,
    pub timeout_secs: i32,
    pub variables: BTreeMap<String, String>,
    pub role: RoleSpec,
    /// Queues the function consumes, in every environment its role serves: a managed role
    /// may read exactly these.
    pub queues: Vec<QueueRef>,
}

#[derive(Debug, Clone)]
pub enum RoleSpec {
    /// A role the manifest names.
    Existing(String),
    /// A least-privilege role deploy creates when it is missing.
    Managed { name: String },
}

/// Where an alias points: its primary version and any canary weights.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
    pub revision_id: Option<String>,
    pub description: Option<String>,
}

impl AliasState {
    pub fn history(&self) -> AliasHistory {
        AliasHistory::parse(self.description.as_deref())
    }

    /// Where the alias sends its traffic.
    pub fn routing(&self) -> Routing {
        Routing {
            version: self.version.clone(),
            weights: self.weights.clone(),
        }
    }

    pub fn summary(&self) -> String {
        self.routing().summary()
    }
}

/// How the alias should move once the version exists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AliasTarget {
    /// All traffic to the new version.
    Full,
    /// The alias keeps its version and routes this share (0..1) to the new one.
    Canary(f64),
}

/// The plan for one function, computed from reads only.
#[derive(Debug, Clone)]
pub struct Plan {
    pub desired: Desired,
    pub create_role: bool,
    /// The managed role's policy differs from what the function needs now (new secret
    /// references, new queues).
    pub update_role_policy: bool,
    /// A named role that may not read the function's secret references, or could not be
    /// checked ([`super::role_access`]).
    pub role_warnings: Vec<String>,
    pub create_function: bool,
    pub upload_code: bool,
    pub config_changes: Vec<String>,
    pub update_tags: bool,
    /// A published version that already matches, so nothing is uploaded or published.
    pub reuse_version: Option<String>,
    pub alias_before: Option<AliasState>,
    pub alias_target: AliasTarget,
    latest_revision: Option<String>,
    /// `$LATEST` was still being created or updated when the plan read it (another deploy's
    /// change, or the console's): Lambda refuses a change until that one has finished.
    latest_busy: bool,
}

impl Plan {
    /// Human-readable lines for the printed plan.
    pub fn describe(&self) -> String {
        let d = &self.desired;
        let mut out = format!(
            "  {} -> function `{}`, alias `{}`\n",
            d.function, d.name, d.alias
        );
        for warning in &self.role_warnings {
            let _ = writeln!(out, "    role:     {warning}");
        }
        if let RoleSpec::Managed { name } = &d.settings.role {
            if self.create_role {
                let _ = writeln!(out, "    role:     create `{name}` ({})", access_summary(d));
            } else if self.update_role_policy {
                let _ = writeln!(
                    out,
                    "    role:     update the policy of `{name}` ({})",
                    access_summary(d)
                );
            }
        }
        let code = if self.create_function {
            "create function".to_owned()
        } else if self.upload_code {
            format!(
                "upload ({} KB, sha256 {})",
                zip_kb(&d.artifact),
                short(&d.artifact.sha256_hex)
            )
        } else {
            "unchanged".to_owned()
        };
        let _ = writeln!(out, "    code:     {code}");
        let config = if self.create_function {
            format!(
                "{} MB, {} s, {}, {} variables",
                d.settings.memory_mb,
                d.settings.timeout_secs,
                d.settings.arch,
                d.settings.variables.len()
            )
        } else if self.config_changes.is_empty() {
            "unchanged".to_owned()
        } else {
            self.config_changes.join("; ")
        };
        let _ = writeln!(out, "    config:   {config}");
        let version = match &self.reuse_version {
            Some(v) => format!("reuse version {v} (same code and configuration)"),
            None => format!("publish new ({})", d.stamp.to_description()),
        };
        let _ = writeln!(out, "    version:  {version}");
        let before = self
            .alias_before
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), AliasState::summary);
        let target = self.reuse_version.as_deref().unwrap_or("<new>");
        let after = match self.alias_target {
            AliasTarget::Full => format!("version {target}"),
            AliasTarget::Canary(weight) => format!(
                "version {} ({:.0}%) + version {target} ({:.0}%)",
                self.alias_before
                    .as_ref()
                    .map_or("?", |a| a.version.as_str()),
                (1.0 - weight) * 100.0,
                weight * 100.0
            ),
        };
        if self.alias_unchanged() {
            let _ = writeln!(out, "    alias:    unchanged ({before})");
        } else {
            let _ = writeln!(out, "    alias:    {before} -> {after}");
        }
        out
    }

    /// What [`prepare`] writes for this plan, in words; empty when an existing version is
    /// deployed as is.
    pub fn actions(&self) -> Vec<&'static str> {
        let mut actions = Vec::new();
        if self.create_role {
            actions.push("create role");
        } else if self.update_role_policy {
            actions.push("update role policy");
        }
        if self.create_function {
            actions.push("create function");
        } else {
            if self.upload_code {
                actions.push("upload code");
            }
            if !self.config_changes.is_empty() {
                actions.push("update configuration");
            }
        }
        if self.update_tags && !self.create_function {
            actions.push("tag");
        }
        if self.reuse_version.is_none() {
            actions.push("publish a version");
        }
        actions
    }

    /// True when applying the plan would write nothing.
    pub fn is_noop(&self) -> bool {
        !self.create_role
            && !self.update_role_policy
            && !self.create_function
            && !self.upload_code
            && self.config_changes.is_empty()
            && !self.update_tags
            && self.reuse_version.is_some()
            && self.alias_unchanged()
    }

    fn alias_unchanged(&self) -> bool {
        match (&self.alias_before, &self.reuse_version, self.alias_target) {
            (Some(alias), Some(version), AliasTarget::Full) => {
                alias.version == *version && alias.weights.is_empty()
            }
            (Some(alias), Some(version), AliasTarget::Canary(_)) => alias.version == *version,
            _ => false,
        }
    }
}

/// What a managed role may do, in a few words.
fn access_summary(d: &Desired) -> String {
    let mut parts = vec!["logs".to_owned()];
    let references = super::secrets::references(&d.settings.variables).len();
    if references > 0 {
        parts.push(format!("{references} secret reference(s)"));
    }
    if !d.settings.queues.is_empty() {
        parts.push(format!("{} queue(s)", d.settings.queues.len()));
    }
    parts.join(", ")
}

fn zip_kb(artifact: &Artifact) -> u64 {
    std::fs::metadata(&artifact.zip_path).map_or(0, |m| m.len()) / 1024
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
