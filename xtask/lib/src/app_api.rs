//! The app's HTTP API as deployed from the manifest's `http` triggers: a single-stack app has
//! one API with a stage per environment, named after it, so `/<env>` leads every path; a
//! multi-stack app has one API per environment, on its `$default` stage. `serve` mounts it and
//! `invoke` builds an `http` function's default event from it.

use anyhow::Context as _;
use lambda_stage_events::DEFAULT_STAGE_OR_ROUTE;

use crate::manifest::{Manifest, Strategy};
use crate::routes::{Route, RouteTable};

/// The stage API Gateway delivers `env`'s requests on.
pub fn stage(manifest: &Manifest, env: &str) -> String {
    match manifest.strategy {
        Strategy::SingleStack => env.to_owned(),
        Strategy::MultiStack => DEFAULT_STAGE_OR_ROUTE.to_owned(),
    }
}

/// The routes `functions` (manifest keys, each with what its routes lead to) have in `env`.
pub fn routes<'a, T: Clone>(
    manifest: &Manifest,
    env: &str,
    functions: impl IntoIterator<Item = (&'a str, T)>,
) -> anyhow::Result<RouteTable<T>> {
    let mut table = RouteTable::default();
    for (function, target) in functions {
        for key in manifest.triggers(function, env)?.http.into_iter().flatten() {
            let route = Route::parse(&key)
                .with_context(|| format!("function `{function}`'s route in `{env}`"))?;
            table.add(route, target.clone());
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const APP: &str = r#"
app = "demo"
[functions.api]
http = { routes = ["GET /hello/{name}"] }
[functions.worker]
[environments.dev]
[environments.staging]
"#;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new("lambda-stage.toml"), text).unwrap()
    }

    #[test]
    fn single_stack_stages_are_named_after_environments_multi_stack_uses_default() {
        let single = manifest(APP);
        assert_eq!(stage(&single, "staging"), "staging");
        let multi = manifest(&format!("strategy = \"multi-stack\"\n{APP}"));
        assert_eq!(stage(&multi, "staging"), "$default");
    }

    #[test]
    fn only_functions_with_http_have_routes() {
        let manifest = manifest(APP);
        let table = routes(&manifest, "dev", [("api", 0), ("worker", 1)]).unwrap();
        let keys: Vec<(&str, &i32)> = table.iter().map(|(r, t)| (r.key(), t)).collect();
        assert_eq!(keys, [("GET /hello/{name}", &0)]);
    }
}
