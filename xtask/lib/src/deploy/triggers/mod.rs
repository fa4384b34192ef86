//! Triggers: what calls an environment's alias — routes on an HTTP API stage, a function URL,
//! an SQS event source mapping, an EventBridge schedule — and the permissions they need.
//!
//! Every trigger points at an alias, never at a version or `$LATEST`, so promote, canary and
//! rollback move only aliases and the triggers follow. Each kind lives in a module of its own
//! with one `converge` function that reads what AWS has and, through [`Converge`], either
//! records what it would change (the plan, `--dry-run`) or records and writes it (apply). Plan
//! and apply are the same code, so the plan cannot promise what apply does not do.

use std::fmt::Write as _;

use futures_util::StreamExt as _;

use super::aws::EnvClients;
use super::fan_out;
use crate::manifest::{Manifest, Strategy, Triggers};
use permission::AliasPolicy;

pub mod function_url;
pub mod http_api;
mod permission;
pub mod schedule;
pub mod sqs;

/// One function of the environment, as its triggers see it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The manifest's key.
    pub function: String,
    /// The Lambda function's name in this environment.
    pub name: String,
    pub alias: String,
    pub triggers: Triggers,
    pub timeout_secs: u32,
    /// The EventBridge rule of its schedule in this environment.
    pub rule_name: String,
}

impl Target {
    pub fn alias_arn(&self, clients: &EnvClients) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}:{}",
            clients.region, clients.account, self.name, self.alias
        )
    }
}

/// The environment's functions: those a command acts on (`in_scope`) and every other one, so
/// shared resources (the app's API) keep what belongs to functions outside this run.
#[derive(Debug, Clone)]
pub struct EnvTargets {
    pub env: String,
    /// The environment's alias.
    pub alias: String,
    pub strategy: Strategy,
    pub app: String,
    pub all: Vec<Target>,
    /// True when the command acts on every function of the manifest: only then are triggers
    /// of functions that left the manifest removed.
    pub whole_app: bool,
    in_scope: Vec<String>,
}

impl EnvTargets {
    pub fn new(manifest: &Manifest, env: &str, in_scope: &[String]) -> anyhow::Result<Self> {
        let mut all = Vec::new();
        for function in manifest.functions.keys() {
            all.push(Target {
                function: function.clone(),
                name: manifest.function_name(function, env),
                alias: manifest.alias(env),
                triggers: manifest.triggers(function, env)?,
                timeout_secs: manifest.timeout_secs(function, env),
                rule_name: manifest.schedule_rule_name(function, env),
            });
        }
        Ok(EnvTargets {
            env: env.to_owned(),
            alias: manifest.alias(env),
            strategy: manifest.strategy,
            app: manifest.app.clone(),
            whole_app: manifest.functions.keys().all(|f| in_scope.contains(f)),
            in_scope: in_scope.to_vec(),
            all,
        })
    }

    /// Every function of the environment with no trigger: converging this removes every
    /// trigger deploy made for the environment (`destroy`).
    pub fn without_triggers(mut self) -> Self {
        for target in &mut self.all {
            target.triggers = Triggers::default();
        }
        self.in_scope = self.all.iter().map(|t| t.function.clone()).collect();
        self.whole_app = true;
        self
    }

    /// The functions this run deploys.
    pub fn in_scope(&self) -> impl Iterator<Item = &Target> {
        self.all
            .iter()
            .filter(|t| self.in_scope.contains(&t.function))
    }

    /// Tags that mark what deploy created for this environment.
    pub fn tags(&self, function: Option<&str>) -> std::collections::HashMap<String, String> {
        let mut tags = std::collections::HashMap::from([
            ("lambda-stage:app".to_owned(), self.app.clone()),
            ("lambda-stage:env".to_owned(), self.env.clone()),
        ]);
        if let Some(function) = function {
            tags.insert("lambda-stage:function".to_owned(), function.to_owned());
        }
        tags
    }
}

/// Plan or apply: every trigger module reports its changes here, and writes only when applying.
#[derive(Debug, Default)]
pub struct Converge {
    apply: bool,
    /// Print each change as it is recorded (applying, with one writer at a time).
    print: bool,
    changes: Vec<String>,
    /// Changes that were being made when a write failed (indexes into `changes`).
    interrupted: Vec<usize>,
    /// Where clients reach the environment (`GET https://…/staging/hello/{name} -> api`), as
    /// far as the reads (and, applying, the writes) tell: what deploy prints once it is done.
    reachable: Vec<String>,
}

impl Converge {
    /// Reads only; records what would change.
    pub fn plan() -> Self {
        Converge::default()
    }

    /// Records, prints and writes.
    pub fn apply() -> Self {
        Converge {
            apply: true,
            print: true,
            ..Converge::default()
        }
    }

    /// For one function of many converged at once: what it records is printed when
    /// [`Converge::absorb`] takes it, so lines of different functions do not mix.
    fn for_one_function(apply: bool) -> Self {
        Converge {
            apply,
            ..Converge::default()
        }
    }

    /// Records a change; true when the caller should make it now. Applying prints it first,
    /// so a failure shows how far the wiring got.
    pub fn change(&mut self, line: impl Into<String>) -> bool {
        let line = line.into();
        if self.print {
            println!("  {line}");
        }
        self.changes.push(line);
        self.apply
    }

