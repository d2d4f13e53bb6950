//! The `routeproof` command line: `explain`, `check` (and the data-path commands).
//!
//! This is the only place that uses `anyhow`: library errors are typed.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("routeproof: error: {}", error_chain(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text
/// already ends the message before it (library errors print their source, as
/// in `cannot read PATH: No such file or directory`, and also return it from
/// `source()`).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&format!(": {text}")) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct ReadError {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(ReadError {
            path: "/x".into(),
            source: io,
        })
        .context("loading manifests");
        assert_eq!(
            error_chain(&err),
            "loading manifests: cannot read /x: no such file"
        );
    }

    #[test]
    fn a_cause_only_inside_the_message_is_still_printed() {
        let err = anyhow::anyhow!("timed out").context("connect: timed out while resolving");
        assert_eq!(
            error_chain(&err),
            "connect: timed out while resolving: timed out"
        );
    }

    #[test]
    fn distinct_causes_are_all_printed() {
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&err), "outer: inner");
    }
}
