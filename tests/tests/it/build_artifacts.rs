//! `cargo xtask build`'s zips: their structure, their ELF binaries for both architectures, and
//! that what would be deployed really answers an event on a Runtime API (arm64 under qemu-user).
//!
//! Needs what `cargo xtask test` installs first (`lambda_stage_repo_xtask::setup`): the musl targets, Zig
//! in the project venv, and `qemu-aarch64-static`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use goblin::elf::Elf;
use lambda_stage_repo_xtask::setup;
use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::build_once::{self, artifact, entries, unpacked_bootstrap};
use lambda_stage_tests::function::Function;
use lambda_stage_tests::runtime_api::{Outcome, RuntimeApi};
use lambda_stage_xtask::arch::Arch;
use lambda_stage_xtask::build::{BuildOptions, BuildRecord, Toolchain};
use lambda_stage_xtask::tools;
use serde_json::json;
use sha2::{Digest as _, Sha256};

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:probe";

fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::Arm64 => goblin::elf::header::EM_AARCH64,
        Arch::X86_64 => goblin::elf::header::EM_X86_64,
    }
}

#[test]
fn zip_holds_one_executable_bootstrap_with_fixed_metadata() {
    let record = artifact("bare-echo", Arch::X86_64).unwrap();
    let entries = entries(&record.zip_path).unwrap();
    assert_eq!(entries.len(), 1, "one entry only");
    let entry = &entries[0];
    assert_eq!(entry.name, "bootstrap");
    assert!(entry.is_file, "a regular file");
    let mode = entry.unix_mode.expect("unix mode recorded");
    assert_eq!(mode & 0o777, 0o755, "mode {mode:o}");
    assert_eq!(mode & 0o170000, 0o100000, "regular file type in {mode:o}");
    assert_eq!(
        entry.modified,
        zip::DateTime::default(),
        "fixed 1980-01-01 timestamp"
    );
    assert_eq!(
        entry.extra_data_len, 0,
        "no extra fields (no host times or ids)"
    );
    assert_eq!(&entry.bytes[..4], b"\x7fELF");

    // The record describes exactly these bytes, in both of Lambda's hash spellings.
    let zip = std::fs::read(&record.zip_path).unwrap();
    let digest = Sha256::digest(&zip);
    assert_eq!(record.zip_size, zip.len() as u64);
    assert_eq!(
        record.sha256_hex,
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(
        record.code_sha256,
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    assert_eq!(record.function, "bare-echo");
    assert_eq!(record.package, "bare-echo");
    assert_eq!(record.profile, build_once::TEST_PROFILE);
    assert_eq!(
        record.zip_path,
        lambda_stage_xtask::build::output_dir(workspace_root(), "bare-echo", Arch::X86_64)
            .join("bootstrap.zip")
    );
    let on_disk = BuildRecord::load(&record.zip_path.parent().unwrap().join("build.json")).unwrap();
    assert_eq!(on_disk, record, "build.json beside the zip");
}

#[test]
fn no_change_rebuild_keeps_the_zip() {
    let first = artifact("bare-echo", Arch::Arm64).unwrap();
    let modified = std::fs::metadata(&first.zip_path)
        .unwrap()
        .modified()
        .unwrap();
    let again = build_once::build(
        "bare-echo",
        Arch::Arm64,
        &BuildOptions {
            profile: build_once::TEST_PROFILE.to_owned(),
            ..BuildOptions::default()
        },
    )
    .unwrap();
    assert_eq!(again.sha256_hex, first.sha256_hex);
    assert_eq!(
        std::fs::metadata(&again.zip_path)
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "an unchanged binary re-uses its zip"
    );
}

#[test]
fn pure_rust_functions_are_static_musl_elfs_for_their_arch() {
    for arch in Arch::ALL {
        let record = artifact("bare-echo", arch).unwrap();
        assert_eq!(record.toolchain, Toolchain::RustLld);
        assert_eq!(record.target, arch.musl_target());
        let bytes = std::fs::read(unpacked_bootstrap(&record).unwrap()).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.header.e_machine, elf_machine(arch), "{arch}");
        assert!(elf.is_64);
        assert_eq!(elf.interpreter, None, "{arch}: static, no dynamic loader");
        assert!(
            elf.libraries.is_empty(),
            "{arch}: needs {:?}",
            elf.libraries
        );
    }
}

#[tokio::test]
async fn x86_64_bootstrap_answers_an_event() {
    let record = artifact("bare-echo", Arch::X86_64).unwrap();
    let bootstrap = unpacked_bootstrap(&record).unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = Function::start(&bootstrap, api.address(), &[]).unwrap();
    let event = json!({"name": "Ada", "arch": "x86_64"});
    assert_eq!(
        api.invoke(ARN, event.clone()).await.unwrap(),
        Outcome::Response(event)
    );
}

#[tokio::test]
async fn arm64_bootstrap_answers_an_event_under_qemu() {
    let record = artifact("bare-echo", Arch::Arm64).unwrap();
    let bootstrap = unpacked_bootstrap(&record).unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = start_under_qemu(&bootstrap, api.address());
    let event = json!({"name": "Ada", "arch": "arm64"});
    assert_eq!(
        api.invoke(ARN, event.clone()).await.unwrap(),
        Outcome::Response(event)
    );
}

/// `qemu-aarch64-static <bootstrap>` with Lambda's variables; killed when dropped.
fn start_under_qemu(bootstrap: &Path, runtime_api: &str) -> tokio::process::Child {
    let qemu = tools::which(setup::QEMU_AARCH64).unwrap_or_else(|| {
        panic!(
            "`{}` is missing: run `cargo xtask test`, which installs {}",
            setup::QEMU_AARCH64,
            setup::QEMU_PACKAGE
        )
    });
    tokio::process::Command::new(qemu)
        .arg(bootstrap)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", runtime_api),
            ("AWS_LAMBDA_FUNCTION_NAME", "probe"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The highest `GLIBC_x.y` version the binary needs, if it links glibc.
fn max_glibc(elf: &Elf) -> Option<(u32, u32)> {
    let verneed = elf.verneed.as_ref()?;
    verneed
        .iter()
        .flat_map(|need| need.iter().collect::<Vec<_>>())
        .filter_map(|aux| elf.dynstrtab.get_at(aux.vna_name))
        .filter_map(|name| name.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
}

/// The end-to-end builds with Zig, one per arch: on x86_64 a small function whose build compiles
/// C (the `cc` crate, as ring and aws-lc-sys, which the AWS SDK brings, have); on arm64 the
/// manifest's `hello`, whose `secrets` feature brings the AWS SDK and aws-lc-sys (the build
/// `recreate_app` deploys, so the suite compiles that graph for arm64 once). That a graph with
/// the SDK is sent to Zig is the cheaper `build::cargo` unit test on cargo metadata.
#[tokio::test]
async fn functions_that_compile_c_build_with_zig_for_glibc_2_34_on_both_arches_and_answer() {
    for (function, arch) in [("c-user", Arch::X86_64), ("hello", Arch::Arm64)] {
        let record = artifact(function, arch).unwrap();
        assert_eq!(
            record.toolchain,
            Toolchain::Zig,
            "{function}'s build compiles C"
        );
        let bytes = std::fs::read(unpacked_bootstrap(&record).unwrap()).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(
            elf.header.e_machine,
            elf_machine(arch),
            "{function}: {arch}"
        );
        let interpreter = elf.interpreter.expect("a glibc build is dynamic");
        let expected = match arch {
            Arch::Arm64 => "/lib/ld-linux-aarch64.so.1",
            Arch::X86_64 => "/lib64/ld-linux-x86-64.so.2",
        };
        assert_eq!(interpreter, expected);
        let glibc = max_glibc(&elf).expect("needs versioned glibc symbols");
        assert!(
            glibc <= (2, 34),
            "{function}, {arch}: needs GLIBC_{}.{}, provided.al2023 has 2.34",
            glibc.0,
            glibc.1
        );
    }

    // The x86_64 build runs here (the host's glibc is newer), and its C code answers.
    let record = artifact("c-user", Arch::X86_64).unwrap();
    let bootstrap = unpacked_bootstrap(&record).unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = Function::start(&bootstrap, api.address(), &[]).unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        api.invoke(ARN, json!({"number": -1234567})),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(answer, Outcome::Response(json!({"digits": 7})));
}

#[test]
fn unknown_function_lists_the_known_ones() {
    let err = build_once::build("no-such-function", Arch::X86_64, &BuildOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown function `no-such-function`"), "{err}");
    assert!(
        err.contains("hello"),
        "lists the manifest's functions: {err}"
    );
    assert!(
        err.contains("bare-echo"),
        "lists workspace functions: {err}"
    );
}

/// Issue 14 #18: without a terminal (how CI runs it), `cargo xtask build` says what it builds,
/// one plain line per step on stderr as cargo does, and stdout keeps only the results.
#[test]
fn without_a_terminal_build_prints_one_line_per_step() {
    let xtask = lambda_stage_tests::bins::binary("xtask", "dev").unwrap();
    let output = std::process::Command::new(xtask)
        .current_dir(workspace_root())
        .args(["build", "bare-echo", "--arch", "x86_64"])
        .args(["--profile", build_once::TEST_PROFILE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["    Building bare-echo (x86_64, dev)"],
        "{stderr}"
    );
    assert!(
        stdout.starts_with("bare-echo x86_64: ") && stdout.lines().count() == 1,
        "{stdout}"
    );
}
