//! `cargo xtask pipeline`: the generated GitHub and Bitbucket pipelines validate against the
//! providers' published JSON schemas (through `check-jsonschema`), a broken one does not, they
//! do what the delivery flow needs (previews included, only with a template), and this
//! repository's committed workflow is current.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lambda_stage_repo_xtask::setup::CHECK_JSONSCHEMA_REQUIREMENT;
use lambda_stage_tests::bins::workspace_root;
use lambda_stage_xtask::manifest::Manifest;
use lambda_stage_xtask::pipeline::{self, Provider};
use lambda_stage_xtask::tools;
use serde_json::Value;

/// A multi-stack app with two protected environments and a staging in another order than
/// alphabetical, to exercise every branch of the generator.
const MULTI_STACK: &str = r#"
app = "orders"
strategy = "multi-stack"
region = "eu-west-1"

[functions.api]
create-role = true

[environments.dev]
[environments.staging]
region = "eu-central-1"
[environments.prod]
protected = true
account-id = "123456789012"
[environments.prod-us]
protected = true
region = "us-east-1"
account-id = "210987654321"
"#;

/// `MULTI_STACK` with a preview template, in a region of its own so the preview jobs' region
/// is seen to come from the template.
fn with_previews() -> String {
    format!("{MULTI_STACK}[environments.\"pr-*\"]\nregion = \"us-west-2\"\n")
}

fn check_jsonschema() -> PathBuf {
    tools::venv_bin(
        workspace_root(),
        CHECK_JSONSCHEMA_REQUIREMENT,
        "check-jsonschema",
    )
    .expect("check-jsonschema in the project venv")
}

