//! What `serve` says about itself: the start-up lines, `GET /`, and the 404 of a path that
//! names no function or environment (the same text, after a line saying what was not found).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::Shared;

impl Shared {
    /// What is served here and at which URLs: the answer to `GET /` and, after a line saying
    /// what was not found, to a path that is not served.
    pub(super) fn index(&self) -> String {
        let addr = self.addr;
        let functions: Vec<&str> = self.functions.iter().map(|f| f.key.as_str()).collect();
        let mut text = format!(
            "cargo xtask serve: a local Lambda on http://{addr}\nfunctions: {}\n",
            functions.join(", ")
        );
        if let Some(manifest) = &self.manifest {
            let environments: Vec<&str> =
                manifest.environments.keys().map(String::as_str).collect();
            text.push_str(&format!(
                "environments: {} (default: {})\n",
                environments.join(", "),
                self.default_env
            ));
        }
        text.push_str(&format!(
            "URLs:\n  POST /2015-03-31/functions/<function>[:<env alias>]/invocations: the AWS Invoke API \
             (aws lambda invoke --endpoint-url http://{addr})\n  \
             <METHOD> /<function>/<path>: one function, sent an HTTP API event for /<path>, in `{}`\n",
            self.default_env
        ));
        let mounted: Vec<&str> = self.apis.keys().map(String::as_str).collect();
        match mounted.is_empty() {
            true => text.push_str("  (no /<env>/<route>: no served function has an http route)\n"),
            false => text.push_str(&format!(
                "  <METHOD> /<env>/<route>: the app's HTTP API as deployed, for {}\n",
                mounted.join(", ")
            )),
        }
        text.push_str("served:\n");
        for line in self.served_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// [`Server::start_up_lines`].
    pub(super) fn served_lines(&self) -> Vec<String> {
        let addr = self.addr;
        let mut lines = Vec::new();
        for function in &self.functions {
            let name = &function.key;
            let front = match self.apis.contains_key(name) {
                false => format!("front http://{addr}/{name}/"),
                true => match self.deployed_name(name) {
                    Some(deployed) => format!(
                        "front http://{addr}/{deployed}/ (/{name}/ is environment `{name}`'s API)"
                    ),
                    None => format!("no front (/{name}/ is environment `{name}`'s API)"),
                },
            };
            lines.push(format!(
                "  {name}: POST http://{addr}/2015-03-31/functions/{name}/invocations, {front}"
            ));
        }
        for (env, api) in &self.apis {
            for (route, index) in api.routes.iter() {
                let (method, path) = route.display_parts();
                lines.push(format!(
                    "  {method} http://{addr}/{env}{path} -> {} ({env})",
                    self.functions[*index].key
                ));
            }
        }
        lines
    }

    /// The name `function` is deployed under in the default environment, if the manifest lists it.
    fn deployed_name(&self, function: &str) -> Option<String> {
        let manifest = self.manifest.as_ref()?;
        manifest.function(function)?;
        Some(manifest.function_name(function, &self.default_env))
    }
}

/// `/`: what is served here.
pub(super) async fn index(State(shared): State<Arc<Shared>>) -> String {
    shared.index()
}

/// A path nothing is served at.
pub(super) async fn not_served(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("nothing is served at {}\n\n{}", uri.path(), shared.index()),
    )
        .into_response()
}
