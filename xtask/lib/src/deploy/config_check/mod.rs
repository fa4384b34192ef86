//! Pre-flight with the function's own code: before anything is written, each function's binary
//! runs in the framework's check mode (`LAMBDA_STAGE_CHECK_CONFIG=1`, `lambda_stage::check`)
//! with exactly the variables the version gets, in an environment like Lambda's, so a version
//! whose config cannot load in an environment it serves never reaches an alias. The framework
//! loads every served environment's config with the code of a cold start; secret references
//! are passed as written and count as present (their values are never read), unless the
//! binary was built without the `secrets` feature, whose init would refuse them.
//!
//! Which binary runs: the very one in the zip about to be deployed, when this machine can run
//! it (a static musl build for the host's architecture). An arm64 or glibc zip cannot run
//! here, so a host build of the same package and features stands in for it: the config struct
//! and its loading are the same source, and that build is the one `invoke` and `serve` use,
//! usually already compiled. Each binary is made once per command (`binaries.rs`): functions
//! that share a zip share its extracted bootstrap, those that share a package its host build.
//! The checks then run a few processes at a time (`process.rs` runs one), and are reported in
//! the manifest's order.
//!
//! A binary that does not start through lambda-stage's runners (a plain `lambda_runtime`
//! function, or an older lambda-stage) goes straight to the Runtime API: the check gives it a
//! local one that never answers, sees the connection, and says its config was not checked.

mod binaries;
mod process;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::artifact::Artifact;
use super::fan_out::FUNCTIONS_AT_ONCE;
use super::secrets::references;
use crate::build::BuildMemo;
use crate::manifest::{Manifest, FILE_NAME};
use crate::workspace;
use binaries::binary_for;
use process::{run, Verdict};

/// The variable that starts the framework's check mode (`lambda_stage::check::CHECK_VAR`).
pub const CHECK_VAR: &str = lambda_stage_names::variables::CHECK_CONFIG;

/// The code of one function to check.
pub enum Code {
    /// The zip this command deploys, built on this machine.
    Artifact(Artifact),
    /// The version's zip is not on this machine: the working tree's code stands in for it.
    WorkingTree {
        version: String,
        built_from: Option<String>,
    },
}

/// One function to check, with exactly the variables its version has.
pub struct Subject {
    /// The function's key in the manifest.
    pub function: String,
    /// Its Lambda name in the environment (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub memory_mb: u32,
    pub code: Code,
}

