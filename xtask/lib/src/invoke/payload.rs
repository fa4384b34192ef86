//! The event `invoke` delivers: `--data`, `--event` (a catalogue name, a file, `-`), else what
//! the function's trigger in `--env` sends, else `{}`.

use std::io::Read as _;

use anyhow::{bail, Context as _};
use lambda_stage_events::Overrides;

use super::{trigger_event, Args};
use crate::manifest::{Manifest, FILE_NAME};

/// The event to deliver: `--event` or `--data`, else what the function's trigger in `--env`
/// sends (`region` and `account`: where the function runs), else `{}`.
pub(super) fn payload(
    args: &Args,
    manifest: Option<&Manifest>,
    region: &str,
    account: &str,
) -> anyhow::Result<Vec<u8>> {
    match trigger_payload(args, manifest, region, account)? {
        Some(payload) => Ok(payload),
        None => event_payload(args),
    }
}

/// With neither `--event` nor `--data`, the event of the function's trigger in `--env`, if it
/// has one (a note on stderr says which).
fn trigger_payload(
    args: &Args,
    manifest: Option<&Manifest>,
    region: &str,
    account: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(manifest) = manifest.filter(|m| m.function(&args.function).is_some()) else {
        return Ok(None);
    };
    if args.event.is_some() || args.data.is_some() {
        return Ok(None);
    }
    let built = trigger_event::build(
        manifest,
        &args.function,
        &args.env,
        region,
        account,
        &args.overrides,
    )?;
    Ok(match built {
        Some(event) => {
            eprintln!("note: {}", event.note);
            Some(serde_json::to_vec(&event.payload)?)
        }
        None => None,
    })
}

/// The event to deliver: `--data`, a built-in `--event`, a file, stdin, or `{}`.
fn event_payload(args: &Args) -> anyhow::Result<Vec<u8>> {
    let builtin = args.event.as_deref().filter(|name| {
        lambda_stage_events::catalogue()
            .iter()
            .any(|info| info.name == *name)
    });
    if builtin.is_none() && args.overrides != Overrides::default() {
        bail!("--path, --method, --query, --header and --body change a built-in event: use them with `--event <name>` (`cargo xtask events` lists the names), or on a function whose trigger (http, sqs, schedule in {FILE_NAME}) gives its default event");
    }
    let (payload, source) = match (&args.data, args.event.as_deref(), builtin) {
        (Some(data), _, _) => (data.clone().into_bytes(), "--data".to_owned()),
        (None, Some(name), Some(_)) => {
            let event = lambda_stage_events::build(name, &args.overrides)?;
            return Ok(serde_json::to_vec(&event)?);
        }
        (None, Some("-"), None) => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("could not read the event from stdin")?;
            (data, "the event on stdin".to_owned())
        }
        (None, Some(path), None) => {
            let data = std::fs::read(path).with_context(|| {
                format!(
                    "--event `{path}` is neither a built-in event (`cargo xtask events` lists \
                     them) nor a readable file"
                )
            })?;
            (data, format!("event file {path}"))
        }
        (None, None, _) => (b"{}".to_vec(), String::new()),
    };
    serde_json::from_slice::<serde_json::Value>(&payload)
        .with_context(|| format!("{source} is not valid JSON (Lambda only accepts JSON events)"))?;
    Ok(payload)
}