/// Runs the provider's published schema over `text`; `Err` carries check-jsonschema's output.
fn schema_check(provider: Provider, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.yml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(check_jsonschema())
        .args(["--builtin-schema", provider.builtin_schema()])
        .arg(&path)
        .output()
        .expect("check-jsonschema runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The YAML as JSON, read by the YAML parser check-jsonschema itself uses (ruamel.yaml).
fn as_json(text: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.yml");
    std::fs::write(&path, text).unwrap();
    let python = check_jsonschema().with_file_name("python");
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom ruamel.yaml import YAML\nprint(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn generate(manifest_text: &str, provider: Provider) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lambda-stage.toml"), manifest_text).unwrap();
    pipeline::generate_for_workspace(dir.path(), provider).unwrap()
}

fn repo_manifest() -> String {
    std::fs::read_to_string(workspace_root().join("lambda-stage.toml")).unwrap()
}

fn scripts(steps: &Value) -> String {
    steps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn generated_pipelines_pass_the_providers_published_schemas() {
    for manifest in [repo_manifest(), MULTI_STACK.to_owned(), with_previews()] {
        for provider in Provider::ALL {
            let text = generate(&manifest, provider);
            if let Err(problems) = schema_check(provider, &text) {
                panic!(
                    "{} pipeline fails {}:\n{problems}\n---\n{text}",
                    provider.as_str(),
                    provider.builtin_schema()
                );
            }
        }
    }
}

#[test]
fn a_broken_pipeline_fails_the_schema_check() {
    let github = generate(&repo_manifest(), Provider::Github);
    let broken = github.replacen("    runs-on: ubuntu-latest\n", "    runs-on: 42\n", 1);
    assert_ne!(broken, github);
    let problems = schema_check(Provider::Github, &broken).expect_err("runs-on: 42 is invalid");
    assert!(
        problems.contains("runs-on") || problems.contains("jobs"),
        "{problems}"
    );

    let bitbucket = generate(&repo_manifest(), Provider::Bitbucket);
    let broken = bitbucket.replacen("trigger: manual", "trigger: sometimes", 1);
    assert_ne!(broken, bitbucket);
    schema_check(Provider::Bitbucket, &broken).expect_err("trigger: sometimes is invalid");
}

#[test]
fn github_runs_ci_on_prs_deploys_staging_from_main_and_promotes_prod_by_hand() {
    let text = generate(&repo_manifest(), Provider::Github);
    let workflow = as_json(&text);
    let on = &workflow["on"];
    assert!(on.get("pull_request").is_some(), "{on}");
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]));
    assert_eq!(
        on["workflow_dispatch"]["inputs"]["environment"]["options"],
        serde_json::json!(["prod"])
    );

    let jobs = workflow["jobs"].as_object().unwrap();
    let names: Vec<&str> = jobs.keys().map(String::as_str).collect();
    // The repository's manifest has a `pr-*` template, hence the preview jobs (serde_json
    // sorts the keys).
    assert_eq!(
        names,
        [
            "ci",
            "deploy-preview",
            "deploy-staging",
            "destroy-preview",
            "promote-prod"
        ]
    );

    let ci = &jobs["ci"];
    assert!(scripts(&ci["steps"]).ends_with("cargo xtask ci"), "{ci}");

    let deploy = &jobs["deploy-staging"];
    assert_eq!(deploy["needs"], "ci");
    assert!(deploy["if"].as_str().unwrap().contains("refs/heads/main"));
    assert_eq!(deploy["environment"], "staging");
    let run = scripts(&deploy["steps"]);
    let build = run.find("cargo xtask build --all --arch all").expect(&run);
    let ship = run.find("cargo xtask deploy --env staging").expect(&run);
    assert!(
        build < ship,
        "build once, then deploy what was built:\n{run}"
    );
    assert_eq!(run.matches("cargo xtask build").count(), 1, "{run}");
    let uploads: Vec<&Value> = deploy["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .collect();
    assert_eq!(uploads.len(), 1, "the zips are kept: {deploy}");
    assert_eq!(uploads[0]["with"]["path"], "target/lambda/");

    let promote = &jobs["promote-prod"];
    let condition = promote["if"].as_str().unwrap();
    assert!(condition.contains("workflow_dispatch"), "{condition}");
    assert_eq!(promote["environment"], "prod");
    assert_eq!(
        scripts(&promote["steps"]),
        "cargo xtask promote --from staging --to prod --yes"
    );

    // Credentials: an OIDC role from the environment's secret store, nothing in the file.
    for job in [deploy, promote] {
        assert_eq!(job["permissions"]["id-token"], "write");
        let aws = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials"))
            })
            .expect("an AWS credentials step");
        assert_eq!(aws["with"]["role-to-assume"], "${{ secrets.AWS_ROLE_ARN }}");
        assert_eq!(aws["with"]["aws-region"], "eu-west-1");
    }
    for forbidden in ["aws-access-key-id", "aws-secret-access-key", "AKIA"] {
        assert!(!text.contains(forbidden), "`{forbidden}` in the workflow");
    }
    // Cargo is cached.
    assert!(text.contains("actions/cache@"), "{text}");
}

