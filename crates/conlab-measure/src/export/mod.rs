//! Turning a report into bytes, one file per format behind one function, as hyperfine's
//! `src/export/` does; and [`ExportManager`], which creates every output file *before* the
//! measurement runs, so a bad path fails in a millisecond, not after a ten-minute run.

mod csv;
mod markdown;
mod terminal;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
    #[error("writing {path}")]
    Io {
        /// The file (`-` for stdout).
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The report could not be serialised.
    #[error("serialising the report")]
    Json(#[from] serde_json::Error),
    /// More than one format was asked for on standard output, where they would run together.
    #[error("only one report can go to standard output (`-`), not {0}: write the others to files")]
    StdoutTwice(usize),
    /// Two formats were asked for in one file, where one would overwrite the other.
    #[error("two reports were asked for in {0}: give each format a file of its own")]
    SameFile(String),
    /// An empty file name.
    #[error("an export file name is empty: give a path, or `-` for standard output")]
    EmptyPath,
}

enum Sink {
    Stdout,
    File(Staged),
}

/// An export file being written, moved over its path only when the report is complete: a
/// run that fails, is interrupted or is killed leaves the earlier file as it was. On Linux
/// the staging file has no name at all (`O_TMPFILE`), so even a SIGKILL leaves nothing
/// behind; it is given one just before the rename. Only regular files are replaced so: a
/// device, a pipe or `/dev/stdout` is written in place, as any program writes to it, and a
/// symbolic link keeps pointing where it did (the file it points to is replaced).
struct Staged {
    /// The path as given, for messages.
    shown: String,
    file: File,
    /// The regular file to rename the finished one over; `None`: written in place.
    target: Option<PathBuf>,
    /// A file with other hard links: rewritten in place at the end (renaming over one name
    /// would leave the other names with the old report).
    rewrite: Option<PathBuf>,
    /// The named staging file, where unnamed ones are not available.
    named: Option<PathBuf>,
}

impl Staged {
    fn create(path: &Path) -> io::Result<Staged> {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            )),
            Ok(meta) if !meta.is_file() => Ok(Staged {
                shown,
                file: std::fs::OpenOptions::new().write(true).open(path)?,
                target: None,
                rewrite: None,
                named: None,
            }),
            Ok(meta) if std::os::unix::fs::MetadataExt::nlink(&meta) > 1 => {
                // Fail now, not after the run, if it cannot be written; the report waits in
                // an unnamed file until then.
                std::fs::OpenOptions::new().append(true).open(path)?;
                let mut staged = Staged::beside(shown, path.to_path_buf())?;
                staged.rewrite = staged.target.take();
                Ok(staged)
            }
            Ok(meta) => {
                use std::os::unix::fs::PermissionsExt;
                let real = std::fs::canonicalize(path)?;
                // Fail now, not after the run, if the file cannot be replaced.
                std::fs::OpenOptions::new().append(true).open(&real)?;
                let staged = Staged::beside(shown, real)?;
                // The new file keeps the old one's permissions.
                let mode = meta.permissions().mode() & 0o7777;
                staged
                    .file
                    .set_permissions(std::fs::Permissions::from_mode(mode))?;
                Ok(staged)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Staged::beside(shown, path.to_path_buf())
            }
            Err(e) => Err(e),
        }
    }

    /// A staging file in `target`'s directory, unnamed where the kernel allows.
    fn beside(shown: String, target: PathBuf) -> io::Result<Staged> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(file) = unnamed_file(&dir) {
            return Ok(Staged {
                shown,
                file,
                target: Some(target),
                rewrite: None,
                named: None,
            });
        }
        let named = staging_name(&target);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&named)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create a file in {} ({e})", dir.display()),
                )
            })?;
        Ok(Staged {
            shown,
            file,
            target: Some(target),
            rewrite: None,
            named: Some(named),
        })
    }

    /// Moves the finished file over its path (or just flushes one written in place).
    fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        if let Some(path) = self.rewrite.take() {
            use std::io::{Read, Seek};
            let mut bytes = Vec::new();
            let mut staged = &self.file;
            staged.seek(io::SeekFrom::Start(0))?;
            staged.read_to_end(&mut bytes)?;
            return std::fs::write(path, bytes);
        }
        let Some(target) = self.target.take() else {
            return Ok(());
        };
        let from = match self.named.take() {
            Some(named) => named,
            None => {
                let named = staging_name(&target);
                link_unnamed(&self.file, &named)?;
                named
            }
        };
        let renamed = std::fs::rename(&from, &target);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&from);
        }
        renamed
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(named) = &self.named {
            let _ = std::fs::remove_file(named);
        }
    }
}

/// `.NAME.conlab-PID.tmp` beside `path`.
fn staging_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.conlab-{}.tmp", std::process::id()))
}

/// A file with no name in `dir` (Linux `O_TMPFILE`); `None` where the kernel or the file
/// system has none.
fn unnamed_file(dir: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
}

