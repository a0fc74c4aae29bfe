//! Where a job's arguments come from: `::: a b c`, `:::: FILE`, linked sources (`:::+`,
//! `::::+`), standard input when no source is given, NUL-separated input (`-0`) and columns
//! (`--colsep REGEX`).
//!
//! Several sources give the cross product, the first one varying slowest (`::: a b ::: 1 2`
//! gives `a 1`, `a 2`, `b 1`, `b 2`); a linked source pairs up with the one before it instead
//! (`::: a b :::+ 1 2` gives `a 1`, `b 2`, stopping at the shorter). The first group is
//! streamed, so a million lines on standard input are never held in memory; the other groups
//! are read up front (a product needs them again and again).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use regex::Regex;

/// One input source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `::: a b c`.
    Args(Vec<String>),
    /// `:::: FILE`, one value per line (`-` is standard input).
    File(PathBuf),
}

/// A source and whether it is linked to the one before it (`:::+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The values.
    pub source: Source,
    /// Paired with the previous source rather than multiplied with it.
    pub linked: bool,
}

/// How values are read.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Values end with NUL instead of newline (`-0`, for `find -print0`).
    pub null: bool,
    /// Split each value into columns (`{1}`, `{2}`, ...).
    pub colsep: Option<Regex>,
}

/// Why the inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// An input file could not be opened or read.
    #[error("reading input {path}")]
    Read {
        /// The file (`-` for standard input).
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// `:::+` with nothing before it.
    #[error("`:::+` and `::::+` link to the source before them, and there is none")]
    LinkWithoutSource,
    /// `::::` with no file after it.
    #[error("`{0}` needs a file name after it")]
    MissingFile(String),
}

/// Splits GNU parallel's `COMMAND ::: a b :::: FILE ...` into the command and its sources;
/// `arg_files` (`-a FILE`) come first, as GNU parallel reads them.
pub fn split_command_line(
    words: &[String],
    arg_files: &[PathBuf],
) -> Result<(Vec<String>, Vec<SourceSpec>), InputError> {
    let is_marker = |w: &str| matches!(w, ":::" | "::::" | ":::+" | "::::+");
    let first = words
        .iter()
        .position(|w| is_marker(w))
        .unwrap_or(words.len());
    let command = words[..first].to_vec();
    let mut sources: Vec<SourceSpec> = arg_files
        .iter()
        .map(|f| SourceSpec {
            source: Source::File(f.clone()),
            linked: false,
        })
        .collect();
    let mut i = first;
    while i < words.len() {
        let marker = words[i].as_str();
        let end = words[i + 1..]
            .iter()
            .position(|w| is_marker(w))
            .map_or(words.len(), |p| i + 1 + p);
        let values = &words[i + 1..end];
        let linked = marker.ends_with('+');
        if marker.starts_with("::::") {
            if values.is_empty() {
                return Err(InputError::MissingFile(marker.to_string()));
            }
            for (k, file) in values.iter().enumerate() {
                sources.push(SourceSpec {
                    source: Source::File(file.into()),
                    linked: linked && k == 0,
                });
            }
        } else {
            sources.push(SourceSpec {
                source: Source::Args(values.to_vec()),
                linked,
            });
        }
        i = end;
    }
    Ok((command, sources))
}

/// One job's arguments, or a read error that stops the run.
pub type Row = Result<Vec<String>, InputError>;

type Values = Box<dyn Iterator<Item = Result<String, InputError>> + Send>;

fn open(source: &Source, null: bool) -> Result<Values, InputError> {
    match source {
        Source::Args(values) => Ok(Box::new(values.clone().into_iter().map(Ok))),
        Source::File(path) => {
            let name = path.display().to_string();
            let reader: Box<dyn BufRead + Send> = if name == "-" {
                Box::new(BufReader::new(io::stdin()))
            } else {
                let file = File::open(path).map_err(|source| InputError::Read {
                    path: name.clone(),
                    source,
                })?;
                Box::new(BufReader::with_capacity(64 * 1024, file))
            };
            Ok(lines(reader, null, name))
        }
    }
}

