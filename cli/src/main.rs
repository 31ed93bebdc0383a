//! `keygen`: the operators' command line for Heratio API keys and AI tokens.
//!
//! A thin layer over `heratio-keys-core`: it parses arguments, calls the
//! library, renders tables or JSON and maps errors to documented exit codes
//! (see `docs/cli.md` and `keygen --help`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use heratio_keys_core::ErrorKind;

mod args;
mod commands;
mod generate;
mod os;
mod output;

/// Exit codes: a documented contract.
pub mod exit {
    /// Success; `*:validate`: valid.
    pub const OK: u8 = 0;
    /// `*:validate`: any other status; otherwise the store refused the
    /// request (unknown id, already revoked, deactivated client).
    pub const REFUSED: u8 = 1;
    /// Bad arguments or input, malformed DSN.
    pub const USAGE: u8 = 2;
    /// The store cannot be reached.
    pub const UNREACHABLE: u8 = 3;
    /// The store was reached but cannot be used (schema, database error).
    pub const STORE: u8 = 4;
    /// A bug.
    pub const INTERNAL: u8 = 70;
}

/// A failure to report: one line on stderr and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

/// The exit code for a library error kind.
pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidDsn | ErrorKind::InvalidInput => exit::USAGE,
        ErrorKind::NotFound | ErrorKind::Conflict => exit::REFUSED,
        ErrorKind::Unavailable => exit::UNREACHABLE,
        ErrorKind::Store | ErrorKind::SchemaOutdated | ErrorKind::SchemaTooNew => exit::STORE,
        _ => exit::INTERNAL,
    }
}

impl From<heratio_keys_core::Error> for Failure {
    fn from(e: heratio_keys_core::Error) -> Self {
        Failure {
            code: code_for(e.kind()),
            // The library's messages never carry a key or a password.
            message: e.message().to_owned(),
        }
    }
}

/// What a command produced: text for stdout and an exit code.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    /// Printed on stderr after stdout (e.g. the "not shown again" warning).
    pub notice: Option<String>,
    pub code: u8,
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error: {}{at} (this is a bug in keygen)",
            one_line(&what)
        );
    }));
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version exit 0, usage errors 2, as clap renders them.
        Err(e) => e.exit(),
    };
    let result = std::panic::catch_unwind(move || commands::run(cli));
    let code = match result {
        Ok(Ok(outcome)) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(outcome.stdout.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => {
                    if let Some(notice) = &outcome.notice {
                        eprintln!("{notice}");
                    }
                    outcome.code
                }
                // A closed pipe (`keygen client:list | head -1`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => outcome.code,
                Err(e) => {
                    eprintln!("error: cannot write to standard output: {e}");
                    exit::INTERNAL
                }
            }
        }
        Ok(Err(failure)) => {
            eprintln!("error: {}", one_line(&failure.message));
            failure.code
        }
        Err(_) => exit::INTERNAL,
    };
    ExitCode::from(code)
}
