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

use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType, Stage};

use super::permission::{self, Permission};
use super::{Converge, EnvTargets, Target, TriggerStatus};
use crate::deploy::aws::{failed, EnvClients};
use crate::manifest::Strategy;

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

pub async fn converge(
    clients: &EnvClients,
    targets: &EnvTargets,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let wants_api = targets.all.iter().any(|t| t.triggers.http.is_some());
    let api = find_api(clients, targets).await?;
    let name = api_name(targets);
    let api_id = match (api, wants_api) {
        (None, false) => return Ok(()),
        (Some(api), false) => {
            if targets.whole_app {
                remove_environment(clients, targets, &api, mode).await?;
            }
            for target in targets.in_scope() {
                permission::revoke(
                    clients,
                    target,
                    &permission_id(targets),
                    "the HTTP API",
                    mode,
                )
                .await?;
            }
            return Ok(());
        }
        (Some(api), true) => Some(api.id),
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
                Some(created.api_id().unwrap_or_default().to_owned())
            } else {
                None
            }
        }
    };
    converge_stage(clients, targets, api_id.as_deref(), mode).await?;
    let integrations = converge_integrations(clients, targets, api_id.as_deref(), mode).await?;
    converge_routes(clients, targets, api_id.as_deref(), &integrations, mode).await?;
    for target in targets.in_scope() {
        let sid = permission_id(targets);
        if target.triggers.http.is_none() {
            permission::revoke(clients, target, &sid, "the HTTP API", mode).await?;
            continue;
        }
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
            "API `{name}` stage `{}` to invoke alias `{}`",
            stage_name(targets),
            target.alias
        );
        permission::converge(clients, target, &wanted, &what, mode).await?;
    }
    Ok(())
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

/// The API's integrations as this run leaves them.
#[derive(Debug, Default)]
struct Integrations {
    /// The integration id of each function with routes, by the function's manifest key (`None`
    /// while planning an integration that does not exist yet).
    by_function: BTreeMap<String, Option<String>>,
    /// Integrations whose function has no routes any more (or left the manifest): they go,
    /// with their routes.
    stale: Vec<String>,
}

impl Integrations {
    /// A route's target for `function`'s integration.
    fn target_of(&self, function: &str) -> Option<String> {
        self.by_function
            .get(function)
            .cloned()
            .flatten()
            .map(|id| format!("integrations/{id}"))
    }
}

