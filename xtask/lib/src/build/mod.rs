//! `cargo xtask build`: deployable `bootstrap.zip`s for Lambda's `provided.al2023` runtime.
//!
//! Output: `target/lambda/<function>/<arch>/bootstrap.zip` and, beside it, `build.json` (a
//! [`BuildRecord`]). Pure-Rust functions build for static musl targets linked with the `rust-lld`
//! that ships with Rust, so no C toolchain is needed; functions that compile C (ring, aws-lc-sys)
//! build with Zig (`cargo-zigbuild`, installed into the project venv) against glibc 2.34, the
//! glibc of `provided.al2023`.

mod cargo;
pub mod host;
mod memo;
mod package;
mod resolved;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args as ClapArgs, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::manifest::{Manifest, FILE_NAME};
use crate::workspace;

pub use cargo::Toolchain;
pub use memo::{BuildMemo, GitState};
pub use package::ENTRY_NAME;

/// The file beside each zip that describes the build.
pub const RECORD_FILE: &str = "build.json";
pub const ZIP_FILE: &str = "bootstrap.zip";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Functions to build: keys of `[functions]` in lambda-stage.toml, or workspace binary
    /// packages. None means every function in the manifest.
    pub functions: Vec<String>,
    /// Build every function in the manifest.
    #[arg(long, conflicts_with = "functions")]
    pub all: bool,
    /// Architecture to build for; default: the function's `arch` in the manifest, else arm64.
    #[arg(long, value_enum)]
    pub arch: Option<ArchChoice>,
    /// Cargo profile to build with.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Build with Zig even if the function has no C dependencies.
    #[arg(long)]
    pub zig: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchChoice {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
    All,
}

/// What `cargo xtask build` wrote for one function and architecture (`build.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub function: String,
    pub package: String,
    pub arch: Arch,
    /// The Rust target triple the binary was built for.
    pub target: String,
    pub profile: String,
    /// The package's cargo features it was built with (the manifest's `features`).
    #[serde(default)]
    pub features: Vec<String>,
    /// How the binary was linked: `rust-lld` (static musl) or `zig` (glibc 2.34).
    pub toolchain: Toolchain,
    /// `HEAD` of the git repository, if the workspace is in one.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub git_dirty: bool,
    pub zip_path: PathBuf,
    pub zip_size: u64,
    /// sha256 of the zip, hex.
    pub sha256_hex: String,
    /// sha256 of the zip, base64: Lambda's `CodeSha256`, to skip deploying unchanged code.
    pub code_sha256: String,
    /// sha256 of the `bootstrap` binary, hex: an unchanged binary re-uses its zip.
    pub binary_sha256: String,
}

impl BuildRecord {
    /// Reads a `build.json`.
    pub fn load(path: &Path) -> anyhow::Result<BuildRecord> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the build record {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid build record", path.display()))
    }
}

/// Where the zip and record of `function` for `arch` go.
pub fn output_dir(root: &Path, function: &str, arch: Arch) -> PathBuf {
    output_dir_in(&workspace::target_dir(root), function, arch)
}

/// [`output_dir`] under another target directory.
pub fn output_dir_in(target_dir: &Path, function: &str, arch: Arch) -> PathBuf {
    target_dir.join("lambda").join(function).join(arch.as_str())
}

/// How to build, beyond which function and architecture.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub profile: String,
    /// Build with Zig even if no dependency compiles C.
    pub force_zig: bool,
    /// Report the build as a step: a spinner on a terminal, one line on stderr otherwise.
    pub progress: bool,
    /// Build in this target directory instead of the workspace's (`CARGO_TARGET_DIR` or
    /// `<root>/target`); the zip goes under it too.
    pub target_dir: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            profile: "release".to_owned(),
            force_zig: false,
            progress: false,
            target_dir: None,
        }
    }
}

