//! `cargo xtask events`: lists the built-in events; `cargo xtask events <name> [overrides]` prints
//! one as JSON (the same flags as `cargo xtask invoke --event <name>`).

use std::process::ExitCode;

use lambda_stage_events::{catalogue, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The event to print; without it, every event is listed.
    pub name: Option<String>,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(name) = args.name else {
        anyhow::ensure!(
            args.overrides == Overrides::default(),
            "override flags change one event: name it, e.g. `cargo xtask events apigw-http --path /hello`"
        );
        let width = catalogue()
            .iter()
            .map(|info| info.name.len())
            .max()
            .unwrap_or(0);
        for info in catalogue() {
            println!("{:width$}  {}", info.name, info.description);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let event = lambda_stage_events::build(&name, &args.overrides)?;
    println!("{}", serde_json::to_string_pretty(&event)?);
    Ok(ExitCode::SUCCESS)
}