fn lines(reader: Box<dyn BufRead + Send>, null: bool, name: String) -> Values {
    let end = if null { 0 } else { b'\n' };
    Box::new(reader.split(end).map(move |item| {
        item.map(|mut bytes| {
            if !null && bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .map_err(|source| InputError::Read {
            path: name.clone(),
            source,
        })
    }))
}

/// The rows of one group of linked sources, zipped.
fn zip(mut sources: Vec<Values>) -> Box<dyn Iterator<Item = Row> + Send> {
    Box::new(std::iter::from_fn(move || {
        let mut row = Vec::with_capacity(sources.len());
        for s in &mut sources {
            match s.next()? {
                Ok(v) => row.push(v),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(row))
    }))
}

/// Every job's arguments, in order. No specs: standard input, one value per line.
pub fn rows(
    specs: &[SourceSpec],
    options: &InputOptions,
) -> Result<Box<dyn Iterator<Item = Row> + Send>, InputError> {
    let stdin = [SourceSpec {
        source: Source::File(PathBuf::from("-")),
        linked: false,
    }];
    let specs = if specs.is_empty() { &stdin[..] } else { specs };
    if specs[0].linked {
        return Err(InputError::LinkWithoutSource);
    }
    let mut groups: Vec<Vec<Values>> = Vec::new();
    for spec in specs {
        let values = open(&spec.source, options.null)?;
        match groups.last_mut() {
            Some(group) if spec.linked => group.push(values),
            _ => groups.push(vec![values]),
        }
    }
    let mut groups = groups.into_iter();
    let first = zip(groups.next().unwrap_or_default());
    // The other groups are needed once per row of the first: read them now.
    let rest: Vec<Vec<Vec<String>>> = groups
        .map(|g| zip(g).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    let colsep = options.colsep.clone();
    let product = first.flat_map(move |head| -> Box<dyn Iterator<Item = Row> + Send> {
        match head {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok(head) => Box::new(product(head, rest.clone()).map(Ok)),
        }
    });
    Ok(match colsep {
        None => Box::new(product),
        Some(re) => Box::new(product.map(move |row| {
            row.map(|values| {
                values
                    .iter()
                    .flat_map(|v| re.split(v).map(str::to_string))
                    .collect()
            })
        })),
    })
}

/// `head` followed by every combination of one row from each of `rest`, first varying
/// slowest.
fn product(
    head: Vec<String>,
    rest: Vec<Vec<Vec<String>>>,
) -> impl Iterator<Item = Vec<String>> + Send {
    let total: usize = rest.iter().map(Vec::len).product();
    (0..total).map(move |mut k| {
        let mut indices = vec![0; rest.len()];
        for (i, group) in rest.iter().enumerate().rev() {
            indices[i] = k % group.len();
            k /= group.len();
        }
        let mut row = head.clone();
        for (group, &i) in rest.iter().zip(&indices) {
            row.extend(group[i].iter().cloned());
        }
        row
    })
}

/// `-n N`: every N rows become one job's arguments (the last job may get fewer), as
/// `xargs -n` and `parallel -n` do.
pub fn group(
    rows: Box<dyn Iterator<Item = Row> + Send>,
    n: usize,
) -> Box<dyn Iterator<Item = Row> + Send> {
    if n <= 1 {
        return rows;
    }
    let mut rows = rows.peekable();
    Box::new(std::iter::from_fn(move || {
        rows.peek()?;
        let mut values = Vec::new();
        for row in rows.by_ref().take(n) {
            match row {
                Ok(v) => values.extend(v),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(values))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_command_and_its_sources_split_at_the_markers() {
        let (command, sources) =
            split_command_line(&words("gzip -9 {} ::: a b :::+ 1 2 :::: f"), &[]).unwrap();
        assert_eq!(command, words("gzip -9 {}"));
        assert_eq!(sources.len(), 3);
        assert!(sources[1].linked && !sources[2].linked);
        assert_eq!(sources[2].source, Source::File("f".into()));
        assert!(split_command_line(&words("echo ::::"), &[]).is_err());
    }

    fn args(values: &[&str], linked: bool) -> SourceSpec {
        SourceSpec {
            source: Source::Args(values.iter().map(|s| s.to_string()).collect()),
            linked,
        }
    }

    fn collect(specs: &[SourceSpec], options: &InputOptions) -> Vec<Vec<String>> {
        rows(specs, options).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn sources_multiply_first_slowest_and_linked_ones_pair_up() {
        let got = collect(
            &[args(&["a", "b"], false), args(&["1", "2"], false)],
            &InputOptions::default(),
        );
        assert_eq!(got, [["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]]);
        let got = collect(
            &[args(&["a", "b"], false), args(&["1", "2", "3"], true)],
            &InputOptions::default(),
        );
        assert_eq!(got, [["a", "1"], ["b", "2"]]);
        let got = collect(
            &[
                args(&["a"], false),
                args(&["1", "2"], false),
                args(&["x", "y"], true),
            ],
            &InputOptions::default(),
        );
        assert_eq!(got, [["a", "1", "x"], ["a", "2", "y"]]);
    }

    #[test]
    fn an_empty_source_gives_no_jobs() {
        assert!(
            collect(
                &[args(&["a"], false), args(&[], false)],
                &InputOptions::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn files_are_read_by_line_or_nul_and_split_into_columns() {
        let path = std::env::temp_dir().join(format!("conlab-input-{}", std::process::id()));
        std::fs::write(&path, "a\tb\r\nc\td\n").unwrap();
        let spec = SourceSpec {
            source: Source::File(path.clone()),
            linked: false,
        };
        let options = InputOptions {
            null: false,
            colsep: Some(Regex::new("\t").unwrap()),
        };
        assert_eq!(
            collect(std::slice::from_ref(&spec), &options),
            [["a", "b"], ["c", "d"]]
        );
        std::fs::write(&path, "x y\0z\0").unwrap();
        let options = InputOptions {
            null: true,
            colsep: None,
        };
        assert_eq!(collect(&[spec], &options), [["x y"], ["z"]]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_file_or_a_dangling_link_is_an_error() {
        let missing = SourceSpec {
            source: Source::File("/nonexistent/inputs".into()),
            linked: false,
        };
        let message = match rows(&[missing], &InputOptions::default()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a missing file was opened"),
        };
        assert!(message.contains("/nonexistent/inputs"), "{message}");
        assert!(rows(&[args(&["a"], true)], &InputOptions::default()).is_err());
    }

    #[test]
    fn max_args_groups_rows_and_the_last_group_may_be_short() {
        let rows = rows(
            &[args(&["a", "b", "c", "d", "e"], false)],
            &InputOptions::default(),
        )
        .unwrap();
        let got: Vec<Vec<String>> = group(rows, 2).map(Result::unwrap).collect();
        assert_eq!(got, vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
    }
}