/// Builds `function` for `arch` with `profile` and writes its zip and build record.
/// A rebuild with no change re-uses cargo's artifacts and the existing zip.
pub fn build_function(
    root: &Path,
    manifest: Option<&Manifest>,
    function: &str,
    arch: Arch,
    profile: &str,
) -> anyhow::Result<BuildRecord> {
    let options = BuildOptions {
        profile: profile.to_owned(),
        ..BuildOptions::default()
    };
    build_function_with(root, manifest, function, arch, &options)
}

/// [`build_function`] with every option.
pub fn build_function_with(
    root: &Path,
    manifest: Option<&Manifest>,
    function: &str,
    arch: Arch,
    options: &BuildOptions,
) -> anyhow::Result<BuildRecord> {
    let wanted = [(function.to_owned(), arch)];
    let mut records = build_functions(root, manifest, &wanted, options, &mut BuildMemo::default())?;
    Ok(records.remove(0))
}

/// Builds each `(function, arch)` of `wanted` and writes its zip and build record; returns the
/// records in `wanted`'s order. Each distinct build (package, features, architecture) is
/// compiled once, as one step: functions that share a package share its binary, and each gets
/// its own zip and record. A rebuild with no change re-uses cargo's artifacts and the zips.
pub fn build_functions(
    root: &Path,
    manifest: Option<&Manifest>,
    wanted: &[(String, Arch)],
    options: &BuildOptions,
    memo: &mut BuildMemo,
) -> anyhow::Result<Vec<BuildRecord>> {
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| workspace::target_dir(root));
    let mut records: Vec<Option<BuildRecord>> = vec![None; wanted.len()];
    for group in group_builds(manifest, wanted) {
        let functions: Vec<&str> = group
            .members
            .iter()
            .map(|&i| wanted[i].0.as_str())
            .collect();
        let compiled = compile(
            root,
            manifest,
            &group.key,
            &functions,
            options,
            &target_dir,
            memo,
        )?;
        let git = memo.git_state(root);
        let bootstrap = package::Bootstrap::read(&compiled.binary)?;
        for &index in &group.members {
            let function = &wanted[index].0;
            let out_dir = output_dir_in(&target_dir, function, group.key.arch);
            let packaged = bootstrap.package_into(&out_dir)?;
            let record = BuildRecord {
                function: function.clone(),
                package: compiled.package.clone(),
                arch: group.key.arch,
                target: compiled.toolchain.target(group.key.arch).to_owned(),
                profile: options.profile.clone(),
                features: group.key.features.clone(),
                toolchain: compiled.toolchain,
                git_commit: git.commit.clone(),
                git_dirty: git.dirty,
                zip_path: packaged.zip_path,
                zip_size: packaged.zip_size,
                sha256_hex: packaged.sha256_hex,
                code_sha256: packaged.code_sha256,
                binary_sha256: packaged.binary_sha256,
            };
            let record_path = out_dir.join(RECORD_FILE);
            std::fs::write(&record_path, serde_json::to_string_pretty(&record)? + "\n")
                .with_context(|| format!("could not write {}", record_path.display()))?;
            records[index] = Some(record);
        }
    }
    Ok(records.into_iter().flatten().collect())
}

/// What makes two functions' builds the same build: the manifest's package and features, and
/// the architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuildKey {
    package: String,
    features: Vec<String>,
    arch: Arch,
}

/// One distinct build and the indices (into the wanted list) of the functions it serves.
#[derive(Debug, PartialEq, Eq)]
struct BuildGroup {
    key: BuildKey,
    members: Vec<usize>,
}

/// `wanted` grouped by build, in the order each build is first wanted.
fn group_builds(manifest: Option<&Manifest>, wanted: &[(String, Arch)]) -> Vec<BuildGroup> {
    let mut groups: Vec<BuildGroup> = Vec::new();
    for (index, (function, arch)) in wanted.iter().enumerate() {
        let key = BuildKey {
            package: function_package(manifest, function).to_owned(),
            features: function_features(manifest, function),
            arch: *arch,
        };
        match groups.iter_mut().find(|group| group.key == key) {
            Some(group) => group.members.push(index),
            None => groups.push(BuildGroup {
                key,
                members: vec![index],
            }),
        }
    }
    groups
}

