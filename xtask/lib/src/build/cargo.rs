//! Running cargo for a Lambda target: which toolchain a function needs, the cargo call, its
//! progress and its diagnostics.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use cargo_metadata::{DependencyKind, Message, Metadata, MetadataCommand, Package, PackageId};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::{progress, tools, workspace};

/// `provided.al2023` ships glibc 2.34: glibc builds must not need anything newer.
pub const GLIBC_VERSION: &str = "2.34";

/// How a function's binary is compiled and linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toolchain {
    /// Static musl, linked by the `rust-lld` that ships with Rust: no C toolchain at all.
    #[serde(rename = "rust-lld")]
    RustLld,
    /// Zig as the cross C compiler and linker (cargo-zigbuild), against glibc 2.34.
    #[serde(rename = "zig")]
    Zig,
}

impl Toolchain {
    /// The Rust target triple the binary is built for.
    pub fn target(self, arch: Arch) -> &'static str {
        match (self, arch) {
            (Toolchain::RustLld, arch) => arch.musl_target(),
            (Toolchain::Zig, Arch::Arm64) => "aarch64-unknown-linux-gnu",
            (Toolchain::Zig, Arch::X86_64) => "x86_64-unknown-linux-gnu",
        }
    }
}

/// The workspace's metadata, with the dependency graph resolved for `arch`'s Linux target.
pub fn metadata(
    root: &Path,
    arch: Arch,
    package: &str,
    features: &[String],
) -> anyhow::Result<Metadata> {
    let mut options = vec![
        "--filter-platform".to_owned(),
        arch.musl_target().to_owned(),
    ];
    // The graph the build will have: a feature may bring C (the AWS SDK's TLS stack).
    if !features.is_empty() {
        let qualified: Vec<String> = features.iter().map(|f| format!("{package}/{f}")).collect();
        options.extend(["--features".to_owned(), qualified.join(",")]);
    }
    MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .other_options(options)
        .exec()
        .with_context(|| {
            if features.is_empty() {
                "`cargo metadata` failed: is the workspace's Cargo.toml valid?".to_owned()
            } else {
                format!(
                    "`cargo metadata` failed: does package `{package}` have the features {features:?} that lambda-stage.toml's `features` names?"
                )
            }
        })
}

/// The binary target that becomes `bootstrap`: the package's only one, else the one named
/// `bootstrap` or like the package.
pub fn binary_target(package: &Package) -> anyhow::Result<&str> {
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|target| target.is_bin())
        .map(|target| target.name.as_str())
        .collect();
    match bins.as_slice() {
        [] => bail!(
            "package `{}` has no binary target: a Lambda function needs a `src/main.rs` (or a \
             [[bin]])",
            package.name
        ),
        [only] => Ok(only),
        several => several
            .iter()
            .find(|name| **name == "bootstrap")
            .or_else(|| several.iter().find(|name| **name == package.name.as_str()))
            .copied()
            .with_context(|| {
                format!(
                    "package `{}` has several binaries ({}): name one `bootstrap` or like the \
                     package",
                    package.name,
                    several.join(", ")
                )
            }),
    }
}

/// Zig when a crate that runs in the function compiles C (a build dependency on `cc` or
/// `cmake`, as ring and aws-lc-sys have); `rust-lld` otherwise.
pub fn toolchain_for(metadata: &Metadata, package: &Package) -> Toolchain {
    let c_crates = crates_compiling_c(metadata, &package.id);
    if c_crates.is_empty() {
        Toolchain::RustLld
    } else {
        eprintln!(
            "{} compiles C ({}): building with Zig",
            package.name,
            c_crates.into_iter().collect::<Vec<_>>().join(", ")
        );
        Toolchain::Zig
    }
}

/// Crates in `root`'s dependency graph that run on the target and build C code. Build scripts,
/// proc macros and their dependencies run on the host and are skipped.
fn crates_compiling_c(metadata: &Metadata, root: &PackageId) -> BTreeSet<String> {
    let Some(resolve) = &metadata.resolve else {
        return BTreeSet::new();
    };
    let nodes: HashMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|node| (&node.id, node)).collect();
    let packages: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let is_c_builder = |id: &PackageId| {
        packages
            .get(id)
            .is_some_and(|p| matches!(p.name.as_str(), "cc" | "cmake"))
    };
    let is_proc_macro = |id: &PackageId| {
        packages
            .get(id)
            .is_some_and(|p| p.targets.iter().any(|t| t.is_proc_macro()))
    };

    let mut found = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let kinds = || dep.dep_kinds.iter().map(|k| k.kind);
            if kinds().any(|k| k == DependencyKind::Build) && is_c_builder(&dep.pkg) {
                if let Some(package) = packages.get(id) {
                    found.insert(package.name.to_string());
                }
            }
            if kinds().any(|k| k == DependencyKind::Normal) && !is_proc_macro(&dep.pkg) {
                stack.push(&dep.pkg);
            }
        }
    }
    found
}

/// One cargo build of a function's binary.
pub struct Invocation<'a> {
    pub package: &'a str,
    pub bin: &'a str,
    pub arch: Arch,
    pub profile: &'a str,
    pub features: &'a [String],
    pub toolchain: Toolchain,
    /// The functions this binary serves (several share a package), for messages only.
    pub functions: &'a [&'a str],
    /// Report the build as a step (a spinner on a terminal, a line otherwise).
    pub progress: bool,
    pub target_dir: &'a Path,
}

