//! The GitHub Actions workflow (`.github/workflows/lambda-stage.yml`).

use std::fmt::Write as _;

use super::{header, musl_targets, region_or, Provider, Stages};
use crate::manifest::{Manifest, Strategy};

pub(super) fn generate(manifest: &Manifest, stages: &Stages) -> String {
    let staging = &stages.staging;
    let mut out = header(Provider::Github, stages);
    let dispatch = if stages.production.is_empty() {
        String::new()
    } else {
        let options: String = stages
            .production
            .iter()
            .map(|env| format!("          - {env}\n"))
            .collect();
        format!(
            "  # Production is updated only from here: Actions -> lambda-stage -> Run workflow.\n  \
             workflow_dispatch:\n    inputs:\n      environment:\n        \
             description: Environment to promote what {staging} runs to\n        \
             type: choice\n        required: true\n        options:\n{options}"
        )
    };
    let _ = write!(
        out,
        r#"name: lambda-stage

on:
  pull_request:
  push:
    branches: [main]
{dispatch}
permissions:
  contents: read

env:
  CARGO_TERM_COLOR: always

jobs:
  ci:
    if: github.event_name != 'workflow_dispatch'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
{rust_ci}      - name: System packages the test suite uses (arm64 emulation)
        run: sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends qemu-user-static
      - name: cargo xtask ci
        run: cargo xtask ci

  deploy-{staging}:
    needs: ci
    if: github.event_name == 'push' && github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    environment: {staging}
    concurrency:
      group: deploy-{staging}
      cancel-in-progress: false
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
{rust_deploy}      - name: Build every zip once (arm64 and x86_64)
        run: cargo xtask build --all --arch all
      - name: Keep the zips
        uses: actions/upload-artifact@v4
        with:
          name: lambda-zips-${{{{ github.sha }}}}
          path: target/lambda/
          if-no-files-found: error
{aws}      - name: Deploy to {staging}
        run: cargo xtask deploy --env {staging}
"#,
        rust_ci = github_rust_steps("ci"),
        rust_deploy = github_rust_steps("deploy"),
        aws = github_aws_step(manifest, staging),
    );
    for env in &stages.production {
        let rebuild = if manifest.strategy == Strategy::MultiStack {
            // Multi-stack promotion copies staging's zip, found locally by its CodeSha256:
            // rebuild this commit (builds are reproducible) so that zip is here.
            format!(
                "{}      - name: Rebuild the zips staging runs (reproducible)\n        \
                 run: cargo xtask build --all --arch all\n",
                github_rust_steps("deploy")
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"
  promote-{env}:
    if: github.event_name == 'workflow_dispatch' && inputs.environment == '{env}'
    runs-on: ubuntu-latest
    environment: {env}
    concurrency:
      group: deploy-{env}
      cancel-in-progress: false
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
{rebuild}{aws}      - name: Promote what {staging} runs to {env}
        run: cargo xtask promote --from {staging} --to {env} --yes
"#,
            aws = github_aws_step(manifest, env),
        );
    }
    out
}

fn github_rust_steps(cache: &str) -> String {
    format!(
        r#"      - name: Rust toolchain and Lambda targets
        run: |
          rustup component add rustfmt clippy
          rustup target add {targets}
      - name: Cache cargo and the project venv
        uses: actions/cache@v4
        with:
          path: |
            ~/.cargo/registry/index/
            ~/.cargo/registry/cache/
            ~/.cargo/git/db/
            target/
            .venv/
          key: {cache}-${{{{ runner.os }}}}-${{{{ hashFiles('**/Cargo.lock') }}}}
          restore-keys: {cache}-${{{{ runner.os }}}}-
"#,
        targets = musl_targets(),
    )
}

fn github_aws_step(manifest: &Manifest, env: &str) -> String {
    format!(
        r#"      - name: AWS credentials for {env} (OIDC; the role ARN is the `{env}` environment's secret AWS_ROLE_ARN)
        uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{{{ secrets.AWS_ROLE_ARN }}}}
          aws-region: {region}
"#,
        region = region_or(manifest, env, "${{ vars.AWS_REGION }}"),
    )
}