    pub fn is_apply(&self) -> bool {
        self.apply
    }

    pub fn changes(&self) -> &[String] {
        &self.changes
    }

    /// Records an address a client can call.
    fn reachable_at(&mut self, line: String) {
        self.reachable.push(line);
    }

    /// The addresses recorded, in the manifest's order: the API's routes, then function URLs.
    pub fn reachable(&self) -> &[String] {
        &self.reachable
    }

    /// Whether the change at `index` was being made when a write failed.
    pub fn was_interrupted(&self, index: usize) -> bool {
        self.interrupted.contains(&index)
    }

    /// Notes that the last change recorded was being made when `result` failed.
    fn note<T>(&mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        if result.is_err() && self.apply && !self.changes.is_empty() {
            self.interrupted.push(self.changes.len() - 1);
        }
        result
    }

    /// Takes over what one function's converge recorded, printing it when applying.
    fn absorb(&mut self, other: Converge) {
        let offset = self.changes.len();
        self.interrupted
            .extend(other.interrupted.iter().map(|index| offset + index));
        for line in other.changes {
            self.change(line);
        }
        self.reachable.extend(other.reachable);
    }
}

/// Reads (and with [`Converge::apply`], writes) every trigger of the environment's functions:
/// the app's HTTP API first (its stage, integrations and routes, shared by the functions), then
/// every function's own triggers at once (its API permission, URL, queue and schedule), their
/// changes listed (and when applying, printed) in the manifest's order as each
/// function finishes. A failure of some functions lets the others finish, and names them all.
pub async fn converge(
    clients: &EnvClients,
    targets: &EnvTargets,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let shared = http_api::converge(clients, targets, mode).await;
    let api_access = &mode.note(shared)?;
    let apply = mode.apply;
    let mut each_function = fan_out::in_order(targets.in_scope(), |target| async move {
        let mut own = Converge::for_one_function(apply);
        let result = converge_function(clients, targets, target, api_access, &mut own).await;
        let result = own.note(result);
        (own, result)
    });
    let mut errors = Vec::new();
    while let Some((own, result)) = each_function.next().await {
        mode.absorb(own);
        if let Err(err) = result {
            errors.push(err);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fan_out::combined(errors))
    }
}

/// One function's permission for the app's API, its URL, queue and schedule.
async fn converge_function(
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    api_access: &http_api::ApiAccess,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let policy = &mut AliasPolicy::default();
    http_api::converge_permission(clients, policy, targets, target, api_access, mode).await?;
    function_url::converge(clients, policy, targets, target, mode).await?;
    sqs::converge(clients, targets, target, mode).await?;
    schedule::converge(clients, policy, targets, target, mode).await
}

/// The plan's trigger section.
pub fn describe(plan: &Converge) -> String {
    let mut out = String::new();
    if plan.changes.is_empty() {
        out.push_str("  triggers: unchanged\n");
    } else {
        out.push_str("  triggers:\n");
        for change in &plan.changes {
            let _ = writeln!(out, "    {change}");
        }
    }
    out
}

/// Plans, then applies, the environment's triggers; a failure says which changes were made
/// and which were not, and that a re-run converges.
/// Returns where clients reach the environment once it is wired.
pub async fn wire(
    clients: &EnvClients,
    targets: &EnvTargets,
    planned: &Converge,
) -> anyhow::Result<Vec<String>> {
    let mut applied = Converge::apply();
    if let Err(err) = converge(clients, targets, &mut applied).await {
        let mut report = String::new();
        for (index, change) in applied.changes.iter().enumerate() {
            let state = if applied.was_interrupted(index) {
                "in progress when it failed"
            } else {
                "done"
            };
            let _ = write!(report, "\n  {state}: {change}");
        }
        for change in planned
            .changes
            .iter()
            .filter(|c| !applied.changes.contains(c))
        {
            let _ = write!(report, "\n  not done: {change}");
        }
        return Err(err.context(format!(
            "wiring the triggers of `{}` failed; no alias was moved. Trigger changes:{report}\n\
             Fix the cause and re-run: finished steps are skipped, so it converges",
            targets.env
        )));
    }
    Ok(applied.reachable)
}

/// What `status` shows of one trigger.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TriggerStatus {
    /// `http`, `url`, `sqs` or `schedule`.
    pub kind: &'static str,
    pub function: Option<String>,
    /// An invoke URL, queue ARN or rule name.
    pub target: String,
    /// `deployed`, `missing`, `enabled`, `disabled`, ...
    pub state: String,
}

/// Every trigger the manifest gives the environment, as AWS has it.
pub async fn status(
    clients: &EnvClients,
    targets: &EnvTargets,
) -> anyhow::Result<Vec<TriggerStatus>> {
    let mut statuses = http_api::status(clients, targets).await?;
    // Every function's at once, listed in the manifest's order.
    let each_function = fan_out::each(&targets.all, |target| async move {
        let mut statuses = function_url::status(clients, target).await?;
        statuses.extend(sqs::status(clients, target).await?);
        statuses.extend(schedule::status(clients, target).await?);
        anyhow::Ok(statuses)
    })
    .await;
    statuses.extend(fan_out::all_ok(each_function)?.into_iter().flatten());
    Ok(statuses)
}