/// A compiled binary and what it was compiled as.
struct Compiled {
    package: String,
    toolchain: Toolchain,
    binary: PathBuf,
}

/// Compiles one build for `functions` (shown as one step naming them all).
fn compile(
    root: &Path,
    manifest: Option<&Manifest>,
    key: &BuildKey,
    functions: &[&str],
    options: &BuildOptions,
    target_dir: &Path,
    memo: &mut BuildMemo,
) -> anyhow::Result<Compiled> {
    // `cargo metadata`'s decisions are cached beside the first function's zip.
    let first = functions[0];
    let out_dir = output_dir_in(target_dir, first, key.arch);
    let resolved = match resolved::load(&out_dir, &key.package, &key.features) {
        Some(resolved) => resolved,
        // The error names the first function; say which others share the build.
        None => match resolve(root, manifest, key, first, &out_dir) {
            Err(err) if functions.len() > 1 => {
                return Err(err.context(format!(
                    "could not build {} for {}",
                    cargo::quoted_list(functions),
                    key.arch
                )));
            }
            resolved => resolved?,
        },
    };
    let toolchain = if options.force_zig {
        Toolchain::Zig
    } else {
        resolved.toolchain
    };
    memo.ensure_rust_target(toolchain.target(key.arch))?;
    let binary = cargo::build(
        root,
        &cargo::Invocation {
            package: &resolved.package,
            bin: &resolved.bin,
            arch: key.arch,
            profile: &options.profile,
            features: &key.features,
            toolchain,
            functions,
            progress: options.progress,
            target_dir,
        },
    )?;
    Ok(Compiled {
        package: resolved.package,
        toolchain,
        binary,
    })
}

/// `cargo metadata`'s decisions for `key` (the package building `function`, its binary, the
/// toolchain), stored beside its zip in `out_dir`.
fn resolve(
    root: &Path,
    manifest: Option<&Manifest>,
    key: &BuildKey,
    function: &str,
    out_dir: &Path,
) -> anyhow::Result<resolved::Resolved> {
    let metadata = cargo::metadata(root, key.arch, &key.package, &key.features)?;
    let package = resolve_package(&metadata, manifest, function)?;
    let resolved = resolved::Resolved {
        package: package.name.to_string(),
        bin: cargo::binary_target(package)?.to_owned(),
        toolchain: cargo::toolchain_for(&metadata, package),
    };
    let inputs = resolved::graph_inputs(&metadata);
    resolved::store(out_dir, &key.package, &key.features, &resolved, inputs);
    Ok(resolved)
}

/// The cargo features the manifest gives `function`.
fn function_features(manifest: Option<&Manifest>, function: &str) -> Vec<String> {
    manifest
        .and_then(|manifest| manifest.function(function))
        .map_or_else(Vec::new, |spec| spec.features.clone())
}

/// The package name the manifest gives `function` (its `package`, else its key).
fn function_package<'a>(manifest: Option<&'a Manifest>, function: &'a str) -> &'a str {
    manifest
        .and_then(|manifest| manifest.function(function))
        .map_or(function, |spec| spec.package_name(function))
}

