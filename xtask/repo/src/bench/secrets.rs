//! `cargo xtask bench secrets`: the init time that resolving secret references adds, against
//! moto's SSM and Secrets Manager on 127.0.0.1, all measured in the same run.
//!
//! Cold start = exec of `many-secrets` (a test function whose config declares 24 fields;
//! multi-stack, so references resolve during init) to its first `GET /runtime/invocation/next`.
//! Variants: without the `secrets` feature; with it but no references; 1 SSM reference; 20 SSM
//! references, one per field (batched: 2 `GetParameters`); 20 Secrets Manager references (one
//! `GetSecretValue` each, concurrent). Only the fields a config declares are resolved, so every
//! reference here is one the function reads. Beside them, the same 20
//! parameters fetched in-process one `GetParameter` call at a time (what a naive loader pays)
//! and in 2 batched calls.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use aws_sdk_ssm::types::ParameterType;

use lambda_stage_xtask::workspace;

use super::median;
use super::moto::MotoServer;

/// Cold starts per variant, interleaved so drift hits every variant alike.
const ROUNDS: usize = 15;
const REFERENCES: usize = 20;
/// The function measured: its config declares a field for every reference.
const PACKAGE: &str = "many-secrets";
const REGION: &str = "eu-west-1";

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let plain = build(&root, "")?;
    let with_feature = build(&root, "secrets")?;
    let moto = MotoServer::start(&root)?;
    let endpoint = moto.endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .load(),
    );
    let ssm = aws_sdk_ssm::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    runtime.block_on(async {
        for i in 0..REFERENCES {
            ssm.put_parameter()
                .name(format!("/bench/p{i}"))
                .value(format!("bench-value-{i}"))
                .r#type(ParameterType::SecureString)
                .send()
                .await?;
            secrets
                .create_secret()
                .name(format!("bench/s{i}"))
                .secret_string(format!("bench-value-{i}"))
                .send()
                .await?;
        }
        anyhow::Ok(())
    })?;

    let aws_vars = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("LAMBDA_STAGE_ENV", "bench"),
        ("APP_GREETING", "Hello"),
    ];
    let references = |make: &dyn Fn(usize) -> String, count: usize| {
        let mut vars: Vec<(String, String)> = aws_vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.push(("APP_API_KEY".to_owned(), make(0)));
        vars.extend((1..count).map(|i| (format!("APP_TOKEN_{i:02}"), make(i))));
        vars
    };
    let ssm_ref = |i: usize| format!("ssm:/bench/p{i}");
    let secret_ref = |i: usize| format!("secretsmanager:bench/s{i}");
    let plain_key = |_: usize| "bench-key".to_owned();
    let variants: Vec<Variant> = vec![
        ("no `secrets` feature", &plain, references(&plain_key, 1)),
        (
            "feature on, no references",
            &with_feature,
            references(&plain_key, 1),
        ),
        ("1 SSM reference", &with_feature, references(&ssm_ref, 1)),
        (
            "20 SSM, batched (2 calls)",
            &with_feature,
            references(&ssm_ref, REFERENCES),
        ),
        (
            "20 Secrets Manager (20 calls)",
            &with_feature,
            references(&secret_ref, REFERENCES),
        ),
    ];
    let mut samples = vec![Vec::with_capacity(ROUNDS); variants.len()];
    let mut one_by_one = Vec::with_capacity(ROUNDS);
    let mut batched = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        for ((_, binary, vars), times) in variants.iter().zip(&mut samples) {
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            times.push(super::coldstart::time_to_first_next(binary, &vars)?);
        }
        runtime.block_on(async {
            let started = Instant::now();
            for i in 0..REFERENCES {
                ssm.get_parameter()
                    .name(format!("/bench/p{i}"))
                    .with_decryption(true)
                    .send()
                    .await?;
            }
            one_by_one.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            let names: Vec<String> = (0..REFERENCES).map(|i| format!("/bench/p{i}")).collect();
            let calls = names.chunks(10).map(|batch| {
                ssm.get_parameters()
                    .set_names(Some(batch.to_vec()))
                    .with_decryption(true)
                    .send()
            });
            for answer in futures_util::future::join_all(calls).await {
                answer?;
            }
            batched.push(started.elapsed().as_secs_f64() * 1e3);
            anyhow::Ok(())
        })?;
    }

    println!(
        "exec -> first /next, {ROUNDS} cold starts each (dev build of {PACKAGE}, moto on 127.0.0.1)"
    );
    let medians: Vec<f64> = samples.iter().map(|s| median(s.iter().copied())).collect();
    let base = medians[1];
    for ((name, _, _), p50) in variants.iter().zip(&medians) {
        println!(
            "  {name:<32} p50 {p50:>8.2} ms   added {:>+8.2} ms",
            p50 - base
        );
    }
    let added = |i: usize| (medians[i] - base).max(0.01);
    println!(
        "  ratio feature-on/no-feature (no references): {:.3}",
        medians[1] / medians[0]
    );
    println!(
        "  ratio added 20 batched / 1 reference:        {:.2}",
        added(3) / added(2)
    );
    println!(
        "  ratio added 20 one-call-each / 20 batched:   {:.2}",
        added(4) / added(3)
    );
    let (one, two) = (median(one_by_one), median(batched));
    println!("in-process fetch of the same 20 SSM parameters, {ROUNDS} rounds");
    println!("  one GetParameter call each (sequential) p50 {one:>8.2} ms");
    println!("  2 batched GetParameters (concurrent)    p50 {two:>8.2} ms");
    println!("  ratio one-call-each / batched: {:.2}", one / two);
    Ok(())
}

/// One measured configuration: a label, the binary and its variables.
type Variant<'a> = (&'a str, &'a Path, Vec<(String, String)>);

/// Builds [`PACKAGE`] (dev profile) with `features`, copied aside so the variants coexist.
fn build(root: &Path, features: &str) -> anyhow::Result<PathBuf> {
    let status = Command::new(workspace::cargo())
        .current_dir(root)
        .args(["build", "--quiet", "-p", PACKAGE, "--features", features])
        .status()
        .with_context(|| format!("could not run cargo build -p {PACKAGE}"))?;
    if !status.success() {
        bail!("cargo build -p {PACKAGE} --features '{features}' failed (see cargo's output above)");
    }
    let built = workspace::target_dir(root).join("debug").join(PACKAGE);
    let copy = built.with_file_name(format!("{PACKAGE}-bench-{}", features.replace(',', "+")));
    std::fs::copy(&built, &copy).with_context(|| format!("could not copy {}", built.display()))?;
    Ok(copy)
}
