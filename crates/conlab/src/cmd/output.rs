//! What the commands share: the `--json/--csv/--markdown FILE` flags, whether the terminal
//! gets colour, printing a report, and reading durations.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use conlab_measure::export::{self, ExportManager, Format, Tabular};

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
    /// Opens every export file now, so a bad path fails before the measurement runs.
    pub(crate) fn open(&self) -> Result<ExportManager> {
        let targets: Vec<(Format, String)> = [
            (Format::Json, &self.json),
            (Format::Csv, &self.csv),
            (Format::Markdown, &self.markdown),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.clone().map(|p| (f, p)))
        .collect();
        ExportManager::create(&targets).context("opening the export files")
    }
}

/// An export manager for `--json FILE` alone (commands that print their own text).
pub(crate) fn json_only(path: Option<&String>) -> Result<ExportManager> {
    let targets: Vec<(Format, String)> = path
        .map(|p| (Format::Json, p.clone()))
        .into_iter()
        .collect();
    ExportManager::create(&targets).context("opening the JSON file")
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
        .map_err(|e| anyhow::anyhow!("bad duration `{text}`: {e}"))
}

/// Colour on standard output: only on a terminal, never with `NO_COLOR` set.
pub(crate) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints `report` as a terminal table (unless an export took stdout) and writes the exports.
pub(crate) fn emit<R: serde::Serialize + Tabular>(
    report: &R,
    exports: &mut ExportManager,
) -> Result<()> {
    if !exports.uses_stdout() {
        let table = export::render(report, Format::Terminal, color())?;
        std::io::stdout().lock().write_all(&table)?;
    }
    exports.write(report)?;
    Ok(())
}