/// The cargo package that builds `function`: the manifest's `package` (or the function's key),
/// else a workspace binary package of that name.
fn resolve_package<'m>(
    metadata: &'m cargo_metadata::Metadata,
    manifest: Option<&Manifest>,
    function: &str,
) -> anyhow::Result<&'m cargo_metadata::Package> {
    let spec = manifest.and_then(|m| m.function(function));
    let package_name = function_package(manifest, function);
    let workspace = metadata.workspace_packages();
    if let Some(package) = workspace
        .iter()
        .find(|package| package.name.as_str() == package_name)
    {
        return Ok(package);
    }
    if spec.is_some() {
        bail!(
            "{FILE_NAME} declares the function `{function}`, but the workspace has no package \
             `{package_name}`: set `package = \"<cargo package>\"` under [functions.{function}]"
        );
    }
    let known = known_functions(metadata, manifest);
    bail!(
        "unknown function `{function}`: it is neither in {FILE_NAME}'s [functions] nor a \
         workspace binary package. Known functions: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// The manifest's functions, then the workspace's Lambda binaries (binary packages that depend
/// on `lambda_runtime`, directly or through the framework) not already listed.
fn known_functions(
    metadata: &cargo_metadata::Metadata,
    manifest: Option<&Manifest>,
) -> Vec<String> {
    let mut known: Vec<String> = manifest
        .map(|m| m.functions.keys().cloned().collect())
        .unwrap_or_default();
    for package in metadata.workspace_packages() {
        let is_function = package.targets.iter().any(|t| t.is_bin())
            && package
                .dependencies
                .iter()
                .any(|d| d.name == "lambda_runtime" || d.name == "lambda-stage");
        if is_function && !known.iter().any(|k| k == package.name.as_str()) {
            known.push(package.name.to_string());
        }
    }
    known
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    let manifest = Manifest::load(&root)?.map(|(_, manifest)| manifest);
    let functions = if args.all || args.functions.is_empty() {
        let manifest = manifest.as_ref().with_context(|| {
            format!(
                "no {FILE_NAME} in {}: name the functions to build",
                root.display()
            )
        })?;
        if manifest.functions.is_empty() {
            bail!("{FILE_NAME} has no [functions]: name the functions to build");
        }
        manifest.functions.keys().cloned().collect()
    } else {
        args.functions
    };
    let options = BuildOptions {
        profile: args.profile,
        force_zig: args.zig,
        progress: true,
        target_dir: None,
    };
    let mut wanted = Vec::new();
    for function in functions {
        let arches = match args.arch {
            Some(ArchChoice::Arm64) => vec![Arch::Arm64],
            Some(ArchChoice::X86_64) => vec![Arch::X86_64],
            Some(ArchChoice::All) => Arch::ALL.to_vec(),
            None => vec![manifest
                .as_ref()
                .and_then(|m| m.function(&function))
                .and_then(|spec| spec.arch)
                .unwrap_or(Arch::Arm64)],
        };
        wanted.extend(arches.into_iter().map(|arch| (function.clone(), arch)));
    }
    let records = build_functions(
        &root,
        manifest.as_ref(),
        &wanted,
        &options,
        &mut BuildMemo::default(),
    )?;
    for record in records {
        println!(
            "{} {}: {} ({}, {}) {}",
            record.function,
            record.arch,
            human_size(record.zip_size),
            record.target,
            record.profile,
            relative(&root, &record.zip_path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn relative<'p>(root: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(root).unwrap_or(path)
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_that_share_a_build_are_grouped_in_the_order_first_wanted() {
        let manifest = Manifest::parse(
            Path::new(FILE_NAME),
            r#"app = "demo"

[functions.api]
package = "shared"

[functions.worker]
package = "shared"

[functions.worker-secrets]
package = "shared"
features = ["secrets"]

[functions.hello]

[environments.dev]
"#,
        )
        .unwrap();
        let wanted: Vec<(String, Arch)> = [
            ("hello", Arch::Arm64),
            ("api", Arch::Arm64),
            ("worker-secrets", Arch::Arm64),
            ("worker", Arch::Arm64),
            ("api", Arch::X86_64),
        ]
        .into_iter()
        .map(|(function, arch)| (function.to_owned(), arch))
        .collect();
        let groups: Vec<(String, Vec<String>, Arch, Vec<usize>)> =
            group_builds(Some(&manifest), &wanted)
                .into_iter()
                .map(|g| (g.key.package, g.key.features, g.key.arch, g.members))
                .collect();
        let secrets = vec!["secrets".to_owned()];
        assert_eq!(
            groups,
            [
                ("hello".to_owned(), vec![], Arch::Arm64, vec![0]),
                ("shared".to_owned(), vec![], Arch::Arm64, vec![1, 3]),
                ("shared".to_owned(), secrets, Arch::Arm64, vec![2]),
                ("shared".to_owned(), vec![], Arch::X86_64, vec![4]),
            ]
        );
    }
}