#[test]
fn bitbucket_promotes_to_production_in_a_manual_step() {
    let text = generate(MULTI_STACK, Provider::Bitbucket);
    let pipelines = as_json(&text);
    assert_eq!(
        pipelines["pipelines"]["pull-requests"]["**"][0]["step"]["script"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "cargo xtask ci"
    );
    let main = pipelines["pipelines"]["branches"]["main"]
        .as_array()
        .unwrap();
    assert_eq!(main.len(), 4, "ci, staging, prod, prod-us: {text}");
    assert_eq!(main[0]["step"]["name"], "cargo xtask ci");
    let staging = &main[1]["step"];
    assert_eq!(staging["deployment"], "staging");
    assert_eq!(
        staging["artifacts"],
        serde_json::json!(["target/lambda/**"])
    );
    let script: Vec<&str> = staging["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert!(
        script.contains(&"cargo xtask build --all --arch all"),
        "{script:?}"
    );
    assert_eq!(*script.last().unwrap(), "cargo xtask deploy --env staging");
    assert!(
        script
            .iter()
            .any(|line| line.contains("AWS_REGION=\"eu-central-1\"")),
        "staging's own region: {script:?}"
    );
    for (step, env, deployment) in [
        (&main[2], "prod", "production"),
        (&main[3], "prod-us", "prod-us"),
    ] {
        let step = &step["step"];
        assert_eq!(step["trigger"], "manual");
        assert_eq!(step["deployment"], deployment);
        assert_eq!(step["oidc"], true);
        assert_eq!(
            step["script"].as_array().unwrap().last().unwrap(),
            &format!("cargo xtask promote --from staging --to {env} --yes")
        );
    }
}

#[test]
fn github_multi_stack_rebuilds_before_promoting_and_uses_each_region() {
    let text = generate(MULTI_STACK, Provider::Github);
    let workflow = as_json(&text);
    let promote = &workflow["jobs"]["promote-prod-us"];
    let run = scripts(&promote["steps"]);
    assert!(run.contains("cargo xtask build --all --arch all"), "{run}");
    assert!(
        run.ends_with("cargo xtask promote --from staging --to prod-us --yes"),
        "{run}"
    );
    let region = promote["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["with"]["aws-region"].as_str())
        .unwrap();
    assert_eq!(region, "us-east-1");
}

#[test]
fn a_manifest_without_a_staging_environment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lambda-stage.toml"),
        "app = \"a\"\n[environments.dev]\n[environments.prod]\nprotected = true\n",
    )
    .unwrap();
    let err = pipeline::generate_for_workspace(dir.path(), Provider::Github)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[environments.staging]"), "{err}");
}

/// This repository dogfoods the generator: its workflow is exactly what it generates now.
#[test]
fn the_committed_workflow_is_what_the_generator_produces() {
    let root: &Path = workspace_root();
    let committed = root.join(Provider::Github.default_path());
    let expected = pipeline::generate_for_workspace(root, Provider::Github).unwrap();
    pipeline::check_file(&committed, &expected).unwrap();
    // And it is the manifest of this repository it was generated from.
    let (_, manifest) = Manifest::load(root).unwrap().unwrap();
    assert!(manifest.environments.contains_key("staging"));
}

/// The jobs that run for an event (sorted), by evaluating each job's `if` (the generator writes
/// only `a == b` / `a != b` terms joined by `&&`; anything else fails the test) against
/// `context`, and skipping a job whose `needs` does not run, as GitHub does.
fn jobs_run(workflow: &Value, context: &[(&str, &str)]) -> Vec<String> {
    let context: HashMap<&str, &str> = context.iter().copied().collect();
    let operand = |text: &str| -> Option<String> {
        let text = text.trim();
        match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            Some(literal) => Some(literal.to_owned()),
            None => {
                assert!(
                    text.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                    "not a context path: `{text}`"
                );
                context.get(text).map(|value| (*value).to_owned())
            }
        }
    };
    let holds = |condition: &str| {
        condition.split(" && ").all(|term| {
            if let Some((a, b)) = term.split_once(" != ") {
                operand(a) != operand(b)
            } else if let Some((a, b)) = term.split_once(" == ") {
                operand(a) == operand(b)
            } else {
                panic!("cannot evaluate `{term}` in `{condition}`")
            }
        })
    };
    let jobs = workflow["jobs"].as_object().unwrap();
    fn runs(
        jobs: &serde_json::Map<String, Value>,
        name: &str,
        holds: &dyn Fn(&str) -> bool,
    ) -> bool {
        let job = &jobs[name];
        let needs_run = match &job["needs"] {
            Value::Null => true,
            Value::String(need) => runs(jobs, need, holds),
            other => panic!("needs: {other}"),
        };
        needs_run && job["if"].as_str().is_none_or(holds)
    }
    jobs.keys()
        .filter(|name| runs(jobs, name, &holds))
        .cloned()
        .collect()
}