/// Builds the binary and returns its path. The compiler's diagnostics are printed as they
/// come; cargo's own output is shown if the build fails.
pub fn build(root: &Path, invocation: &Invocation) -> anyhow::Result<PathBuf> {
    let Invocation {
        package,
        bin,
        arch,
        profile,
        features,
        toolchain,
        functions,
        progress,
        target_dir,
    } = *invocation;
    let triple = toolchain.target(arch);
    let names = functions.join(", ");
    let subject = match functions {
        [one] => format!("function `{one}`"),
        _ => format!("functions {}", quoted_list(functions)),
    };

    let mut command = match toolchain {
        Toolchain::RustLld => {
            let mut command = Command::new(workspace::cargo());
            command.args(["build", "--target", triple]);
            command.args(["--config", &format!("target.{triple}.linker=\"rust-lld\"")]);
            command
        }
        Toolchain::Zig => {
            let venv_bin = tools::ensure_zig(root).map_err(|err| missing_zig(&subject, err))?;
            let mut command = Command::new(venv_bin.join("cargo-zigbuild"));
            command.args(["zigbuild", "--target", &format!("{triple}.{GLIBC_VERSION}")]);
            // cargo-zigbuild runs Zig as `python3 -m ziglang`: the venv's python3 must come first.
            command.env("PATH", prepend_path(&venv_bin)?);
            command
        }
    };
    command
        .args(["--package", package, "--bin", bin, "--profile", profile])
        .args(if features.is_empty() {
            Vec::new()
        } else {
            vec!["--features".to_owned(), features.join(",")]
        })
        .args(["--config", &remap_rustflags(root, target_dir, triple)])
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["--message-format", message_format()])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let step = if progress {
        progress::step("Building", &format!("{names} ({arch}, {profile})"))
    } else {
        progress::silent()
    };
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {command:?}"))?;
    let stderr = child.stderr.take().context("cargo's stderr is not piped")?;
    let show_detail = step.detail_setter();
    // cargo's own lines ("Compiling x", "Blocking waiting for file lock"): progress, and the
    // explanation if the build fails.
    let stderr_reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let trimmed = line.trim_start();
            if trimmed.starts_with("Compiling") || trimmed.starts_with("Blocking") {
                show_detail(trimmed.to_owned());
            }
            lines.push(line);
        }
        lines
    });

    let mut binary = None;
    let stdout = BufReader::new(child.stdout.take().context("cargo's stdout is not piped")?);
    for message in Message::parse_stream(stdout) {
        match message.context("could not read cargo's output")? {
            Message::CompilerArtifact(artifact)
                if artifact.target.is_bin() && artifact.target.name == bin =>
            {
                binary = artifact.executable.map(PathBuf::from);
            }
            Message::CompilerMessage(message) => {
                if let Some(rendered) = message.message.rendered {
                    step.suspend(|| eprint!("{rendered}"));
                }
            }
            _ => {}
        }
    }
    let status = child.wait().context("cargo did not finish")?;
    let cargo_lines = stderr_reader.join().unwrap_or_default();
    drop(step);
    if !status.success() {
        for line in &cargo_lines {
            eprintln!("{line}");
        }
        bail!(
            "could not compile {subject} for {arch} ({triple}, profile `{profile}`): cargo \
             failed ({status}); its diagnostics are above"
        );
    }
    binary.with_context(|| {
        format!("cargo built `{package}` but reported no executable for the binary `{bin}`")
    })
}

/// `a`, `b`, `c`
pub(super) fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `subject`: `function \`x\`` or `functions \`x\`, \`y\``.
fn missing_zig(subject: &str, err: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "the package of {subject} compiles C code, which needs Zig as the cross C compiler, and Zig \
         could not be installed into the project venv: {err:#}\n\
         Fix: python3 -m venv .venv && .venv/bin/pip install '{}' '{}'\n\
         (or build a pure-Rust function: drop the C dependency, e.g. use rustls with the `ring`-free \
         provider)",
        tools::ZIGLANG_REQUIREMENT,
        tools::CARGO_ZIGBUILD_REQUIREMENT
    )
}

fn prepend_path(dir: &Path) -> anyhow::Result<std::ffi::OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&current));
    std::env::join_paths(paths).context("PATH cannot hold the venv directory")
}

/// `--config target.<triple>.rustflags=[...]`: remap the workspace, target directory and cargo
/// home out of the binary (panic locations, debug paths), so it does not depend on where it
/// was built. Later remappings win, so the more specific ones come last.
fn remap_rustflags(root: &Path, target_dir: &Path, triple: &str) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut remaps = vec![(root.to_path_buf(), "/build")];
    remaps.push((target_dir.to_path_buf(), "/target"));
    if let Some(cargo_home) = cargo_home {
        remaps.push((cargo_home, "/cargo"));
    }
    let flags: Vec<toml::Value> = remaps
        .into_iter()
        .map(|(from, to)| {
            toml::Value::String(format!("--remap-path-prefix={}={to}", from.display()))
        })
        .collect();
    format!("target.{triple}.rustflags={}", toml::Value::Array(flags))
}

fn message_format() -> &'static str {
    if std::io::stderr().is_terminal() {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest's `features` reach the graph the toolchain is chosen from: `hello` alone is
    /// pure Rust; with lambda-stage's `secrets` it links the AWS SDK, whose TLS stack builds C.
    #[test]
    fn a_feature_that_brings_c_code_selects_zig() {
        let root = workspace::root().unwrap();
        let toolchain = |features: &[String]| {
            let metadata = metadata(&root, Arch::Arm64, "hello", features).unwrap();
            let hello = metadata
                .workspace_packages()
                .into_iter()
                .find(|package| package.name.as_str() == "hello")
                .unwrap()
                .clone();
            toolchain_for(&metadata, &hello)
        };
        assert_eq!(toolchain(&[]), Toolchain::RustLld);
        assert_eq!(toolchain(&["secrets".to_owned()]), Toolchain::Zig);
    }
}
