//! What the commands share: the `--json/--csv/--markdown FILE` flags, whether the terminal
//! gets colour, printing a report, reading durations, and telling a wrong command line
//! (exit status 2) from a run that failed (1).

use std::io::{IsTerminal, Write};
use std::process::Command;

use anyhow::{Context, Result};
use conlab_http::ServerModel;
use conlab_lecture::servers::ProcessLauncher;
use conlab_measure::export::{self, ExportError, ExportManager, Format, Tabular};

/// hyperfine-style export flags; `-` writes to standard output instead of the table.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ExportArgs {
    /// Write the report as JSON to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<String>,
    /// Write the report as CSV to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<String>,
    /// Write the report as a Markdown table to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<String>,
}

impl ExportArgs {
    /// Prepares every export file now, so a bad path fails before the measurement runs.
    pub(crate) fn open(&self) -> Result<ExportManager> {
        let targets: Vec<(Format, String)> = [
            (Format::Json, &self.json),
            (Format::Csv, &self.csv),
            (Format::Markdown, &self.markdown),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.clone().map(|p| (f, p)))
        .collect();
        create(&targets)
    }
}

/// An export manager for `--json FILE` alone (commands that print their own text).
pub(crate) fn json_only(path: Option<&String>) -> Result<ExportManager> {
    let targets: Vec<(Format, String)> = path
        .map(|p| (Format::Json, p.clone()))
        .into_iter()
        .collect();
    create(&targets)
}

fn create(targets: &[(Format, String)]) -> Result<ExportManager> {
    ExportManager::create(targets).map_err(|e| match e {
        ExportError::StdoutTwice(_) | ExportError::SameFile(_) | ExportError::EmptyPath => {
            usage(e.to_string())
        }
        // Found before anything ran: the command line names a file that cannot be written.
        other => usage(format!(
            "{:#}",
            anyhow::Error::new(other).context("preparing the export files")
        )),
    })
}

/// The page `--html FILE` asks for, opened before anything runs, so that a path that
/// cannot be written is refused (exit 2) before the measurement, not after.
#[derive(Debug)]
pub(crate) struct HtmlFile {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl HtmlFile {
    /// Opens `path`, if given, for the page.
    pub(crate) fn open(path: Option<&std::path::PathBuf>) -> Result<Option<HtmlFile>> {
        path.map(|path| {
            std::fs::File::create(path)
                .map(|file| HtmlFile {
                    file,
                    path: path.clone(),
                })
                .map_err(|e| usage(format!("--html {}: {e}", path.display())))
        })
        .transpose()
    }

    /// Writes the page.
    pub(crate) fn write(mut self, html: &str) -> Result<()> {
        self.file
            .write_all(html.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// A command line that cannot run: `main` prints it and exits 2, as clap's own errors do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(String);

/// A [`UsageError`] as an `anyhow::Error`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Whether `err` is the command line's fault (exit 2) rather than the run's (exit 1). A
/// command whose library checks its settings turns those errors into a [`UsageError`] itself
/// (a setting the tour chose is not the user's mistake).
pub(crate) fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<UsageError>().is_some()
            || matches!(
                e.downcast_ref::<conlab_lecture::Error>(),
                Some(conlab_lecture::Error::Workload(_))
            )
            || e.downcast_ref::<conlab_work::SpecError>().is_some()
            || e.downcast_ref::<conlab_http::load::UrlError>().is_some()
    })
}

/// A duration as GNU parallel and wrk take them: plain seconds (`30`, `0.5`) or with a unit
/// (`200ms`, `2m`).
pub(crate) fn duration(text: &str) -> Result<std::time::Duration> {
    if let Ok(secs) = text.trim().parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(std::time::Duration::from_secs_f64(secs));
    }
    conlab_work::workload::parse_duration(text)
        .map_err(|e| usage(format!("bad duration `{text}`: {e}")))
}

/// Starts this executable as `conlab serve --ready-json` on a free loopback port: the
/// servers of the tour's web experiment and of `bench http`.
pub(crate) fn serve_launcher()
-> Result<ProcessLauncher<impl Fn(ServerModel, Option<usize>) -> Command>> {
    let program =
        std::env::current_exe().context("finding this executable to start the servers")?;
    Ok(ProcessLauncher::new(move |model: ServerModel, workers| {
        let mut command = Command::new(&program);
        command.args(["serve", "--ready-json", "--bind", "127.0.0.1:0"]);
        command.args(["--model", model.name()]);
        if let Some(n) = workers {
            command.args(["--workers", &n.to_string()]);
        }
        command
    }))
}

/// Colour on standard output: only on a terminal, never with `NO_COLOR` set.
pub(crate) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints `report` as a terminal table (unless an export took stdout) and writes the exports.
pub(crate) fn emit<R: serde::Serialize + Tabular>(
    report: &R,
    exports: ExportManager,
) -> Result<()> {
    if !exports.uses_stdout() {
        let table = export::render(report, Format::Terminal, color())?;
        std::io::stdout().lock().write_all(&table)?;
    }
    exports.write(report).context("writing the report")?;
    Ok(())
}
