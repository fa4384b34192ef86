//! Bitbucket Pipelines (`bitbucket-pipelines.yml`).

use std::fmt::Write as _;

use super::{header, musl_targets, region_or, Preview, Provider, Stages, PREVIEW_DEPLOYMENT};
use crate::manifest::Manifest;

pub(super) fn generate(manifest: &Manifest, stages: &Stages) -> String {
    let staging = &stages.staging;
    let mut out = header(Provider::Bitbucket, stages);
    let _ = write!(
        out,
        r#"image: rust:1

definitions:
  caches:
    cargo-registry: /usr/local/cargo/registry
    cargo-target: target
    project-venv: .venv
  steps:
    - step: &ci
        name: cargo xtask ci
        caches: [cargo-registry, cargo-target, project-venv]
        script:
          - apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv qemu-user-static
          - rustup component add rustfmt clippy
          - cargo xtask ci

pipelines:
  pull-requests:
    '**':
      - step: *ci
{preview_deploy}  branches:
    main:
      - step: *ci
      - step:
          name: Build every zip once and deploy to {staging}
          deployment: {staging}
          oidc: true
          caches: [cargo-registry, cargo-target]
          script:
            - rustup target add {targets}
            - cargo xtask build --all --arch all
{aws}            - cargo xtask deploy --env {staging}
          artifacts:
            - target/lambda/**
"#,
        targets = musl_targets(),
        aws = bitbucket_aws_lines(manifest, staging),
        preview_deploy = match &stages.preview {
            Some(preview) => preview_deploy_step(manifest, preview),
            None => String::new(),
        },
    );
    for (index, env) in stages.production.iter().enumerate() {
        // Bitbucket names its production deployment environment `production`; a second
        // protected environment keeps its own name.
        let deployment = if index == 0 { "production" } else { env };
        let _ = write!(
            out,
            r#"      - step:
          name: Promote what {staging} runs to {env}
          trigger: manual
          deployment: {deployment}
          oidc: true
          script:
{aws}            - cargo xtask promote --from {staging} --to {env} --yes
"#,
            aws = bitbucket_aws_lines(manifest, env),
        );
    }
    if let Some(preview) = &stages.preview {
        out.push_str(&preview_destroy_pipeline(manifest, preview));
    }
    out
}

/// Every preview step shares this concurrency group: one preview deploy or destroy runs at a
/// time and the others queue, resumed by Bitbucket (a deployment's own lock would pause them
/// until someone resumes them by hand, and all previews share the deployment `preview`).
const CONCURRENCY_GROUP: &str = "preview";

/// After ci on a pull request: deploy its preview.
fn preview_deploy_step(manifest: &Manifest, preview: &Preview) -> String {
    format!(
        r#"      - step:
          name: Deploy this pull request's preview environment ({env})
          deployment: {PREVIEW_DEPLOYMENT}
          concurrency-group: {CONCURRENCY_GROUP}
          oidc: true
          caches: [cargo-registry, cargo-target]
          script:
            - rustup target add {targets}
{aws}            - cargo xtask deploy --env "{pr_env}" --yes
"#,
        env = preview.environment("<id>"),
        pr_env = preview.environment("$BITBUCKET_PR_ID"),
        targets = musl_targets(),
        aws = bitbucket_aws_lines(manifest, &preview.template),
    )
}

/// Bitbucket has no trigger for a pull request that closes: the custom pipeline
/// `destroy-preview` destroys one preview, given the pull request's number in `PR_ID`.
fn preview_destroy_pipeline(manifest: &Manifest, preview: &Preview) -> String {
    format!(
        r#"  custom:
    # Bitbucket cannot start a pipeline when a pull request closes: run this one by hand
    # (Pipelines -> Run pipeline -> destroy-preview) or through the API, from a webhook or a
    # scheduled clean-up, with PR_ID = the pull request's number.
    destroy-preview:
      - variables:
          - name: PR_ID
            description: Number of the pull request whose preview environment ({env}) to destroy
      - step:
          name: Destroy a pull request's preview environment ({env}), its queues too
          deployment: {PREVIEW_DEPLOYMENT}
          concurrency-group: {CONCURRENCY_GROUP}
          oidc: true
          caches: [cargo-registry, cargo-target]
          script:
            - test -n "$PR_ID" || {{ echo "PR_ID (the pull request's number) is required" >&2; exit 1; }}
{aws}            - cargo xtask destroy --env "{pr_env}" --yes --delete-queues
"#,
        env = preview.environment("<PR_ID>"),
        pr_env = preview.environment("$PR_ID"),
        aws = bitbucket_aws_lines(manifest, &preview.template),
    )
}

/// Exchanges the step's OIDC token for the role in the deployment variable `AWS_ROLE_ARN`
/// (the AWS SDK reads `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`).
fn bitbucket_aws_lines(manifest: &Manifest, env: &str) -> String {
    format!(
        r#"            - export AWS_REGION="{region}" AWS_WEB_IDENTITY_TOKEN_FILE="$BITBUCKET_CLONE_DIR/.aws-web-identity-token"
            - echo "$BITBUCKET_STEP_OIDC_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"
"#,
        region = region_or(manifest, env, "$AWS_REGION"),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            Path::new("lambda-stage.toml"),
            "app = \"a\"\n[environments.staging]\n[environments.\"pr-*\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn the_preview_deploys_after_ci_and_a_custom_pipeline_destroys_it() {
        let manifest = manifest();
        let mut stages = Stages {
            staging: "staging".into(),
            production: Vec::new(),
            preview: None,
        };
        let plain = generate(&manifest, &stages);
        assert!(
            !plain.contains("custom:") && !plain.contains("preview"),
            "{plain}"
        );

        stages.preview = Preview::of_template("pr-*");
        let text = generate(&manifest, &stages);
        let pull_requests = text
            .split("  pull-requests:\n")
            .nth(1)
            .and_then(|rest| rest.split("  branches:\n").next())
            .unwrap();
        assert!(
            pull_requests.starts_with("    '**':\n      - step: *ci\n      - step:\n"),
            "{pull_requests}"
        );
        assert!(pull_requests
            .contains("          deployment: preview\n          concurrency-group: preview\n"));
        assert!(pull_requests
            .ends_with("            - cargo xtask deploy --env \"pr-$BITBUCKET_PR_ID\" --yes\n"));
        let custom = text.split("\n  custom:\n").nth(1).expect(&text);
        assert!(
            custom.contains("    destroy-preview:\n      - variables:\n          - name: PR_ID\n"),
            "{custom}"
        );
        assert!(
            custom.contains("          concurrency-group: preview\n"),
            "{custom}"
        );
        // No default AWS region in the manifest: the deployment's variable.
        assert!(
            custom.contains("export AWS_REGION=\"$AWS_REGION\""),
            "{custom}"
        );
        assert!(custom.ends_with(
            "            - cargo xtask destroy --env \"pr-$PR_ID\" --yes --delete-queues\n"
        ));
    }
}