/// The command of the job's last step.
fn last_run(job: &Value) -> &str {
    job["steps"].as_array().unwrap().last().unwrap()["run"]
        .as_str()
        .unwrap()
}

fn pull_request(
    action: &'static str,
    head_repo: &'static str,
) -> Vec<(&'static str, &'static str)> {
    vec![
        ("github.event_name", "pull_request"),
        ("github.event.action", action),
        ("github.event.pull_request.head.repo.full_name", head_repo),
        ("github.repository", "acme/orders"),
        ("github.ref", "refs/pull/42/merge"),
    ]
}

#[test]
fn github_with_a_template_deploys_each_pull_request_and_destroys_it_when_it_closes() {
    let text = generate(&with_previews(), Provider::Github);
    let workflow = as_json(&text);
    assert_eq!(
        workflow["on"]["pull_request"]["types"],
        serde_json::json!(["opened", "synchronize", "reopened", "closed"])
    );

    // Which jobs each event runs: a closed pull request runs nothing but the destroy.
    let push = [
        ("github.event_name", "push"),
        ("github.ref", "refs/heads/main"),
    ];
    let dispatch = [
        ("github.event_name", "workflow_dispatch"),
        ("inputs.environment", "prod-us"),
    ];
    for (context, expected) in [
        (
            pull_request("opened", "acme/orders"),
            vec!["ci", "deploy-preview"],
        ),
        (
            pull_request("synchronize", "acme/orders"),
            vec!["ci", "deploy-preview"],
        ),
        (
            pull_request("reopened", "acme/orders"),
            vec!["ci", "deploy-preview"],
        ),
        (
            pull_request("closed", "acme/orders"),
            vec!["destroy-preview"],
        ),
        // A fork gets no secrets nor OIDC token from GitHub: ci only, no preview.
        (pull_request("opened", "someone/orders"), vec!["ci"]),
        (pull_request("closed", "someone/orders"), Vec::<&str>::new()),
        (push.to_vec(), vec!["ci", "deploy-staging"]),
        (dispatch.to_vec(), vec!["promote-prod-us"]),
    ] {
        assert_eq!(jobs_run(&workflow, &context), expected, "{context:?}");
    }

    let number = "${{ github.event.number }}";
    let jobs = &workflow["jobs"];
    let deploy = &jobs["deploy-preview"];
    let destroy = &jobs["destroy-preview"];
    assert_eq!(deploy["needs"], "ci");
    assert_eq!(
        last_run(deploy),
        format!("cargo xtask deploy --env pr-{number} --yes")
    );
    assert_eq!(
        last_run(destroy),
        format!("cargo xtask destroy --env pr-{number} --yes --delete-queues")
    );
    // The closed pull request's own last commit is checked out (it may have no merge ref).
    assert_eq!(
        destroy["steps"][0]["with"]["ref"],
        "${{ github.event.pull_request.head.sha }}"
    );
    for job in [deploy, destroy] {
        // One deploy or destroy at a time per pull request.
        assert_eq!(
            job["concurrency"],
            serde_json::json!({ "group": format!("deploy-pr-{number}"), "cancel-in-progress": false })
        );
        // The role of the GitHub environment `preview`, through OIDC, as staging's deploy.
        assert_eq!(job["environment"], "preview");
        assert_eq!(job["permissions"]["id-token"], "write");
        let aws = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials"))
            })
            .expect("an AWS credentials step");
        assert_eq!(aws["with"]["role-to-assume"], "${{ secrets.AWS_ROLE_ARN }}");
        assert_eq!(
            aws["with"]["aws-region"], "us-west-2",
            "the template's region"
        );
    }
    assert!(
        text.contains("# Previews: pull request <n> deploys `pr-<n>`"),
        "{text}"
    );
}

