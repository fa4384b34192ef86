//! The GitHub Actions workflow (`.github/workflows/lambda-stage.yml`).

use std::fmt::Write as _;

use super::{header, musl_targets, region_or, Preview, Provider, Stages, PREVIEW_DEPLOYMENT};
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
    let (pull_request, ci_if) = match &stages.preview {
        None => ("", "github.event_name != 'workflow_dispatch'"),
        // A closed pull request only destroys its preview: ci and deploys skip `closed`.
        Some(_) => (
            "    # `closed` destroys the pull request's preview environment (job destroy-preview).\n    \
             types: [opened, synchronize, reopened, closed]\n",
            "github.event_name != 'workflow_dispatch' && github.event.action != 'closed'",
        ),
    };
    let _ = write!(
        out,
        r#"name: lambda-stage

on:
  pull_request:
{pull_request}  push:
    branches: [main]
{dispatch}
permissions:
  contents: read

env:
  CARGO_TERM_COLOR: always

jobs:
  ci:
    if: {ci_if}
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
    if let Some(preview) = &stages.preview {
        out.push_str(&preview_jobs(manifest, preview));
    }
    out
}

/// The pull request's number in an expression GitHub expands.
const PR_NUMBER: &str = "${{ github.event.number }}";

/// GitHub gives a pull request from a fork neither secrets nor an OIDC token, so it gets no
/// preview (its jobs would only fail).
const SAME_REPOSITORY: &str = "github.event.pull_request.head.repo.full_name == github.repository";

/// `deploy-preview` (after ci, on every push to a pull request) and `destroy-preview` (when it
/// closes), one at a time per pull request, with the role of the GitHub environment `preview`.
fn preview_jobs(manifest: &Manifest, preview: &Preview) -> String {
    let env = preview.environment(PR_NUMBER);
    let region = region_or(manifest, &preview.template, "${{ vars.AWS_REGION }}");
    let aws = aws_step(&env, PREVIEW_DEPLOYMENT, &region);
    let rust = github_rust_steps("deploy");
    let template = &preview.template;
    let job = |name: &str, when: &str| {
        format!(
            r#"
  {name}:
{when}    runs-on: ubuntu-latest
    environment: {PREVIEW_DEPLOYMENT}
    concurrency:
      group: deploy-{env}
      cancel-in-progress: false
    permissions:
      contents: read
      id-token: write
"#
        )
    };
    format!(
        r#"
  # Pull request previews: environment `{prefix}<number>` from the template `{template}`, with the
  # role in the GitHub environment `{PREVIEW_DEPLOYMENT}`'s secret AWS_ROLE_ARN.{deploy}    steps:
      - uses: actions/checkout@v4
{rust}{aws}      - name: Deploy {env}
        run: cargo xtask deploy --env {env} --yes
{destroy}    steps:
      # The pull request's last commit: its manifest made the preview (a closed pull request
      # may have no merge ref to check out).
      - uses: actions/checkout@v4
        with:
          ref: ${{{{ github.event.pull_request.head.sha }}}}
{rust}{aws}      - name: Destroy {env} (its queues too)
        run: cargo xtask destroy --env {env} --yes --delete-queues
"#,
        prefix = preview.prefix,
        deploy = job(
            "deploy-preview",
            &format!(
                "    needs: ci\n    if: github.event_name == 'pull_request' && \
                 github.event.action != 'closed' && {SAME_REPOSITORY}\n"
            ),
        ),
        destroy = job(
            "destroy-preview",
            &format!(
                "    if: github.event_name == 'pull_request' && \
                 github.event.action == 'closed' && {SAME_REPOSITORY}\n"
            ),
        ),
    )
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
    aws_step(
        env,
        env,
        &region_or(manifest, env, "${{ vars.AWS_REGION }}"),
    )
}

/// Credentials for `env` through OIDC: the role is the secret `AWS_ROLE_ARN` of the job's
/// GitHub environment `environment`.
fn aws_step(env: &str, environment: &str, region: &str) -> String {
    format!(
        r#"      - name: AWS credentials for {env} (OIDC; the role ARN is the `{environment}` environment's secret AWS_ROLE_ARN)
        uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{{{ secrets.AWS_ROLE_ARN }}}}
          aws-region: {region}
"#
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn stages(preview: Option<&str>) -> (Manifest, Stages) {
        let manifest = Manifest::parse(
            Path::new("lambda-stage.toml"),
            "app = \"a\"\nregion = \"eu-west-1\"\n[environments.staging]\n[environments.\"pr-*\"]\n",
        )
        .unwrap();
        let stages = Stages {
            staging: "staging".into(),
            production: Vec::new(),
            preview: preview.and_then(Preview::of_template),
        };
        (manifest, stages)
    }

    #[test]
    fn the_preview_flow_adds_the_closed_trigger_and_keeps_ci_off_it() {
        let (manifest, without) = stages(None);
        let plain = generate(&manifest, &without);
        assert!(plain.contains("on:\n  pull_request:\n  push:\n"), "{plain}");
        assert!(plain.contains("    if: github.event_name != 'workflow_dispatch'\n"));
        assert!(!plain.contains("preview"), "{plain}");

        let (manifest, with) = stages(Some("pr-*"));
        let text = generate(&manifest, &with);
        assert!(
            text.contains(
                "  pull_request:\n    # `closed` destroys the pull request's preview environment \
                 (job destroy-preview).\n    types: [opened, synchronize, reopened, closed]\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "    if: github.event_name != 'workflow_dispatch' && github.event.action != 'closed'\n"
        ));
    }

    #[test]
    fn preview_jobs_deploy_and_destroy_the_pull_requests_environment() {
        let (manifest, _) = stages(None);
        let jobs = preview_jobs(&manifest, &Preview::of_template("pr-*").unwrap());
        let deploy = jobs.split("\n  destroy-preview:\n").next().unwrap();
        let destroy = jobs.split("\n  destroy-preview:\n").nth(1).unwrap();
        assert!(
            deploy.contains("  deploy-preview:\n    needs: ci\n"),
            "{jobs}"
        );
        assert!(
            deploy.contains("github.event.action != 'closed'"),
            "{deploy}"
        );
        assert!(deploy.ends_with(
            "        run: cargo xtask deploy --env pr-${{ github.event.number }} --yes\n"
        ));
        assert!(
            destroy.contains("github.event.action == 'closed'"),
            "{destroy}"
        );
        assert!(!destroy.contains("needs:"), "{destroy}");
        assert!(destroy.ends_with(
            "        run: cargo xtask destroy --env pr-${{ github.event.number }} --yes --delete-queues\n"
        ));
        for job in [deploy, destroy] {
            assert!(job.contains(SAME_REPOSITORY), "{job}");
            assert!(job.contains("    environment: preview\n"), "{job}");
            assert!(
                job.contains("      group: deploy-pr-${{ github.event.number }}\n"),
                "{job}"
            );
            assert!(job.contains("aws-region: eu-west-1\n"), "{job}");
        }
    }
}
