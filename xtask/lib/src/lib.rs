//! The logic behind `cargo xtask`: build, invoke, serve, deploy and friends.
//!
//! A workspace adopts it with a three-line `xtask/src/main.rs`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     lambda_stage_xtask::main()
//! }
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

pub mod app_api;
pub mod arch;
pub mod build;
pub mod ci;
pub mod deploy;
pub mod events;
pub mod invoke;
pub mod logs;
pub mod manifest;
pub mod new;
pub mod pipeline;
mod progress;
pub mod routes;
pub mod serve;
pub mod tools;
pub mod workspace;

/// `cargo xtask`: build, run and deploy the workspace's Lambda functions.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(flatten)]
    globals: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// The options every command takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Say more when something fails: the AWS SDK's full error detail, for a bug report.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl GlobalArgs {
    /// Makes the options take effect for the rest of the process.
    pub fn apply(&self) {
        VERBOSE.store(self.verbose, Ordering::Relaxed);
    }
}

/// `-v`/`--verbose`, for the code that words errors.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Whether the command line asked for `--verbose`.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Every command. Public so that a workspace can add commands of its own next to these (with
/// `#[command(flatten)]`) and hand the rest to [`run`], as this repository's own xtask does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build deployable bootstrap.zip files for arm64 and x86_64.
    Build(build::Args),
    /// Invoke a function once and print its answer: built and run on the local Lambda emulator,
    /// or with --remote, the environment's deployed alias in AWS.
    Invoke(invoke::Args),
    /// List the built-in emulated events, or print one (with overrides) as JSON.
    Events(events::Args),
    /// Serve functions locally: the AWS Invoke API and an HTTP front (API Gateway v2 events).
    Serve(serve::Args),
    /// Every check the pipeline runs: fmt, clippy, the test suite, the manifest's pre-flight.
    Ci(ci::Args),
    /// Add a function to the workspace: package, typed config, handler, test, manifest entry.
    New(new::Args),
    /// Generate the CI/CD pipeline (GitHub Actions or Bitbucket) from the manifest.
    Pipeline(pipeline::Args),
    /// Deploy functions to an environment: build, pre-flight, plan, publish, move the alias.
    Deploy(deploy::DeployArgs),
    /// Give an environment exactly what another one runs, without rebuilding.
    Promote(deploy::PromoteArgs),
    /// Send all of an environment's traffic to its canary version.
    Finalize(deploy::AliasArgs),
    /// Undo the environment's most recent deploy, promote or finalize, on the aliases it changed.
    Rollback(deploy::AliasArgs),
    /// Show what each environment runs, and its drift from the manifest.
    Status(deploy::status::StatusArgs),
    /// Remove exactly what one environment owns in AWS, and nothing of any other.
    Destroy(deploy::destroy::DestroyArgs),
    /// Show one environment's lines of a function's CloudWatch Logs, or follow them.
    Logs(logs::Args),
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.globals.apply();
    exit_code(run(cli.command))
}

/// The exit code of a command's outcome; an error is printed with its cause chain.
pub fn exit_code(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build(args) => build::run(args),
        Command::Invoke(args) => invoke::run(args),
        Command::Events(args) => events::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Ci(args) => ci::run(args, |_| Ok(())),
        Command::New(args) => new::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Deploy(args) => deploy::deploy(args),
        Command::Promote(args) => deploy::promote(args),
        Command::Finalize(args) => deploy::finalize(args),
        Command::Rollback(args) => deploy::rollback(args),
        Command::Status(args) => deploy::status::run(args),
        Command::Destroy(args) => deploy::destroy::run(args),
        Command::Logs(args) => logs::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// The help `cargo xtask <args>` prints: cargo runs the binary as `target/.../xtask`, and
    /// clap names the program after that argv[0] unless told otherwise.
    fn help(args: &[&str]) -> String {
        let argv = ["target/debug/xtask"].iter().chain(args);
        let err = Cli::try_parse_from(argv).expect_err("--help stops parsing");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.to_string()
    }

    #[test]
    fn help_says_cargo_xtask_and_every_flag_of_promote_finalize_rollback_has_text() {
        let top = help(&["--help"]);
        assert!(
            top.contains("Usage: cargo xtask [OPTIONS] <COMMAND>"),
            "{top}"
        );
        assert!(top.contains("-v, --verbose"), "{top}");
        let mut cli = Cli::command();
        for (command, flags) in [
            ("promote", &["from", "to", "yes", "dry_run"][..]),
            ("finalize", &["env", "yes", "dry_run"][..]),
            ("rollback", &["env", "yes", "dry_run"][..]),
        ] {
            let text = help(&[command, "--help"]);
            assert!(
                text.contains(&format!("Usage: cargo xtask {command} ")),
                "{text}"
            );
            let sub = cli.find_subcommand_mut(command).unwrap();
            for flag in flags {
                let arg = sub.get_arguments().find(|a| a.get_id() == *flag).unwrap();
                assert!(
                    arg.get_help().is_some_and(|h| !h.to_string().is_empty()),
                    "`{command} --{}` has no help text:\n{text}",
                    arg.get_long().unwrap()
                );
            }
        }
    }
}
