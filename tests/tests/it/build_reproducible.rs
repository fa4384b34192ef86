//! The same source and toolchain give a byte-identical `bootstrap.zip`: two release builds of a
//! small function from two clean target directories (at different paths) have the same sha256.

use lambda_stage_tests::build_once;
use lambda_stage_xtask::arch::Arch;
use lambda_stage_xtask::build::BuildOptions;

#[test]
fn two_clean_release_builds_give_the_same_zip() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let build = |dir: &std::path::Path| {
        build_once::build(
            "bare-echo",
            Arch::X86_64,
            &BuildOptions {
                profile: "release".to_owned(),
                target_dir: Some(dir.join("a-different").join("target")),
                ..BuildOptions::default()
            },
        )
        .unwrap()
    };
    let first = build(first_dir.path());
    let second = build(&second_dir.path().join("nested"));
    assert!(first.zip_path.starts_with(first_dir.path()));
    assert!(second.zip_path.starts_with(second_dir.path()));
    assert_ne!(first.zip_path, second.zip_path);
    assert_eq!(
        std::fs::read(&first.zip_path).unwrap(),
        std::fs::read(&second.zip_path).unwrap(),
        "zips differ: {} vs {}",
        first.sha256_hex,
        second.sha256_hex
    );
    assert_eq!(first.code_sha256, second.code_sha256);
    assert_eq!(first.binary_sha256, second.binary_sha256);
}
