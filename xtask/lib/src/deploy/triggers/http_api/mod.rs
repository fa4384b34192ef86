//! `http`: the app's HTTP API (API Gateway v2).
//!
//! - Single-stack: one API for the app (named after it), one stage per environment named after
//!   the environment, whose stage variable `alias` names that environment's alias. Each function
//!   has one `AWS_PROXY` integration whose URI selects the alias through the stage variable, so
//!   every stage reaches its own alias through the same routes.
//! - Multi-stack: one API per environment (`<app>-<env>`), on its `$default` stage, whose
//!   integrations name the environment's alias directly.
//!
//! Either way, each alias carries one permission whose `SourceArn` names that API and stage.
//! The API is found by its name and the app's tag, so any machine can deploy.

use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::{ProtocolType, Stage};

use super::permission::{self, AliasPolicy, Permission};
use super::{Converge, EnvTargets, Target, TriggerStatus};
use crate::deploy::aws::{failed, EnvClients};
use crate::manifest::Strategy;
use crate::routes::Route;

/// The stage variable that carries the environment's alias (single-stack).
pub const ALIAS_STAGE_VARIABLE: &str = "alias";
const DEFAULT_STAGE: &str = "$default";

/// The API's name: the app's (single-stack) or `<app>-<env>` (multi-stack).
pub fn api_name(targets: &EnvTargets) -> String {
    match targets.strategy {
        Strategy::SingleStack => targets.app.clone(),
        Strategy::MultiStack => format!("{}-{}", targets.app, targets.env),
    }
}

/// The stage the environment is served on.
pub fn stage_name(targets: &EnvTargets) -> &str {
    match targets.strategy {
        Strategy::SingleStack => &targets.env,
        Strategy::MultiStack => DEFAULT_STAGE,
    }
}

/// The integration URI of `target`: the alias through the stage variable (single-stack), or
/// the alias itself (multi-stack).
pub fn integration_uri(clients: &EnvClients, targets: &EnvTargets, target: &Target) -> String {
    let function = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        clients.region, clients.account, target.name
    );
    match targets.strategy {
        Strategy::SingleStack => format!("{function}:${{stageVariables.{ALIAS_STAGE_VARIABLE}}}"),
        Strategy::MultiStack => format!("{function}:{}", target.alias),
    }
}

/// True when an integration URI invokes the function `name` (any qualifier).
fn invokes(uri: &str, name: &str) -> bool {
    let marker = format!(":function:{name}");
    uri.ends_with(&marker) || uri.contains(&format!("{marker}:"))
}

/// The `SourceArn` that lets exactly this API's stage invoke the alias.
fn source_arn(clients: &EnvClients, targets: &EnvTargets, api_id: &str) -> String {
    format!(
        "arn:aws:execute-api:{}:{}:{api_id}/{}/*",
        clients.region,
        clients.account,
        stage_name(targets)
    )
}

fn permission_id(targets: &EnvTargets) -> String {
    format!("lambda-stage-http-{}", targets.env)
}

pub struct Api {
    pub id: String,
    pub endpoint: String,
}

