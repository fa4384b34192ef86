//! Lambda zips built by `cargo xtask build`'s code, once per test process, and shared.
//!
//! Every test that needs a function's zip for an architecture asks here: the first caller
//! builds it (in the workspace's target directory, so other test binaries and a later run get a
//! cheap no-change rebuild), the others wait and reuse it. Debug builds (`dev` profile) keep the
//! suite fast; the release profile is exercised where it is the point.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use lambda_stage_xtask::arch::Arch;
use lambda_stage_xtask::build::{build_function_with, BuildOptions, BuildRecord};
use lambda_stage_xtask::manifest::Manifest;

use crate::bins::workspace_root;

/// The profile of the shared test artifacts.
pub const TEST_PROFILE: &str = "dev";

type Slot = Arc<OnceLock<Result<BuildRecord, String>>>;

/// The build of `function` for `arch` with [`TEST_PROFILE`], built on first use.
pub fn artifact(function: &str, arch: Arch) -> anyhow::Result<BuildRecord> {
    static SLOTS: OnceLock<Mutex<HashMap<(String, Arch), Slot>>> = OnceLock::new();
    let slot = SLOTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .entry((function.to_owned(), arch))
        .or_default()
        .clone();
    // Builds of different artifacts may run at once; the same one is built by one test only.
    slot.get_or_init(|| {
        build(
            function,
            arch,
            &BuildOptions {
                profile: TEST_PROFILE.to_owned(),
                ..BuildOptions::default()
            },
        )
        .map_err(|err| format!("{err:#}"))
    })
    .clone()
    .map_err(|err| anyhow::anyhow!("building {function} for {arch} failed: {err}"))
}

/// Builds `function` for `arch` with `options`, with the workspace's manifest.
pub fn build(function: &str, arch: Arch, options: &BuildOptions) -> anyhow::Result<BuildRecord> {
    let root = workspace_root();
    let manifest = Manifest::load(root)?.map(|(_, manifest)| manifest);
    build_function_with(root, manifest.as_ref(), function, arch, options)
}

/// The single entry of `zip`, as (name, unix mode, timestamp, bytes).
pub struct Entry {
    pub name: String,
    pub unix_mode: Option<u32>,
    pub is_file: bool,
    pub modified: zip::DateTime,
    pub extra_data_len: usize,
    pub bytes: Vec<u8>,
}

/// Reads every entry of the zip at `path`.
pub fn entries(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file)?;
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        entries.push(Entry {
            name: entry.name()?.into_owned(),
            unix_mode: entry.unix_mode(),
            is_file: entry.is_file(),
            modified: entry.last_modified().unwrap_or_default(),
            extra_data_len: entry.extra_data().map_or(0, |data| data.len()),
            bytes,
        });
    }
    Ok(entries)
}

/// Unpacks the zip's `bootstrap` next to it (as `bootstrap`, mode 0755) and returns its path:
/// tests run what would be deployed, not cargo's binary.
pub fn unpacked_bootstrap(record: &BuildRecord) -> anyhow::Result<PathBuf> {
    static UNPACKING: Mutex<()> = Mutex::new(());
    let _guard = UNPACKING
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let entry = entries(&record.zip_path)?
        .into_iter()
        .find(|entry| entry.name == "bootstrap")
        .with_context(|| format!("{} has no bootstrap", record.zip_path.display()))?;
    let dir = record
        .zip_path
        .parent()
        .context("zip has no directory")?
        .join("unpacked");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bootstrap");
    let partial = dir.join("bootstrap.partial");
    std::fs::write(&partial, &entry.bytes)?;
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(entry.unix_mode.unwrap_or(0o644)),
    )?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}
