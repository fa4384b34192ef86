//! Bitbucket Pipelines (`bitbucket-pipelines.yml`).

use std::fmt::Write as _;

use super::{header, musl_targets, region_or, Provider, Stages};
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
  branches:
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
    out
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