async fn converge_integrations(
    clients: &EnvClients,
    targets: &EnvTargets,
    api_id: Option<&str>,
    mode: &mut Converge,
) -> anyhow::Result<Integrations> {
    let existing: Vec<(String, String)> = match api_id {
        Some(api_id) => all_pages!(clients, get_integrations, api_id, "integrations")
            .iter()
            .map(|i| {
                (
                    i.integration_id().unwrap_or_default().to_owned(),
                    i.integration_uri().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        None => Vec::new(),
    };
    let mut integrations = Integrations::default();
    for target in &targets.all {
        if target.triggers.http.is_none() {
            continue;
        }
        let uri = integration_uri(clients, targets, target);
        let found = existing.iter().find(|(_, u)| invokes(u, &target.name));
        let in_scope = targets.in_scope().any(|t| t.function == target.function);
        let id = match found {
            Some((id, current)) if *current == uri || !in_scope => Some(id.clone()),
            Some((id, _)) => {
                if mode.change(format!("{}: integration -> {uri}", target.function)) {
                    clients
                        .apigw
                        .update_integration()
                        .api_id(api_id.unwrap_or_default())
                        .integration_id(id)
                        .integration_uri(&uri)
                        .payload_format_version("2.0")
                        .send()
                        .await
                        .map_err(failed(format!(
                            "update the integration of `{}`",
                            target.name
                        )))?;
                }
                Some(id.clone())
            }
            None if !in_scope => continue,
            None => {
                if mode.change(format!("{}: create integration {uri}", target.function)) {
                    let created = clients
                        .apigw
                        .create_integration()
                        .api_id(api_id.unwrap_or_default())
                        .integration_type(IntegrationType::AwsProxy)
                        .integration_uri(&uri)
                        .payload_format_version("2.0")
                        .send()
                        .await
                        .map_err(failed(format!(
                            "create the integration of `{}`",
                            target.name
                        )))?;
                    created.integration_id().map(str::to_owned)
                } else {
                    None
                }
            }
        };
        integrations.by_function.insert(target.function.clone(), id);
    }
    // Integrations of functions that no longer have routes (or left the manifest).
    for (id, uri) in &existing {
        let owner = targets.all.iter().find(|t| invokes(uri, &t.name));
        let stale = match owner {
            Some(owner) => {
                owner.triggers.http.is_none()
                    && targets.in_scope().any(|t| t.function == owner.function)
            }
            None => targets.whole_app,
        };
        if stale {
            integrations.stale.push(id.clone());
        }
    }
    Ok(integrations)
}

async fn converge_routes(
    clients: &EnvClients,
    targets: &EnvTargets,
    api_id: Option<&str>,
    integrations: &Integrations,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let existing: Vec<ExistingRoute> = match api_id {
        Some(api_id) => all_pages!(clients, get_routes, api_id, "routes")
            .iter()
            .map(|r| {
                (
                    r.route_id().unwrap_or_default().to_owned(),
                    r.route_key().unwrap_or_default().to_owned(),
                    r.target().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        None => Vec::new(),
    };
    let wanted: Vec<WantedRoute> = targets
        .in_scope()
        .flat_map(|t| {
            t.triggers.http.iter().flatten().map(|key| WantedRoute {
                function: t.function.clone(),
                key: key.clone(),
                target: integrations.target_of(&t.function),
            })
        })
        .collect();
    // Routes to this run's integrations, or to integrations that go, are deploy's to remove.
    let owned: Vec<String> = targets
        .in_scope()
        .filter_map(|t| integrations.target_of(&t.function))
        .chain(
            integrations
                .stale
                .iter()
                .map(|id| format!("integrations/{id}")),
        )
        .collect();
    let api_id = api_id.unwrap_or_default();
    for change in route_changes(&existing, &wanted, &owned) {
        match change {
            RouteChange::Create(route) => {
                if mode.change(format!("{}: create route `{}`", route.function, route.key)) {
                    clients
                        .apigw
                        .create_route()
                        .api_id(api_id)
                        .route_key(&route.key)
                        .set_target(route.target)
                        .send()
                        .await
                        .map_err(failed(format!("create route `{}`", route.key)))?;
                }
            }
            RouteChange::Retarget { id, route } => {
                if mode.change(format!(
                    "{}: route `{}` -> its integration",
                    route.function, route.key
                )) {
                    clients
                        .apigw
                        .update_route()
                        .api_id(api_id)
                        .route_id(id)
                        .set_target(route.target)
                        .send()
                        .await
                        .map_err(failed(format!("update route `{}`", route.key)))?;
                }
            }
            RouteChange::Delete { id, key } => {
                if mode.change(format!("remove route `{key}`")) {
                    clients
                        .apigw
                        .delete_route()
                        .api_id(api_id)
                        .route_id(id)
                        .send()
                        .await
                        .map_err(failed(format!("delete route `{key}`")))?;
                }
            }
        }
    }
    for id in &integrations.stale {
        if mode.change(format!(
            "remove integration {id} (its function has no routes now)"
        )) {
            clients
                .apigw
                .delete_integration()
                .api_id(api_id)
                .integration_id(id)
                .send()
                .await
                .map_err(failed(format!("delete integration {id}")))?;
        }
    }
    Ok(())
}

/// A route the manifest wants.
#[derive(Debug, Clone, PartialEq)]
struct WantedRoute {
    function: String,
    key: String,
    /// `integrations/<id>`; `None` while planning an integration not created yet.
    target: Option<String>,
}

/// A route on the API: (id, key, target).
type ExistingRoute = (String, String, String);

#[derive(Debug, PartialEq)]
enum RouteChange {
    Create(WantedRoute),
    Retarget { id: String, route: WantedRoute },
    Delete { id: String, key: String },
}

/// What turns the API's routes into the wanted ones: missing routes are created, routes that
/// reach the wrong integration are retargeted, and routes deploy owns (they reach `owned`
/// targets) that nobody wants any more are deleted. Routes to anything else are left alone.
fn route_changes(
    existing: &[ExistingRoute],
    wanted: &[WantedRoute],
    owned: &[String],
) -> Vec<RouteChange> {
    let mut changes = Vec::new();
    for route in wanted {
        match existing.iter().find(|(_, key, _)| *key == route.key) {
            None => changes.push(RouteChange::Create(route.clone())),
            Some((id, _, current)) if Some(current) != route.target.as_ref() => {
                changes.push(RouteChange::Retarget {
                    id: id.clone(),
                    route: route.clone(),
                });
            }
            Some(_) => {}
        }
    }
    for (id, key, current) in existing {
        if !wanted.iter().any(|w| w.key == *key) && owned.contains(current) {
            changes.push(RouteChange::Delete {
                id: id.clone(),
                key: key.clone(),
            });
        }
    }
    changes
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

#[cfg(test)]
mod tests {
    use super::{invokes, route_changes, RouteChange, WantedRoute};

    fn wanted(function: &str, key: &str, target: &str) -> WantedRoute {
        WantedRoute {
            function: function.into(),
            key: key.into(),
            target: Some(target.into()),
        }
    }

    fn existing(id: &str, key: &str, target: &str) -> (String, String, String) {
        (id.into(), key.into(), target.into())
    }

    #[test]
    fn routes_converge_on_what_is_wanted_and_leave_others_alone() {
        let web = "integrations/web";
        let existing = [
            existing("r1", "GET /hello/{name}", web),
            existing("r2", "POST /orders", "integrations/old-web"),
            existing("r3", "DELETE /orders", web),
            existing("r4", "GET /admin", "integrations/someone-else"),
        ];
        let wanted = [
            wanted("web", "GET /hello/{name}", web),
            wanted("web", "POST /orders", web),
            wanted("web", "PUT /orders", web),
        ];
        let changes = route_changes(&existing, &wanted, &[web.to_owned()]);
        assert_eq!(
            changes,
            [
                RouteChange::Retarget {
                    id: "r2".into(),
                    route: wanted[1].clone()
                },
                RouteChange::Create(wanted[2].clone()),
                RouteChange::Delete {
                    id: "r3".into(),
                    key: "DELETE /orders".into()
                },
            ]
        );
    }

    #[test]
    fn an_unchanged_api_needs_no_change() {
        let existing = [existing("r1", "ANY /{proxy+}", "integrations/a")];
        let wanted = [wanted("a", "ANY /{proxy+}", "integrations/a")];
        assert_eq!(
            route_changes(&existing, &wanted, &["integrations/a".into()]),
            []
        );
    }

    #[test]
    fn an_integration_belongs_to_exactly_its_function() {
        let uri =
            "arn:aws:lambda:eu-west-1:123456789012:function:demo-hello:${stageVariables.alias}";
        assert!(invokes(uri, "demo-hello"));
        assert!(!invokes(uri, "demo-hell"));
        assert!(!invokes(uri, "demo-hello2"));
        assert!(invokes(
            "arn:aws:lambda:eu-west-1:1:function:demo-hello",
            "demo-hello"
        ));
    }
}
