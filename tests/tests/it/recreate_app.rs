//! The repository's own app, recreated from nothing: with `lambda-stage.toml` as it is committed
//! and an empty AWS account (moto on 127.0.0.1), one `cargo xtask deploy --env <name>` per
//! environment creates every function, execution role, version, alias and trigger (the HTTP API,
//! its stages and routes, queues and their mappings, schedules) the manifest describes; a second
//! run writes nothing; and after the account is wiped the same commands bring back the same app.
//!
//! The expectations below are read from the manifest's TOML directly, not through the code under
//! test; only the naming rules the README documents (`{app}-{function}`, `<name>-exec`,
//! `APP_<ENV>__<FIELD>`, the API named after the app with a stage per environment, rules named
//! `{app}-{function}-{env}`) are restated here.

use std::collections::BTreeMap;

use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::deploy_stage::{assert_ok, variable, Stage, ACCOUNT};
use lambda_stage_tests::moto_reads;
use serde_json::Value;

/// The committed manifest, as a plain TOML document.
fn repository_manifest() -> (String, toml::Table) {
    let text = std::fs::read_to_string(workspace_root().join("lambda-stage.toml"))
        .expect("the repository has a lambda-stage.toml");
    let table = text.parse().expect("lambda-stage.toml is TOML");
    (text, table)
}

fn table<'a>(parent: &'a toml::Table, key: &str) -> &'a toml::Table {
    parent[key]
        .as_table()
        .unwrap_or_else(|| panic!("`{key}` is a table"))
}

/// `table` (`vars` or `secrets`) of `function` in `env`: the environment's, then the function's
/// own section in that environment, which wins.
fn variables_of(
    environments: &toml::Table,
    env: &str,
    function: &str,
    table: &str,
) -> BTreeMap<String, String> {
    let env_spec = environments[env].as_table().unwrap();
    let mut values = strings(env_spec, table);
    if let Some(own) = env_spec
        .get("functions")
        .and_then(|f| f.get(function))
        .and_then(toml::Value::as_table)
    {
        values.extend(strings(own, table));
    }
    values
}

/// A trigger table of `function` in `env`: `[functions.<fn>]`'s, overridden key by key by
/// `[environments.<env>.functions.<fn>]`'s.
fn trigger(
    functions: &toml::Table,
    environments: &toml::Table,
    env: &str,
    function: &str,
    kind: &str,
) -> Option<toml::Table> {
    let mut merged = functions[function].get(kind)?.as_table()?.clone();
    if let Some(over) = environments[env]
        .get("functions")
        .and_then(|f| f.get(function))
        .and_then(|f| f.get(kind))
        .and_then(toml::Value::as_table)
    {
        merged.extend(over.clone());
    }
    Some(merged)
}

