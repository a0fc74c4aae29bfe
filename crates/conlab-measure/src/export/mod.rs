//! Turning a report into bytes, one file per format behind one function, as hyperfine's
//! `src/export/` does; and [`ExportManager`], which creates every output file *before* the
//! measurement runs, so a bad path fails in a millisecond, not after a ten-minute run.

mod csv;
mod markdown;
mod terminal;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::report::Table;

/// A report that can be shown as tables.
pub trait Tabular {
    /// The report's tables, in the order they are shown.
    fn tables(&self) -> Vec<Table>;
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal (colour only when asked).
    Terminal,
    /// The report's serde shape, pretty-printed.
    Json,
    /// Comma-separated values, raw numbers, one header line per table.
    Csv,
    /// GitHub-flavoured Markdown tables.
    Markdown,
}

/// Renders `report` in `format`. `color` only affects [`Format::Terminal`].
pub fn render<R: Serialize + Tabular>(
    report: &R,
    format: Format,
    color: bool,
) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Json => {
            let mut bytes = serde_json::to_vec_pretty(report)?;
            bytes.push(b'\n');
            bytes
        }
        Format::Csv => csv::render(&report.tables()).into_bytes(),
        Format::Markdown => markdown::render(&report.tables()).into_bytes(),
        Format::Terminal => terminal::render(&report.tables(), color).into_bytes(),
    })
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output file could not be created or written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file (`-` for stdout).
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The report could not be serialised.
    #[error("serialising the report: {0}")]
    Json(#[from] serde_json::Error),
}

enum Sink {
    Stdout,
    File(PathBuf, File),
}

/// The export targets of one run, opened up front.
pub struct ExportManager {
    targets: Vec<(Format, Sink)>,
}

impl std::fmt::Debug for ExportManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportManager")
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl ExportManager {
    /// Creates (truncates) every file now; `-` means standard output.
    pub fn create(targets: &[(Format, String)]) -> Result<Self, ExportError> {
        let targets = targets
            .iter()
            .map(|(format, path)| {
                let sink = if path == "-" {
                    Sink::Stdout
                } else {
                    let file = File::create(path).map_err(|source| ExportError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    Sink::File(PathBuf::from(path), file)
                };
                Ok((*format, sink))
            })
            .collect::<Result<_, ExportError>>()?;
        Ok(ExportManager { targets })
    }

    /// True when some target is standard output (then the terminal table is not printed).
    pub fn uses_stdout(&self) -> bool {
        self.targets.iter().any(|(_, s)| matches!(s, Sink::Stdout))
    }

    /// Writes `report` to every target.
    pub fn write<R: Serialize + Tabular>(&mut self, report: &R) -> Result<(), ExportError> {
        for (format, sink) in &mut self.targets {
            let bytes = render(report, *format, false)?;
            match sink {
                Sink::Stdout => {
                    io::stdout()
                        .lock()
                        .write_all(&bytes)
                        .map_err(|source| ExportError::Io {
                            path: "-".into(),
                            source,
                        })?
                }
                Sink::File(path, file) => {
                    file.write_all(&bytes).map_err(|source| ExportError::Io {
                        path: path.display().to_string(),
                        source,
                    })?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Cell, Column, Tone, fixed, seconds};

    #[derive(Serialize)]
    struct Sample {
        schema: &'static str,
        rows: Vec<(String, f64)>,
    }

    impl Tabular for Sample {
        fn tables(&self) -> Vec<Table> {
            vec![Table {
                title: Some("Sample, with \"quotes\", commas | pipes".into()),
                columns: vec![
                    Column::text("model"),
                    Column::number("wall_s"),
                    Column::number("speedup"),
                ],
                rows: self
                    .rows
                    .iter()
                    .map(|(m, w)| {
                        vec![
                            Cell::text(m.clone()),
                            seconds(*w),
                            fixed(0.2 / w, 2, "x").tone(if *w < 0.15 {
                                Tone::Good
                            } else {
                                Tone::Plain
                            }),
                        ]
                    })
                    .collect(),
                notes: vec!["verdict: threads, a, b".into()],
            }]
        }
    }

    fn sample() -> Sample {
        Sample {
            schema: "conlab.sample/1",
            rows: vec![("serial".into(), 0.2), ("threads, 2".into(), 0.104)],
        }
    }

    fn text(format: Format, color: bool) -> String {
        String::from_utf8(render(&sample(), format, color).unwrap()).unwrap()
    }

    #[test]
    fn terminal_golden() {
        insta::assert_snapshot!(text(Format::Terminal, false));
    }

    #[test]
    fn terminal_colour_only_when_asked() {
        assert!(!text(Format::Terminal, false).contains('\x1b'));
        assert!(text(Format::Terminal, true).contains("\x1b[32m"));
    }

    #[test]
    fn csv_golden() {
        insta::assert_snapshot!(text(Format::Csv, false));
    }

    #[test]
    fn markdown_golden() {
        insta::assert_snapshot!(text(Format::Markdown, false));
    }

    #[test]
    fn json_golden() {
        insta::assert_snapshot!(text(Format::Json, false));
    }

    #[test]
    fn a_bad_path_fails_before_anything_runs() {
        let err =
            ExportManager::create(&[(Format::Json, "/nonexistent-dir/x.json".into())]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.json"), "{err}");
    }
}
