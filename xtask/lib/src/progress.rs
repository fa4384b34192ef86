//! Progress of the long steps of `build` and `deploy` (compiling a function, updating it in
//! AWS): a spinner on a terminal, and one plain line per step otherwise, as cargo prints
//! `Compiling x` in CI logs. Both go to stderr, so stdout keeps only the command's result.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A step in progress. Dropping it ends it (and clears its spinner).
pub struct Step {
    bar: ProgressBar,
}

/// Starts a step, `verb` and what it acts on (`Building`, `hello (arm64, release)`): a spinner
/// when stderr is a terminal, else the line `    Building hello (arm64, release)` on stderr.
pub fn step(verb: &str, subject: &str) -> Step {
    if std::io::stderr().is_terminal() {
        Step::turning(spinner(verb, subject))
    } else {
        Step::printed(verb, subject)
    }
}

/// Steps that run at the same time (functions deployed concurrently): on a terminal, one
/// spinner line each, stacked in the order the steps started; otherwise one line per step, as
/// [`step`] prints it.
pub struct Steps {
    /// `None` without a terminal.
    lines: Option<MultiProgress>,
}

impl Steps {
    pub fn new() -> Steps {
        Steps {
            lines: std::io::stderr().is_terminal().then(MultiProgress::new),
        }
    }

    /// Starts one of the steps; see [`step`].
    pub fn step(&self, verb: &str, subject: &str) -> Step {
        match &self.lines {
            Some(lines) => Step::turning(lines.add(spinner(verb, subject))),
            None => Step::printed(verb, subject),
        }
    }
}

impl Default for Steps {
    fn default() -> Self {
        Steps::new()
    }
}

/// A step that shows nothing (a command that must stay quiet, like `invoke`).
pub fn silent() -> Step {
    Step {
        bar: ProgressBar::hidden(),
    }
}

impl Step {
    /// A step shown by `bar`, turning from now on.
    fn turning(bar: ProgressBar) -> Step {
        bar.enable_steady_tick(TICK);
        Step { bar }
    }

    /// A step shown as one line, cargo's way, with nothing to clear afterwards.
    fn printed(verb: &str, subject: &str) -> Step {
        eprintln!("{}", line(verb, subject));
        silent()
    }

    /// Runs `print` with the spinner cleared, so what it prints is not drawn over.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        self.bar.suspend(print)
    }

    /// Sets the detail a spinner shows (`Compiling serde v1.0`), from any thread (the one
    /// reading cargo's stderr); not printed without a terminal.
    pub fn detail_setter(&self) -> impl Fn(String) + Send + 'static {
        let bar = self.bar.clone();
        move |message| bar.set_message(message)
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// cargo's status layout: the verb right-aligned in 12 columns.
fn line(verb: &str, subject: &str) -> String {
    format!("{verb:>12} {subject}")
}

/// How often a spinner turns.
const TICK: Duration = Duration::from_millis(120);

/// A spinner not yet turning: it starts once it is where it is drawn (a [`MultiProgress`]).
fn spinner(verb: &str, subject: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner().with_prefix(line(verb, subject));
    spinner.set_style(
        ProgressStyle::with_template("{prefix:.bold} {spinner} [{elapsed}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_laid_out_as_cargo_does() {
        assert_eq!(
            line("Building", "hello (arm64, release)"),
            "    Building hello (arm64, release)"
        );
        assert_eq!(line("Updating", "hello"), "    Updating hello");
    }
}
