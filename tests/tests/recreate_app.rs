//! The repository's own app, recreated from nothing: with `lambda-stage.toml` as it is committed
//! and an empty AWS account (moto on 127.0.0.1), one `cargo xtask deploy --env <name>` per
//! environment creates every function, execution role, version and alias the manifest
//! describes, and after the account is wiped the same commands bring back the same app.
//!
//! The expectations below are read from the manifest's TOML directly, not through the code under
//! test; only the naming rules the README documents (`{app}-{function}`, `<name>-exec`,
//! `APP_<ENV>__<FIELD>`) are restated here.

use std::collections::BTreeMap;

use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::deploy_stage::{assert_ok, variable, Stage, ACCOUNT};
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
    let environments = table(&manifest, "environments");
    assert!(functions.len() > 1 && environments.len() > 1);

    let stage = Stage::start_in(region).await;
    stage.write_manifest(&text);
    for round in ["an empty account", "the same account, wiped"] {
        // Secret values live in SSM, put there by a person, never in the repository: the one
        // thing that exists before the first deploy.
        for spec in environments.values() {
            for reference in strings(spec.as_table().unwrap(), "secrets").values() {
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
            let wanted = strings(env_spec, "vars")
                .into_iter()
                .chain(strings(env_spec, "secrets"));
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
    Ok(())
}