/// Runs every subject's check; fails, naming each function, environment and variable, when a
/// version would fail its init. `env` is the environment the command deploys to.
pub fn check(
    root: &Path,
    manifest: &Manifest,
    env: &str,
    region: &str,
    subjects: &[Subject],
    memo: &mut BuildMemo,
) -> anyhow::Result<()> {
    // Each distinct binary once: functions that share a zip share its extracted bootstrap, and
    // those that share a package share its host build (the memo). The checks run private
    // copies of both, kept here until the checks are done.
    let mut private_binaries = HashMap::new();
    let binaries = subjects
        .iter()
        .map(|subject| binary_for(root, manifest, subject, memo, &mut private_binaries))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let verdicts = run_all(subjects, &binaries, region);
    let mut problems = Vec::new();
    for (subject, verdict) in subjects.iter().zip(verdicts) {
        let function = &subject.function;
        let verdict =
            verdict.with_context(|| format!("could not run the config check of `{function}`"))?;
        match verdict {
            Verdict::Valid { environments } => eprintln!(
                "config check: `{function}` loads its config in {} (its own code, the \
                 variables it is deployed with)",
                environments.join(", ")
            ),
            Verdict::NotLambdaStage => eprintln!(
                "note: `{function}` does not start through lambda-stage's runners (it went \
                 straight to the Runtime API), so its config was not checked"
            ),
            Verdict::NoReport { why, output } => eprintln!(
                "WARNING: the config of `{function}` could not be checked: in check mode it \
                 {why} before reporting on its config. If it does the same on Lambda, the \
                 version cannot initialise. Its last output:\n{output}"
            ),
            Verdict::Invalid {
                message,
                secrets_feature,
            } => problems.push(problem(root, manifest, subject, &message, secrets_feature)),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "pre-flight failed for `{env}`, nothing was written: with the variables this command \
         deploys, these functions would fail their init (checked by running each function's \
         own code in lambda-stage's check mode; secret references count as present):\n  {}",
        problems.join("\n  ")
    )
}

/// One function's failed check: the framework's diagnosis, then how to fix it.
fn problem(
    root: &Path,
    manifest: &Manifest,
    subject: &Subject,
    diagnosis: &str,
    secrets_feature: bool,
) -> String {
    let function = &subject.function;
    let mut text = format!("{function}: {}", diagnosis.replace('\n', "\n    "));
    let referenced: Vec<String> = references(&subject.variables)
        .into_iter()
        .map(|u| u.variable)
        .collect();
    let refused_references = !secrets_feature && !referenced.is_empty();
    // The diagnosis lists one variable per indented line; without the feature, each
    // reference has a line of its own that the feature fixes.
    let other_problems = diagnosis
        .lines()
        .filter(|line| line.starts_with("  "))
        .any(|line| !refused_references || !line.contains("`secrets` feature"));
    if other_problems {
        text.push_str(&format!(
            "\n    Fix: set each variable named above in [environments.<env>] (or \
             [environments.<env>.functions.{function}]) `vars` or `secrets` of {FILE_NAME}."
        ));
    }
    if refused_references {
        text.push_str(&format!(
            "\n    `{function}` was built without lambda-stage's `secrets` feature, so its init \
             refuses the secret references in {}. Fix: {}",
            referenced.join(", "),
            secrets_feature_fix(root, manifest, function)
        ));
    }
    text
}

/// Runs every subject's check with its binary, [`FUNCTIONS_AT_ONCE`] processes at a time (each
/// mostly waits for its process); the verdicts come back in the subjects' order.
fn run_all(
    subjects: &[Subject],
    binaries: &[PathBuf],
    region: &str,
) -> Vec<anyhow::Result<Verdict>> {
    let checks: Vec<(&Subject, &PathBuf)> = subjects.iter().zip(binaries).collect();
    let mut verdicts = Vec::new();
    for batch in checks.chunks(FUNCTIONS_AT_ONCE) {
        std::thread::scope(|scope| {
            let running: Vec<_> = batch
                .iter()
                .map(|(subject, binary)| {
                    scope.spawn(move || {
                        let task_root = binary.parent().unwrap_or(Path::new("/"));
                        run(binary, lambda_variables(subject, region, task_root))
                    })
                })
                .collect();
            verdicts.extend(running.into_iter().map(|check| {
                check
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the check panicked")))
            }));
        });
    }
    verdicts
}

/// What Lambda sets in an execution environment (minus credentials: a check reads nothing),
/// then the function's own variables.
fn lambda_variables(subject: &Subject, region: &str, task_root: &Path) -> Vec<(String, String)> {
    let task_root = task_root.display().to_string();
    let name = &subject.name;
    let lambda = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            subject.memory_mb.to_string(),
        ),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "1970/01/01/[$LATEST]config-check".to_owned(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        // No instance metadata on Lambda: an AWS SDK must not probe for it from here.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    lambda
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .chain(subject.variables.clone())
        .collect()
}

/// How to build `function` with the `secrets` feature: name the package's own feature in the
/// manifest when it has one that turns the framework's on, else enable it in the package.
fn secrets_feature_fix(root: &Path, manifest: &Manifest, function: &str) -> String {
    let package = manifest
        .function(function)
        .map_or(function, |spec| spec.package_name(function));
    let enabling = cargo_metadata::MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .no_deps()
        .exec()
        .ok()
        .and_then(|metadata| {
            let found = metadata
                .workspace_packages()
                .into_iter()
                .find(|p| p.name.as_str() == package)?;
            found
                .features
                .iter()
                .find(|(_, enables)| {
                    enables
                        .iter()
                        .any(|e| e == "lambda-stage/secrets" || e == "lambda-stage?/secrets")
                })
                .map(|(feature, _)| feature.clone())
        });
    match enabling {
        Some(feature) => format!(
            "set `features = [\"{feature}\"]` under [functions.{function}] in {FILE_NAME} \
             (package `{package}`'s feature `{feature}` turns lambda-stage's `secrets` on)"
        ),
        None => format!(
            "enable it in package `{package}`'s Cargo.toml (`lambda-stage = {{ ..., features = \
             [\"secrets\"] }}`), or give the package a feature that turns on \
             `lambda-stage/secrets` and name it under [functions.{function}] `features` in \
             {FILE_NAME}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::arch::Arch;

    /// Every subject shares one zip, whose bootstrap reports only once all of a batch's checks
    /// are running: each marks itself in a directory, then waits (at most 5 s) for the others.
    #[test]
    fn subjects_that_share_a_zip_share_its_bootstrap_and_are_checked_together() {
        let dir = tempfile::tempdir().unwrap();
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).unwrap();
        let report = r#"{"lambdaStageCheck":{"ok":true,"environments":["dev"]}}"#;
        let script = format!(
            "#!/bin/bash\ntouch '{marks}'/$AWS_LAMBDA_FUNCTION_NAME\n\
             for i in $(seq 100); do\n\
               if [ $(ls '{marks}' | wc -l) -ge {FUNCTIONS_AT_ONCE} ]; then echo '{report}'; exit 0; fi\n\
               sleep 0.05\n\
             done\nexit 1\n",
            marks = marks.display()
        );
        let zip_path = dir.path().join("bootstrap.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file(
            crate::build::ENTRY_NAME,
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(script.as_bytes()).unwrap();
        zip.finish().unwrap();
        let host = Arch::host().expect("the tests run on x86_64 or arm64");
        let artifact = Artifact {
            arch: host,
            target: host.musl_target().to_owned(),
            git_commit: None,
            git_dirty: false,
            zip_path,
            sha256_hex: "one-zip".to_owned(),
            code_sha256: "one-zip".to_owned(),
        };
        let subjects: Vec<Subject> = (0..FUNCTIONS_AT_ONCE)
            .map(|i| Subject {
                function: format!("fn-{i}"),
                name: format!("demo-fn-{i}"),
                variables: BTreeMap::new(),
                memory_mb: 128,
                code: Code::Artifact(artifact.clone()),
            })
            .collect();
        let manifest =
            Manifest::parse(Path::new(FILE_NAME), "app = \"demo\"\n[environments.dev]\n").unwrap();

        let mut private_binaries = HashMap::new();
        let binaries: Vec<PathBuf> = subjects
            .iter()
            .map(|subject| {
                let mut memo = BuildMemo::default();
                binary_for(
                    dir.path(),
                    &manifest,
                    subject,
                    &mut memo,
                    &mut private_binaries,
                )
                .unwrap()
            })
            .collect();
        assert_eq!(private_binaries.len(), 1, "one extraction");
        assert!(binaries.iter().all(|binary| *binary == binaries[0]));

        for verdict in run_all(&subjects, &binaries, "us-east-1") {
            assert_eq!(
                verdict.unwrap(),
                Verdict::Valid {
                    environments: vec!["dev".to_owned()]
                },
                "every check of the batch ran at the same time"
            );
        }
    }
}
