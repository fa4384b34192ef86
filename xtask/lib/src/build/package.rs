//! The deterministic `bootstrap.zip`: one entry `bootstrap`, a regular file with mode 0755, a
//! fixed timestamp and no extra fields, so the same binary always gives the same zip bytes.

use std::cell::OnceCell;
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

/// One compiled binary, read and hashed once and zipped at most once, however many functions
/// deploy it (functions that share a build each get its zip in their own directory).
pub struct Bootstrap {
    bytes: Vec<u8>,
    binary_sha256: String,
    zip: OnceCell<Vec<u8>>,
}

impl Bootstrap {
    pub fn read(binary: &Path) -> anyhow::Result<Bootstrap> {
        let bytes = std::fs::read(binary)
            .with_context(|| format!("could not read {}", binary.display()))?;
        Ok(Bootstrap {
            binary_sha256: hex(&Sha256::digest(&bytes)),
            bytes,
            zip: OnceCell::new(),
        })
    }

    /// Writes the zip as `<out_dir>/bootstrap.zip`, unless the zip already there was made from
    /// the same binary bytes (a no-change rebuild).
    pub fn package_into(&self, out_dir: &Path) -> anyhow::Result<Packaged> {
        let zip_path = out_dir.join(ZIP_FILE);
        if let Some(packaged) = reusable(out_dir, &zip_path, &self.binary_sha256) {
            return Ok(packaged);
        }
        let zip = match self.zip.get() {
            Some(zip) => zip,
            None => {
                let zip = zip_bootstrap(&self.bytes)?;
                self.zip.get_or_init(|| zip)
            }
        };
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("could not create {}", out_dir.display()))?;
        // Written beside and renamed, so a reader never sees half a zip.
        let partial = out_dir.join(format!("{ZIP_FILE}.partial"));
        std::fs::write(&partial, zip)
            .with_context(|| format!("could not write {}", partial.display()))?;
        std::fs::rename(&partial, &zip_path)
            .with_context(|| format!("could not write {}", zip_path.display()))?;
        Ok(describe(zip_path, zip, self.binary_sha256.clone()))
    }
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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// Stands in for a binary: enough bytes for deflate to have choices to make.
    fn some_binary(seed: u8) -> Vec<u8> {
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(31) as u8) ^ seed)
            .collect()
    }

    #[test]
    fn the_same_binary_gives_the_same_zip_bytes_wherever_it_is_packaged() {
        let binary = some_binary(7);
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let first_binary = first.path().join("bootstrap-built");
        std::fs::write(&first_binary, &binary).unwrap();
        // A later write: another mtime, another path, the same bytes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second_binary = second.path().join("elsewhere").join("other-name");
        std::fs::create_dir_all(second_binary.parent().unwrap()).unwrap();
        std::fs::write(&second_binary, &binary).unwrap();

        let first = Bootstrap::read(&first_binary)
            .unwrap()
            .package_into(&first.path().join("out"))
            .unwrap();
        let second = Bootstrap::read(&second_binary)
            .unwrap()
            .package_into(&second.path().join("deeper").join("out"))
            .unwrap();

        assert_eq!(
            std::fs::read(&first.zip_path).unwrap(),
            std::fs::read(&second.zip_path).unwrap()
        );
        assert_eq!(first.sha256_hex, second.sha256_hex);
        assert_eq!(first.code_sha256, second.code_sha256);
        assert_eq!(
            zip_bootstrap(&binary).unwrap(),
            zip_bootstrap(&binary).unwrap()
        );
        assert_ne!(
            zip_bootstrap(&binary).unwrap(),
            zip_bootstrap(&some_binary(8)).unwrap(),
            "a different binary must give a different zip"
        );
    }

    #[test]
    fn one_bootstrap_gives_every_function_that_deploys_it_the_same_zip() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("built");
        std::fs::write(&binary, some_binary(3)).unwrap();
        let bootstrap = Bootstrap::read(&binary).unwrap();
        let zips: Vec<Vec<u8>> = ["api", "worker", "cron"]
            .iter()
            .map(|function| {
                let packaged = bootstrap.package_into(&dir.path().join(function)).unwrap();
                std::fs::read(packaged.zip_path).unwrap()
            })
            .collect();
        assert!(zips.iter().all(|zip| *zip == zips[0]));
        assert_eq!(bootstrap.zip.get(), Some(&zips[0]), "the one zip, kept");
    }

    #[test]
    fn the_zip_holds_one_executable_bootstrap_with_fixed_metadata() {
        let binary = some_binary(1);
        let zip = zip_bootstrap(&binary).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), ENTRY_NAME);
        assert!(entry.is_file());
        assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(ENTRY_MODE));
        assert_eq!(entry.last_modified(), Some(entry_timestamp()));
        assert_eq!(entry.extra_data().map_or(0, |data| data.len()), 0);
        let mut unpacked = Vec::new();
        entry.read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, binary);
    }
}
