//! `--results NAME`: each job's output saved in files instead of printed, laid out as GNU
//! parallel 20221122 lays it out (its `results_out`, `args_as_dirname` and `print_csv`):
//!
//! - a plain name is a directory: `NAME/1/VALUE1/2/VALUE2/{seq,stdout,stderr}` (a column's
//!   `--header` name instead of its number; in values `\` `TAB` `NUL` `/` are written `\\`
//!   `\t` `\0` `\_`);
//! - a name with replacement strings names each job's files: `NAME`, `NAME.err`, `NAME.seq`
//!   (a name ending in `/` is a directory holding `seq`, `stdout`, `stderr`);
//! - a name ending in `.csv` or `.tsv` is one table of every job: the joblog's columns, the
//!   values `V1..Vn` (or the header's names), then its stdout and stderr (`-.csv` is stdout).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::template::{Template, Value};

/// Where `--results` puts the output.
#[derive(Debug, Clone)]
pub enum Results {
    /// A directory tree by argument.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Names of the columns (`--header`); numbers without.
        names: Vec<Value>,
        /// Values per input record (the number of sources), to restart the column numbers for
        /// each record of an `-n` group.
        width: usize,
    },
    /// A file name per job, from a template.
    Files(Template),
    /// One CSV (`,`) or TSV (tab) table.
    Table {
        /// The file; `-` for standard output.
        path: PathBuf,
        /// `,` or tab.
        separator: u8,
        /// Names of the value columns (`--header`); `V1..Vn` without.
        names: Vec<Value>,
    },
}

/// One finished job, as `--results` records it.
#[derive(Debug)]
pub struct Record<'a> {
    /// Sequence number.
    pub seq: u64,
    /// The job's values.
    pub args: &'a [Value],
    /// Its stdout and stderr.
    pub stdout: &'a [u8],
    /// Its stderr.
    pub stderr: &'a [u8],
    /// The joblog's line for it, without the command (`Seq` to `Signal`, tab-separated).
    pub log_fields: Vec<String>,
    /// Its command line.
    pub command: &'a [u8],
}

impl Results {
    /// What `name` asks for: a table for `.csv`/`.tsv`, files per job when it holds
    /// replacement strings, else a directory.
    pub fn from_name(name: &Path, template: Template, names: Vec<Value>, width: usize) -> Results {
        let text = name.as_os_str().as_encoded_bytes().to_ascii_lowercase();
        if text.ends_with(b".csv") || text.ends_with(b".tsv") {
            let separator = if text.ends_with(b".csv") { b',' } else { b'\t' };
            let path = if text == b"-.csv" || text == b"-.tsv" {
                PathBuf::from("-")
            } else {
                name.to_path_buf()
            };
            return Results::Table {
                path,
                separator,
                names,
            };
        }
        if template.has_replacements() {
            Results::Files(template)
        } else {
            Results::Dir {
                dir: name.to_path_buf(),
                names,
                width: width.max(1),
            }
        }
    }

    /// The directory that must be writable before any job runs (none for a table on
    /// stdout; the parent of per-job files is made per job).
    pub fn root(&self) -> Option<&Path> {
        match self {
            Results::Dir { dir, .. } => Some(dir),
            Results::Table { path, .. } if path.as_os_str() != "-" => {
                path.parent().filter(|p| !p.as_os_str().is_empty())
            }
            _ => None,
        }
    }

    /// Saves one job's files (not for tables: see [`Results::table_row`]).
    pub fn save(&self, r: &Record<'_>, slot: usize) -> io::Result<()> {
        let (out, err, seq) = match self {
            Results::Table { .. } => return Ok(()),
            Results::Dir { dir, names, width } => {
                let mut path = dir.clone();
                for record in r.args.chunks(*width) {
                    for (i, value) in record.iter().enumerate() {
                        match names.get(i) {
                            Some(name) => path.push(
                                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name),
                            ),
                            None => path.push((i + 1).to_string()),
                        }
                        path.push(
                            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                                &dirname_of(value),
                            ),
                        );
                    }
                }
                (path.join("stdout"), path.join("stderr"), path.join("seq"))
            }
            Results::Files(template) => {
                let name = template.line(Some(r.args), r.seq, slot);
                let path = PathBuf::from(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name),
                );
                if name.ends_with(b"/") {
                    (path.join("stdout"), path.join("stderr"), path.join("seq"))
                } else {
                    let with = |suffix: &str| {
                        let mut p = path.clone().into_os_string();
                        p.push(suffix);
                        PathBuf::from(p)
                    };
                    (path.clone(), with(".err"), with(".seq"))
                }
            }
        };
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(seq, r.seq.to_string())?;
        std::fs::write(out, r.stdout)?;
        std::fs::write(err, r.stderr)
    }

    /// A table's header line (with `first` giving the number of values), then its row.
    pub fn table_row(&self, r: &Record<'_>, header: bool) -> Vec<u8> {
        let Results::Table {
            separator, names, ..
        } = self
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if header {
            let mut columns: Vec<Vec<u8>> = [
                "Seq",
                "Host",
                "Starttime",
                "JobRuntime",
                "Send",
                "Receive",
                "Exitval",
                "Signal",
                "Command",
            ]
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
            for i in 0..r.args.len() {
                columns.push(match names.get(i) {
                    Some(name) => name.clone(),
                    None => format!("V{}", i + 1).into_bytes(),
                });
            }
            columns.push(b"Stdout".to_vec());
            columns.push(b"Stderr".to_vec());
            out.extend(join(&columns, *separator));
            out.push(b'\n');
        }
        let mut fields: Vec<Vec<u8>> = r.log_fields.iter().map(|f| f.as_bytes().to_vec()).collect();
        fields.push(r.command.to_vec());
        fields.extend(r.args.iter().cloned());
        fields.push(r.stdout.to_vec());
        fields.push(r.stderr.to_vec());
        out.extend(join(&fields, *separator));
        out.push(b'\n');
        out
    }
}

/// GNU's `combine_ref`: a field holding a quote, white space, the separator or NUL is quoted,
/// its quotes doubled.
fn join(fields: &[Vec<u8>], separator: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        let quoted = field.iter().any(|&b| {
            b == b'"' || b == separator || b == 0 || b.is_ascii_whitespace() || b == 0x0b
        });
        if quoted {
            out.push(b'"');
            for &b in field {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(field);
        }
    }
    out
}

/// A value as a directory name: `\` `TAB` `NUL` `/` written `\\` `\t` `\0` `\_`.
fn dirname_of(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\0"),
            b'/' => out.extend_from_slice(b"\\_"),
            other => out.push(other),
        }
    }
    out
}

/// Writes `data` to a table on `path` (appending), creating it when it is new.
pub fn append(path: &Path, data: &[u8]) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_safe_directory_names_and_fields_are_quoted_as_gnu_quotes_them() {
        assert_eq!(dirname_of(b"a/b\\c\td"), b"a\\_b\\\\c\\td");
        assert_eq!(
            join(
                &[
                    b"1".to_vec(),
                    b"echo a".to_vec(),
                    b"x\"y".to_vec(),
                    b"a\n".to_vec()
                ],
                b','
            ),
            b"1,\"echo a\",\"x\"\"y\",\"a\n\"".to_vec()
        );
    }
}