/// Gives an unnamed file the name `to` (open(2): `linkat` through `/proc/self/fd`).
fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated strings that outlive the call; `linkat` reads
    // them and touches no other memory. Exercised by `an_interrupted_export_keeps_the_old_file`
    // and every test that writes an export file.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The export targets of one run, opened up front and written at the end.
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
    /// Prepares every file now (`-` means standard output), so that a bad path fails before
    /// the measurement runs. Existing files are only replaced by [`write`](Self::write).
    pub fn create(targets: &[(Format, String)]) -> Result<Self, ExportError> {
        let to_stdout = targets.iter().filter(|(_, p)| p == "-").count();
        if to_stdout > 1 {
            return Err(ExportError::StdoutTwice(to_stdout));
        }
        if targets.iter().any(|(_, p)| p.is_empty()) {
            return Err(ExportError::EmptyPath);
        }
        let mut seen = Vec::new();
        for (_, path) in targets.iter().filter(|(_, p)| p != "-") {
            let same = std::fs::canonicalize(path)
                .or_else(|_| std::path::absolute(path))
                .unwrap_or_else(|_| PathBuf::from(path));
            if seen.contains(&same) {
                return Err(ExportError::SameFile(path.clone()));
            }
            seen.push(same);
        }
        let targets = targets
            .iter()
            .map(|(format, path)| {
                let sink = if path == "-" {
                    Sink::Stdout
                } else {
                    Sink::File(Staged::create(Path::new(path)).map_err(|source| {
                        ExportError::Io {
                            path: path.clone(),
                            source,
                        }
                    })?)
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

    /// Writes `report` to every target; a file replaces its earlier version only once it is
    /// complete.
    pub fn write<R: Serialize + Tabular>(self, report: &R) -> Result<(), ExportError> {
        for (format, sink) in self.targets {
            let bytes = render(report, format, false)?;
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
                Sink::File(mut staged) => {
                    let path = staged.shown.clone();
                    staged
                        .file
                        .write_all(&bytes)
                        .and_then(|()| staged.commit())
                        .map_err(|source| ExportError::Io { path, source })?
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conlab-export-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_interrupted_export_keeps_the_old_file() {
        let dir = scratch("keep");
        let path = dir.join("out.json");
        std::fs::write(&path, "old").unwrap();
        let exports = ExportManager::create(&[(Format::Json, path.display().to_string())]).unwrap();
        drop(exports); // the run failed: nothing is written
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        let exports = ExportManager::create(&[(Format::Json, path.display().to_string())]).unwrap();
        exports.write(&sample()).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("conlab.sample/1")
        );
        // Nothing is left beside it, named or not.
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_named_fallback_stages_beside_the_file_and_cleans_up() {
        let dir = scratch("named");
        let path = dir.join("out.csv");
        let named = staging_name(&path);
        let file = std::fs::File::create(&named).unwrap();
        let staged = Staged {
            shown: path.display().to_string(),
            file,
            target: Some(path.clone()),
            rewrite: None,
            named: Some(named.clone()),
        };
        drop(staged);
        assert!(!named.exists() && !path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_is_written_in_place_a_symlink_kept_and_a_mode_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("special");
        // /dev/null is a device: written to, never replaced.
        let exports = ExportManager::create(&[(Format::Json, "/dev/null".into())]).unwrap();
        exports.write(&sample()).unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        // A link keeps pointing at its target, which gets the report and keeps its mode.
        let target = dir.join("target.json");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let exports = ExportManager::create(&[(Format::Json, link.display().to_string())]).unwrap();
        exports.write(&sample()).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&target)
                .unwrap()
                .contains("conlab.sample/1")
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A device that refuses the bytes is an error, not a silent success.
        if std::path::Path::new("/dev/full").exists() {
            let exports = ExportManager::create(&[(Format::Json, "/dev/full".into())]).unwrap();
            assert!(exports.write(&sample()).is_err());
            assert!(!std::fs::metadata("/dev/full").unwrap().is_file());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hard_linked_file_gets_the_report_under_every_name() {
        let dir = scratch("hardlink");
        let (one, two) = (dir.join("one.json"), dir.join("two.json"));
        std::fs::write(&one, "ORIG").unwrap();
        std::fs::hard_link(&one, &two).unwrap();
        let exports = ExportManager::create(&[(Format::Json, one.display().to_string())]).unwrap();
        exports.write(&sample()).unwrap();
        for name in [&one, &two] {
            let text = std::fs::read_to_string(name).unwrap();
            assert!(
                text.contains("conlab.sample/1"),
                "{}: {text}",
                name.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_file_twice_or_an_empty_name_is_refused() {
        let dir = scratch("twice");
        let path = dir.join("same.out").display().to_string();
        let err = ExportManager::create(&[(Format::Json, path.clone()), (Format::Csv, path)])
            .unwrap_err();
        assert!(matches!(err, ExportError::SameFile(_)), "{err}");
        let err = ExportManager::create(&[(Format::Json, String::new())]).unwrap_err();
        assert!(matches!(err, ExportError::EmptyPath), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_reports_on_stdout_or_a_directory_are_refused() {
        let err = ExportManager::create(&[(Format::Json, "-".into()), (Format::Csv, "-".into())])
            .unwrap_err();
        assert!(matches!(err, ExportError::StdoutTwice(2)), "{err}");
        let dir = scratch("dir");
        let err = ExportManager::create(&[(Format::Json, dir.display().to_string())]).unwrap_err();
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_path_fails_before_anything_runs() {
        let err =
            ExportManager::create(&[(Format::Json, "/nonexistent-dir/x.json".into())]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.json"), "{err}");
    }
}