/// Every page of one of the API's collections (routes, integrations, stages).
macro_rules! all_pages {
    ($clients:expr, $operation:ident, $api_id:expr, $what:literal) => {{
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = $clients
                .apigw
                .$operation()
                .api_id($api_id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(failed(concat!("list the API's ", $what)))?;
            items.extend(page.items().iter().cloned());
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        items
    }};
}

// After the macro, which it uses.
mod routes;
use routes::{converge_integrations, converge_routes};

async fn stages(clients: &EnvClients, api_id: &str) -> anyhow::Result<Vec<Stage>> {
    Ok(all_pages!(clients, get_stages, api_id, "stages"))
}

/// The variables of the API's stage `name`, `None` when the stage does not exist.
async fn stage_variables_of(
    clients: &EnvClients,
    api_id: &str,
    name: &str,
) -> anyhow::Result<Option<HashMap<String, String>>> {
    Ok(stages(clients, api_id)
        .await?
        .iter()
        .find(|s| s.stage_name() == Some(name))
        .map(|s| s.stage_variables().cloned().unwrap_or_default()))
}

/// The app's API for this environment, found by name and the app's tag.
pub async fn find_api(clients: &EnvClients, targets: &EnvTargets) -> anyhow::Result<Option<Api>> {
    let name = api_name(targets);
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .apigw
            .get_apis()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(failed("list the HTTP APIs"))?;
        for api in page.items() {
            let tagged = api
                .tags()
                .and_then(|t| t.get("lambda-stage:app"))
                .is_some_and(|app| *app == targets.app);
            if api.name() == Some(name.as_str()) && tagged {
                return Ok(Some(Api {
                    id: api.api_id().unwrap_or_default().to_owned(),
                    endpoint: api.api_endpoint().unwrap_or_default().to_owned(),
                }));
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(None),
        }
    }
}

/// The URL a client calls for the environment: `<endpoint>/<stage>` or, on `$default`, the
/// endpoint itself.
pub fn invoke_url(targets: &EnvTargets, api: &Api) -> String {
    match stage_name(targets) {
        DEFAULT_STAGE => api.endpoint.clone(),
        stage => format!("{}/{stage}", api.endpoint),
    }
}

/// What each function's own pass does about the API's permission on its alias.
#[derive(Debug)]
pub enum ApiAccess {
    /// The environment has no API: there is nothing to grant or revoke.
    NoApi,
    /// The API stays but no function wants it: each statement deploy made for it goes.
    Revoke,
    /// Functions with routes get the API's stage as a caller (`api_id` is `None` when the plan
    /// has the API still to create); the others lose it.
    Grant { api_id: Option<String> },
}

/// The environment's API, stage, integrations and routes, shared by the functions. Each
/// function's permission follows in its own pass ([`converge_permission`]).
pub async fn converge(
    clients: &EnvClients,
    targets: &EnvTargets,
    mode: &mut Converge,
) -> anyhow::Result<ApiAccess> {
    let wants_api = targets.all.iter().any(|t| t.triggers.http.is_some());
    let api = find_api(clients, targets).await?;
    let name = api_name(targets);
    let api = match (api, wants_api) {
        (None, false) => return Ok(ApiAccess::NoApi),
        (Some(api), false) => {
            if targets.whole_app {
                remove_environment(clients, targets, &api, mode).await?;
            }
            return Ok(ApiAccess::Revoke);
        }
        (Some(api), true) => Some(api),
        (None, true) => {
            if mode.change(format!("create HTTP API `{name}`")) {
                let created = clients
                    .apigw
                    .create_api()
                    .name(&name)
                    .protocol_type(ProtocolType::Http)
                    .description(format!("lambda-stage app `{}`", targets.app))
                    .set_tags(Some(api_tags(targets)))
                    .send()
                    .await
                    .map_err(failed(format!("create HTTP API `{name}`")))?;
                Some(Api {
                    id: created.api_id().unwrap_or_default().to_owned(),
                    endpoint: created.api_endpoint().unwrap_or_default().to_owned(),
                })
            } else {
                None
            }
        }
    };
    let api_id = api.as_ref().map(|api| api.id.as_str());
    converge_stage(clients, targets, api_id, mode).await?;
    let integrations = converge_integrations(clients, targets, api_id, mode).await?;
    converge_routes(clients, targets, api_id, &integrations, mode).await?;
    if let Some(api) = api.as_ref().filter(|api| !api.endpoint.is_empty()) {
        record_route_urls(targets, api, mode);
    }
    Ok(ApiAccess::Grant {
        api_id: api.map(|api| api.id),
    })
}

/// Each route of the functions this run deploys, as a client calls it on the stage
/// (`GET https://<id>.execute-api.<region>.amazonaws.com/staging/hello/{name} -> api`).
fn record_route_urls(targets: &EnvTargets, api: &Api, mode: &mut Converge) {
    let url = invoke_url(targets, api);
    for target in targets.in_scope() {
        for key in target.triggers.http.iter().flatten() {
            // The manifest's routes were checked before anything was read.
            let Ok(route) = Route::parse(key) else {
                continue;
            };
            let (method, path) = route.display_parts();
            mode.reachable_at(format!("{method} {url}{path} -> {}", target.function));
        }
    }
}

/// The API's permission on `target`'s alias, as `access` says.
pub async fn converge_permission(
    clients: &EnvClients,
    policy: &mut AliasPolicy,
    targets: &EnvTargets,
    target: &Target,
    access: &ApiAccess,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let sid = permission_id(targets);
    let api_id = match access {
        ApiAccess::NoApi => return Ok(()),
        ApiAccess::Grant { api_id } if target.triggers.http.is_some() => api_id,
        ApiAccess::Revoke | ApiAccess::Grant { .. } => {
            return permission::revoke(clients, policy, target, &sid, "the HTTP API", mode).await
        }
    };
    let wanted = Permission {
        sid,
        action: "lambda:InvokeFunction",
        principal: "apigateway.amazonaws.com",
        source_arn: Some(source_arn(
            clients,
            targets,
            api_id.as_deref().unwrap_or("<new api>"),
        )),
        public_url: false,
        via_function_url: false,
    };
    let what = format!(
        "API `{}` stage `{}` to invoke alias `{}`",
        api_name(targets),
        stage_name(targets),
        target.alias
    );
    permission::converge(clients, policy, target, &wanted, &what, mode).await
}

fn api_tags(targets: &EnvTargets) -> HashMap<String, String> {
    let mut tags = targets.tags(None);
    if targets.strategy == Strategy::SingleStack {
        // One API serves every environment.
        tags.remove("lambda-stage:env");
    }
    tags
}

fn stage_variables(targets: &EnvTargets) -> HashMap<String, String> {
    match targets.strategy {
        Strategy::SingleStack => {
            HashMap::from([(ALIAS_STAGE_VARIABLE.to_owned(), targets.alias.clone())])
        }
        Strategy::MultiStack => HashMap::new(),
    }
}

async fn converge_stage(
    clients: &EnvClients,
    targets: &EnvTargets,
    api_id: Option<&str>,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let stage = stage_name(targets);
    let wanted = stage_variables(targets);
    let current = match api_id {
        Some(api_id) => stage_variables_of(clients, api_id, stage).await?,
        None => None,
    };
    let variables = wanted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match current {
        None => {
            if mode.change(format!(
                "create stage `{stage}` (auto-deploy{})",
                if variables.is_empty() {
                    String::new()
                } else {
                    format!(", {variables}")
                }
            )) {
                clients
                    .apigw
                    .create_stage()
                    .api_id(api_id.unwrap_or_default())
                    .stage_name(stage)
                    .auto_deploy(true)
                    .set_stage_variables(Some(wanted))
                    .set_tags(Some(targets.tags(None)))
                    .send()
                    .await
                    .map_err(failed(format!("create stage `{stage}`")))?;
            }
        }
        Some(current) if current != wanted => {
            if mode.change(format!("stage `{stage}`: variables -> {variables}")) {
                clients
                    .apigw
                    .update_stage()
                    .api_id(api_id.unwrap_or_default())
                    .stage_name(stage)
                    .set_stage_variables(Some(wanted))
                    .send()
                    .await
                    .map_err(failed(format!("update stage `{stage}`")))?;
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// No function of the environment has routes (any more, or after `destroy`): its stage goes
/// (single-stack: the API stays for the other environments), or its whole API (multi-stack).
async fn remove_environment(
    clients: &EnvClients,
    targets: &EnvTargets,
    api: &Api,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    match targets.strategy {
        Strategy::MultiStack => {
            if mode.change(format!("remove HTTP API `{}`", api_name(targets))) {
                clients
                    .apigw
                    .delete_api()
                    .api_id(&api.id)
                    .send()
                    .await
                    .map_err(failed("delete the HTTP API"))?;
            }
        }
        Strategy::SingleStack => {
            let stage = stage_name(targets);
            let exists = stage_variables_of(clients, &api.id, stage).await?.is_some();
            if exists && mode.change(format!("remove stage `{stage}` of the app's HTTP API")) {
                clients
                    .apigw
                    .delete_stage()
                    .api_id(&api.id)
                    .stage_name(stage)
                    .send()
                    .await
                    .map_err(failed(format!("delete stage `{stage}`")))?;
            }
        }
    }
    Ok(())
}

pub async fn status(
    clients: &EnvClients,
    targets: &EnvTargets,
) -> anyhow::Result<Vec<TriggerStatus>> {
    let routed: Vec<&Target> = targets
        .all
        .iter()
        .filter(|t| t.triggers.http.is_some())
        .collect();
    if routed.is_empty() {
        return Ok(Vec::new());
    }
    let api = find_api(clients, targets).await?;
    let (url, stage_exists) = match &api {
        None => (String::new(), false),
        Some(api) => {
            let stage = stage_name(targets);
            let exists = stage_variables_of(clients, &api.id, stage).await?.is_some();
            (invoke_url(targets, api), exists)
        }
    };
    let mut statuses = vec![TriggerStatus {
        kind: "http",
        function: None,
        target: url,
        state: match (&api, stage_exists) {
            (None, _) => "API missing".to_owned(),
            (Some(_), false) => format!("stage `{}` missing", stage_name(targets)),
            (Some(_), true) => format!("stage `{}` deployed", stage_name(targets)),
        },
    }];
    for target in routed {
        statuses.push(TriggerStatus {
            kind: "http",
            function: Some(target.function.clone()),
            target: target.triggers.http.clone().unwrap_or_default().join(", "),
            state: "routes".to_owned(),
        });
    }
    Ok(statuses)
}
