//! The API's integrations (one per function with routes, selecting its alias) and its routes,
//! converged on what the manifest wants; routes of functions outside this run are kept.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::IntegrationType;

use super::{integration_uri, invokes};
use crate::deploy::aws::{failed, EnvClients};
use crate::deploy::triggers::{Converge, EnvTargets};

/// The API's integrations as this run leaves them.
#[derive(Debug, Default)]
pub(super) struct Integrations {
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

pub(super) async fn converge_integrations(
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

pub(super) async fn converge_routes(
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