#[test]
fn bitbucket_with_a_template_deploys_each_pull_request_and_destroys_by_a_custom_pipeline() {
    let text = generate(&with_previews(), Provider::Bitbucket);
    let pipelines = &as_json(&text)["pipelines"];
    let pr = pipelines["pull-requests"]["**"].as_array().unwrap();
    assert_eq!(pr.len(), 2, "ci, then the preview: {text}");
    assert_eq!(pr[0]["step"]["name"], "cargo xtask ci");
    let deploy = &pr[1]["step"];
    let destroy_pipeline = pipelines["custom"]["destroy-preview"].as_array().unwrap();
    assert_eq!(destroy_pipeline.len(), 2, "{text}");
    assert_eq!(
        destroy_pipeline[0]["variables"][0]["name"], "PR_ID",
        "{text}"
    );
    let destroy = &destroy_pipeline[1]["step"];
    for (step, last) in [
        (
            deploy,
            "cargo xtask deploy --env \"pr-$BITBUCKET_PR_ID\" --yes",
        ),
        (
            destroy,
            "cargo xtask destroy --env \"pr-$PR_ID\" --yes --delete-queues",
        ),
    ] {
        assert_eq!(step["deployment"], "preview");
        // Queued one at a time (and resumed) rather than paused by the deployment's lock.
        assert_eq!(step["concurrency-group"], "preview");
        assert_eq!(step["oidc"], true);
        assert!(step.get("trigger").is_none(), "{step}");
        let script: Vec<&str> = step["script"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line.as_str().unwrap())
            .collect();
        assert_eq!(*script.last().unwrap(), last);
        assert!(
            script
                .iter()
                .any(|line| line.contains("AWS_REGION=\"us-west-2\"")),
            "the template's region: {script:?}"
        );
    }
    // Main is untouched: ci, staging, and the two manual promotions.
    assert_eq!(pipelines["branches"]["main"].as_array().unwrap().len(), 4);
}

/// Without a template the pipelines have no preview flow, and what a template adds is only
/// that: removing it from the generated files gives exactly the files without a template.
#[test]
fn without_a_template_there_is_no_preview_flow() {
    let github = generate(MULTI_STACK, Provider::Github);
    let bitbucket = generate(MULTI_STACK, Provider::Bitbucket);
    for text in [&github, &bitbucket] {
        for absent in ["preview", "pr-", "closed", "PR_ID", "custom:"] {
            assert!(!text.contains(absent), "`{absent}` in:\n{text}");
        }
    }

    let plain = as_json(&github);
    assert_eq!(
        plain["on"]["pull_request"],
        Value::Null,
        "every PR event type"
    );
    assert_eq!(
        plain["jobs"]["ci"]["if"],
        "github.event_name != 'workflow_dispatch'"
    );
    let mut with = as_json(&generate(&with_previews(), Provider::Github));
    let jobs = with["jobs"].as_object_mut().unwrap();
    assert!(jobs.remove("deploy-preview").is_some());
    assert!(jobs.remove("destroy-preview").is_some());
    let ci_if = jobs["ci"]["if"].as_str().unwrap().to_owned();
    jobs["ci"]["if"] = ci_if
        .strip_suffix(" && github.event.action != 'closed'")
        .expect(&ci_if)
        .into();
    with["on"]["pull_request"] = Value::Null;
    assert_eq!(with, plain);

    let plain = as_json(&bitbucket);
    assert_eq!(
        plain["pipelines"]["pull-requests"]["**"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let mut with = as_json(&generate(&with_previews(), Provider::Bitbucket));
    let pipelines = with["pipelines"].as_object_mut().unwrap();
    assert!(pipelines.remove("custom").is_some());
    let pr = pipelines["pull-requests"]["**"].as_array_mut().unwrap();
    assert_eq!(pr.pop().unwrap()["step"]["deployment"], "preview");
    assert_eq!(with, plain);
}