fn strings(parent: &toml::Table, key: &str) -> BTreeMap<String, String> {
    parent
        .get(key)
        .and_then(toml::Value::as_table)
        .map_or_else(BTreeMap::new, |values| {
            values
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
                .collect()
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_deploy_per_environment_recreates_the_whole_app_from_an_empty_account() {
    let (text, manifest) = repository_manifest();
    assert_eq!(
        manifest["strategy"].as_str(),
        Some("single-stack"),
        "this test restates the single-stack naming rules"
    );
    let app = manifest["app"].as_str().unwrap();
    let region = manifest["region"].as_str().unwrap();
    let functions = table(&manifest, "functions");
    // Preview templates (`pr-*`) are no environments of their own: pull requests make them.
    let environments: toml::Table = table(&manifest, "environments")
        .iter()
        .filter(|(key, _)| !key.contains('*'))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let environments = &environments;
    assert!(functions.len() > 1 && environments.len() > 1);

    let stage = Stage::start_in(region).await;
    stage.write_manifest(&text);
    for round in ["an empty account", "the same account, wiped"] {
        // Secret values live in SSM, put there by a person, never in the repository: the one
        // thing that exists before the first deploy.
        for env in environments.keys() {
            for reference in functions
                .keys()
                .flat_map(|key| variables_of(environments, env, key, "secrets").into_values())
            {
                let name = reference
                    .strip_prefix("ssm:")
                    .expect("the demo's secrets are SSM references");
                stage.put_parameter(region, name).await;
            }
        }
        for (env, spec) in environments {
            let mut deploy = vec!["deploy", "--env", env, "--profile", "dev"];
            if spec.get("protected").and_then(toml::Value::as_bool) == Some(true) {
                deploy.push("--yes");
            }
            let run = stage.xtask(&deploy).await;
            assert_ok(&run);
        }
        assert_app_is_deployed(&stage, app, functions, environments)
            .await
            .unwrap_or_else(|problem| panic!("after deploying to {round}: {problem}"));
        // The same commands again write nothing: the app is what the manifest says.
        stage.proxy.reset_counts();
        for (env, spec) in environments {
            let mut deploy = vec!["deploy", "--env", env, "--profile", "dev"];
            if spec.get("protected").and_then(toml::Value::as_bool) == Some(true) {
                deploy.push("--yes");
            }
            assert_ok(&stage.xtask(&deploy).await);
        }
        assert_eq!(stage.proxy.writes(), Vec::<String>::new(), "{round}");
        stage.moto.reset().await.expect("moto resets");
        assert!(
            stage
                .moto
                .get_json_in(region, &format!("/2015-03-31/functions/{app}-hello"))
                .await
                .map_or(true, |(status, _)| status == 404),
            "the reset account is empty"
        );
    }
}

/// Everything the manifest describes exists in moto, as read directly from moto.
async fn assert_app_is_deployed(
    stage: &Stage,
    app: &str,
    functions: &toml::Table,
    environments: &toml::Table,
) -> Result<(), String> {
    let mut aliases_of_every_env: Vec<&str> = environments.keys().map(String::as_str).collect();
    aliases_of_every_env.sort_unstable();
    for (key, spec) in functions {
        let name = format!("{app}-{key}");
        let (status, function) = stage
            .moto
            .get_json_in(&stage.region, &format!("/2015-03-31/functions/{name}"))
            .await
            .map_err(|err| format!("{name}: {err:#}"))?;
        if status != 200 {
            return Err(format!("function {name} is missing: {function}"));
        }
        let config = &function["Configuration"];
        let arch = spec["arch"].as_str().unwrap_or("arm64");
        if config["Architectures"] != serde_json::json!([arch]) {
            return Err(format!("{name} is not {arch}: {config}"));
        }
        if let Some(memory) = spec.get("memory").and_then(toml::Value::as_integer) {
            if config["MemorySize"] != memory {
                return Err(format!("{name}: memory {memory} expected: {config}"));
            }
        }

        // The managed execution role exists and is the function's.
        let role = format!("arn:aws:iam::{ACCOUNT}:role/{name}-exec");
        if config["Role"] != role.as_str() {
            return Err(format!("{name} should run as {role}: {config}"));
        }
        let (status, body) = lambda_stage_tests::moto::request_with(
            "POST",
            &stage.moto.endpoint(),
            &format!("Action=GetRole&Version=2010-05-08&RoleName={name}-exec"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x",
                ),
            ],
        )
        .await
        .map_err(|err| format!("GetRole: {err:#}"))?;
        if status != 200 {
            return Err(format!("role {name}-exec is missing: {body}"));
        }

        // The deployed code is the zip `cargo xtask build` recorded for this function.
        let record_path = workspace_root()
            .join("target/lambda")
            .join(key)
            .join(arch)
            .join("build.json");
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(&record_path)
                .map_err(|err| format!("{}: {err}", record_path.display()))?,
        )
        .map_err(|err| format!("{}: {err}", record_path.display()))?;

        for (env, env_spec) in environments {
            let env_spec = env_spec.as_table().unwrap();
            let alias = env_spec
                .get("alias")
                .and_then(toml::Value::as_str)
                .unwrap_or(env);
            let version = stage
                .alias_version(&name, alias)
                .await
                .ok_or_else(|| format!("{name} has no alias `{alias}`"))?;
            let deployed = stage.version(&name, &version).await;
            if deployed["CodeSha256"] != record["code_sha256"] {
                return Err(format!(
                    "{name}:{alias} runs code {} but the build recorded {}",
                    deployed["CodeSha256"], record["code_sha256"]
                ));
            }
            if variable(&deployed, "LAMBDA_STAGE_ENVS").as_deref()
                != Some(aliases_of_every_env.join(",").as_str())
            {
                return Err(format!(
                    "{name}:{alias} does not serve every environment: {deployed}"
                ));
            }
            let prefix = format!("APP_{}__", alias.to_uppercase().replace('-', "_"));
            let wanted = variables_of(environments, env, key, "vars")
                .into_iter()
                .chain(variables_of(environments, env, key, "secrets"));
            for (variable_name, value) in wanted {
                let field = variable_name
                    .strip_prefix("APP_")
                    .expect("the demo's variables are APP_ ones");
                let stored = format!("{prefix}{field}");
                if variable(&deployed, &stored).as_deref() != Some(value.as_str()) {
                    return Err(format!(
                        "{name}:{alias} should have {stored}={value}: {deployed}"
                    ));
                }
            }
        }
    }
    assert_triggers_are_wired(stage, app, functions, environments).await
}

/// Every trigger the manifest names, per environment, reaches that environment's alias, as read
/// from moto (one API for the app with a stage per environment, a queue and a mapping per
/// environment, a rule per environment: the README's single-stack naming).
async fn assert_triggers_are_wired(
    stage: &Stage,
    app: &str,
    functions: &toml::Table,
    environments: &toml::Table,
) -> Result<(), String> {
    let aws = moto_reads::connect(&stage.moto.endpoint(), &stage.region).await;
    let apis = aws.apis().await;
    let alias_arn = |key: &str, alias: &str| {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT}:function:{app}-{key}:{alias}",
            stage.region
        )
    };
    for (env, env_spec) in environments {
        let alias = env_spec
            .get("alias")
            .and_then(toml::Value::as_str)
            .unwrap_or(env);
        for key in functions.keys() {
            if let Some(http) = trigger(functions, environments, env, key, "http") {
                let api = apis
                    .get(app)
                    .ok_or_else(|| format!("no HTTP API `{app}`: {apis:?}"))?;
                let stages = aws.stages(api).await;
                if stages
                    .get(env)
                    .and_then(|v| v.get("alias"))
                    .map(String::as_str)
                    != Some(alias)
                {
                    return Err(format!(
                        "stage `{env}` should name alias `{alias}`: {stages:?}"
                    ));
                }
                let routes = aws.routes(api).await;
                let uri = format!(
                    "arn:aws:lambda:{}:{ACCOUNT}:function:{app}-{key}:${{stageVariables.alias}}",
                    stage.region
                );
                for route in http["routes"].as_array().unwrap() {
                    let route = route.as_str().unwrap();
                    if routes.get(route) != Some(&uri) {
                        return Err(format!("route `{route}` should reach {uri}: {routes:?}"));
                    }
                }
            }
            if let Some(sqs) = trigger(functions, environments, env, key, "sqs") {
                let queue = sqs["queue"]
                    .as_str()
                    .unwrap()
                    .replace("{app}", app)
                    .replace("{env}", env);
                if !aws.queue_exists(&queue).await {
                    return Err(format!("queue `{queue}` is missing"));
                }
                let queue_arn = format!("arn:aws:sqs:{}:{ACCOUNT}:{queue}", stage.region);
                let mapped = aws.mapped_sources(&alias_arn(key, alias)).await;
                if mapped != [queue_arn.clone()] {
                    return Err(format!(
                        "{key}:{alias} should consume {queue_arn}: {mapped:?}"
                    ));
                }
            }
            if let Some(schedule) = trigger(functions, environments, env, key, "schedule") {
                let rule = format!("{app}-{key}-{env}");
                let enabled = schedule.get("enabled").and_then(toml::Value::as_bool) != Some(false);
                let found = aws
                    .rule(&rule)
                    .await
                    .ok_or_else(|| format!("rule `{rule}` is missing"))?;
                let state = if enabled { "ENABLED" } else { "DISABLED" };
                if found.0 != state || found.1 != alias_arn(key, alias) {
                    return Err(format!(
                        "rule `{rule}` should be {state} on {}: {found:?}",
                        alias_arn(key, alias)
                    ));
                }
            }
        }
    }
    Ok(())
}
