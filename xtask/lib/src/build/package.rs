//! The deterministic `bootstrap.zip`: one entry `bootstrap`, a regular file with mode 0755, a
//! fixed timestamp and no extra fields, so the same binary always gives the same zip bytes.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use super::{BuildRecord, RECORD_FILE, ZIP_FILE};

/// The entry Lambda's `provided.al2023` runtime executes.
pub const ENTRY_NAME: &str = "bootstrap";
/// Executable by everyone, as Lambda needs.
pub const ENTRY_MODE: u32 = 0o755;
/// Deflate's strongest zlib level: a smaller upload for a few tens of milliseconds.
const COMPRESSION_LEVEL: i64 = 9;

/// The zip written for one binary, and its hashes.
pub struct Packaged {
    pub zip_path: PathBuf,
    pub zip_size: u64,
    pub sha256_hex: String,
    pub code_sha256: String,
    pub binary_sha256: String,
}

/// The fixed timestamp of the entry: the zip format's epoch, 1980-01-01 00:00:00.
pub fn entry_timestamp() -> DateTime {
    DateTime::DEFAULT
}

/// Zips `binary` as `<out_dir>/bootstrap.zip`, unless the zip already there was made from the
/// same binary bytes (a no-change rebuild).
pub fn package(binary: &Path, out_dir: &Path) -> anyhow::Result<Packaged> {
    let bytes =
        std::fs::read(binary).with_context(|| format!("could not read {}", binary.display()))?;
    let binary_sha256 = hex(&Sha256::digest(&bytes));
    let zip_path = out_dir.join(ZIP_FILE);

    if let Some(packaged) = reusable(out_dir, &zip_path, &binary_sha256) {
        return Ok(packaged);
    }

    let zip = zip_bootstrap(&bytes)?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("could not create {}", out_dir.display()))?;
    // Written beside and renamed, so a reader never sees half a zip.
    let partial = out_dir.join(format!("{ZIP_FILE}.partial"));
    std::fs::write(&partial, &zip)
        .with_context(|| format!("could not write {}", partial.display()))?;
    std::fs::rename(&partial, &zip_path)
        .with_context(|| format!("could not write {}", zip_path.display()))?;
    Ok(describe(zip_path, &zip, binary_sha256))
}

/// The previous zip, if its record says it holds this binary and its bytes are intact.
fn reusable(out_dir: &Path, zip_path: &Path, binary_sha256: &str) -> Option<Packaged> {
    let record = BuildRecord::load(&out_dir.join(RECORD_FILE)).ok()?;
    if record.binary_sha256 != binary_sha256 {
        return None;
    }
    let zip = std::fs::read(zip_path).ok()?;
    let packaged = describe(zip_path.to_path_buf(), &zip, binary_sha256.to_owned());
    (packaged.sha256_hex == record.sha256_hex).then_some(packaged)
}

fn describe(zip_path: PathBuf, zip: &[u8], binary_sha256: String) -> Packaged {
    let digest = Sha256::digest(zip);
    Packaged {
        zip_path,
        zip_size: zip.len() as u64,
        sha256_hex: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        binary_sha256,
    }
}

/// The zip bytes holding `binary` as `bootstrap`.
pub fn zip_bootstrap(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(COMPRESSION_LEVEL))
        .system(System::Unix)
        .unix_permissions(ENTRY_MODE)
        .last_modified_time(entry_timestamp())
        .large_file(false);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .start_file(ENTRY_NAME, options)
        .context("could not start the zip entry")?;
    writer
        .write_all(binary)
        .context("could not compress the binary")?;
    Ok(writer
        .finish()
        .context("could not finish the zip")?
        .into_inner())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
