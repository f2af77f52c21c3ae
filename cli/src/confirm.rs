//! Asking before doing something that cannot be undone: a `[y/N]` prompt on a terminal, `--yes` to skip it, and a refusal when nobody can answer.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::exit::{Exit, FAILURE};

/// Asks `question` (`[y/N]`) on stderr and reads the answer from stdin; `yes` skips the question.
///
/// Without a terminal on stdin nobody can answer: refused (exit 2) naming `--yes`. Anything but
/// `y`/`yes` is an abort (exit 1), with nothing done.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(Exit::usage(format!(
            "not confirmed: {question} Standard input is not a terminal, so nobody can answer; pass --yes to confirm"
        )));
    }
    note!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| anyhow::anyhow!("reading the answer from standard input: {e}"))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!(Exit::new(FAILURE, "aborted: nothing was done"))
    }
}
