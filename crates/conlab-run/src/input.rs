//! Where a job's arguments come from, read as GNU parallel reads them (its 20221122 source is
//! the reference): `::: a b c`, `:::: FILE`, linked sources (`:::+`, `::::+`, `--link`),
//! standard input when no source is given; records end with the delimiter (newline, `-0`,
//! `-d`), the CR of a CR-LF line is kept (GNU warns and so do we), `-E` ends a source, `-r`
//! skips blank records, `--colsep` splits records into columns and `--trim` trims them.
//! Values are bytes: a file name that is not UTF-8 reaches the job unchanged.
//!
//! GNU's rules that are easy to get wrong, all kept here:
//! - `:::` values are records too: GNU writes them to a file with the delimiter after each
//!   and reads them back, so a value holding the delimiter becomes several values, and `-E`
//!   and `-r` apply to them.
//! - Several sources give the cross product, the first varying slowest; a source linked with
//!   `:::+` pairs with the one before it (stopping at the shorter); `--link` pairs every
//!   source, recycling the shorter ones up to the longest.
//! - A source with no value at all counts as one empty value, unless every source is empty
//!   (then there are no jobs); a `:::` that is the very last word is ignored.
//!
//! The first group of sources is streamed, so a million lines on standard input are never
//! held in memory; the others are read up front (a product needs them again and again).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use regex::bytes::Regex;

use crate::template::Value;

/// One input source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `::: a b c`.
    Args(Vec<Value>),
    /// `:::: FILE`, one value per record (`-` is standard input).
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

/// `--trim`: which ends of each value lose their white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trim {
    /// `n`: none (the default).
    #[default]
    None,
    /// `l`.
    Left,
    /// `r`.
    Right,
    /// `lr` or `rl`.
    Both,
}

/// A warning about the input, for the user (the caller decides where it goes).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// How values are read.
#[derive(Clone, Default)]
pub struct InputOptions {
    /// The record delimiter: `None` is newline; `-0` is NUL; `-d` sets any string.
    pub delimiter: Option<Vec<u8>>,
    /// Split each record into columns (`{1}`, `{2}`, ...).
    pub colsep: Option<Regex>,
    /// `-E`: a record equal to this ends its source.
    pub eof: Option<Vec<u8>>,
    /// `-r`: skip records that are only white space.
    pub skip_blank: bool,
    /// `--trim`.
    pub trim: Trim,
    /// `--link`: pair every source, recycling shorter ones.
    pub link: bool,
    /// `--header :`: the first value of each source names its columns (`{name}`).
    pub header: bool,
    /// Receives GNU's warnings (the first three records end in CR-LF).
    pub warn: Option<Warn>,
}

impl std::fmt::Debug for InputOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputOptions")
            .field("delimiter", &self.delimiter)
            .field("colsep", &self.colsep)
            .field("eof", &self.eof)
            .field("skip_blank", &self.skip_blank)
            .field("trim", &self.trim)
            .field("link", &self.link)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
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
    /// One record makes a command line longer than GNU parallel would run.
    #[error(
        "Command line too long ({len} >= {limit}) at input {input}: {start} \
         (GNU parallel refuses it too; -s cannot raise the limit)"
    )]
    TooLong {
        /// GNU's estimate of the line's length.
        len: usize,
        /// The usable length.
        limit: usize,
        /// The record's number in the input, from 1.
        input: usize,
        /// The record's first 50 bytes.
        start: String,
    },
    /// `:::+` with nothing before it.
    #[error("`:::+` and `::::+` link to the source before them, and there is none")]
    LinkWithoutSource,
}

/// The input separators GNU parallel knows (`--arg-sep`, `--arg-file-sep` change them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Separators {
    /// `:::`.
    pub args: Vec<u8>,
    /// `::::`.
    pub files: Vec<u8>,
}

impl Default for Separators {
    fn default() -> Self {
        Separators {
            args: b":::".to_vec(),
            files: b"::::".to_vec(),
        }
    }
}

/// Splits GNU parallel's `COMMAND ::: a b :::: FILE ...` into the command and its sources;
/// `arg_files` (`-a FILE`) come first, as GNU parallel reads them.
pub fn split_command_line(
    words: &[Value],
    arg_files: &[PathBuf],
    seps: &Separators,
) -> (Vec<Value>, Vec<SourceSpec>) {
    let marker = |w: &[u8]| -> Option<(bool, bool)> {
        let (base, linked) = match w.strip_suffix(b"+") {
            Some(base) => (base, true),
            None => (w, false),
        };
        if base == seps.args {
            Some((false, linked))
        } else if base == seps.files {
            Some((true, linked))
        } else {
            None
        }
    };
    let mut sources: Vec<SourceSpec> = arg_files
        .iter()
        .map(|f| SourceSpec {
            source: Source::File(f.clone()),
            linked: false,
        })
        .collect();
    let Some(first) = words.iter().position(|w| marker(w).is_some()) else {
        return (words.to_vec(), sources);
    };
    // GNU's loop never looks at the last word: a lone trailing `:::` is dropped.
    if first == words.len() - 1 {
        return (words[..first].to_vec(), sources);
    }
    let command = words[..first].to_vec();
    let mut i = first;
    while i < words.len() {
        let (is_file, linked) = marker(&words[i]).unwrap_or((false, false));
        let end = words[i + 1..]
            .iter()
            .position(|w| marker(w).is_some())
            .map_or(words.len(), |p| i + 1 + p);
        let values = &words[i + 1..end];
        if is_file {
            for (k, file) in values.iter().enumerate() {
                sources.push(SourceSpec {
                    source: Source::File(PathBuf::from(OsStr::from_bytes(file))),
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
    (command, sources)
}

/// `-d`'s escapes exactly as GNU parallel's `unquote_printf` reads them: `\t`, `\n`, `\r`,
/// then `\ddd` and `\d` as Perl's octal escapes, each a global replacement in that order.
/// Nothing else is an escape (`-d '\\'` is two backslashes).
pub fn unescape(text: &str) -> Value {
    let replace = |bytes: Vec<u8>, from: &[u8], to: u8| -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(from) {
                out.push(to);
                i += from.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    };
    let mut bytes = text.as_bytes().to_vec();
    bytes = replace(bytes, b"\\t", b'\t');
    bytes = replace(bytes, b"\\n", b'\n');
    bytes = replace(bytes, b"\\r", b'\r');
    for width in [3, 1] {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let digits = bytes[i + 1..]
                .iter()
                .take(width)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if bytes[i] == b'\\' && digits == width {
                out.extend(perl_octal(&bytes[i + 1..i + 1 + width]));
                i += 1 + width;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        bytes = out;
    }
    bytes
}

/// Perl's `"\ddd"`: the leading octal digits make one byte, the rest stay as they are (`\8`
/// is `8`).
fn perl_octal(digits: &[u8]) -> Vec<u8> {
    let octal = digits
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    if octal == 0 {
        return digits.to_vec();
    }
    let value = digits[..octal]
        .iter()
        .fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
    let mut out = vec![(value & 0xff) as u8];
    out.extend_from_slice(&digits[octal..]);
    out
}

/// One job's arguments, or a read error that stops the run.
pub type Row = Result<Vec<Value>, InputError>;

type Values = Box<dyn Iterator<Item = Result<Value, InputError>> + Send>;

/// GNU's CR-LF check: counts the first records that end in CR and those that do not.
#[derive(Default)]
struct CrCheck {
    cr: AtomicU32,
    nl: AtomicU32,
}

/// Reads records from one source.
struct Records {
    reader: Box<dyn BufRead + Send>,
    name: String,
    delimiter: Vec<u8>,
    eof: Option<Vec<u8>>,
    skip_blank: bool,
    done: bool,
    check: Option<(Arc<CrCheck>, Warn)>,
}

impl Records {
    fn read_record(&mut self) -> io::Result<Option<Value>> {
        let last = *self.delimiter.last().unwrap_or(&b'\n');
        let mut record = Vec::new();
        loop {
            let n = self.reader.read_until(last, &mut record)?;
            if n == 0 {
                return Ok((!record.is_empty()).then_some(record));
            }
            if record.ends_with(&self.delimiter) {
                if let Some((check, warn)) = &self.check {
                    let cr = record.len() >= 2 && record[record.len() - 2] == b'\r';
                    let counter = if cr { &check.cr } else { &check.nl };
                    let seen = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    if seen == 3 && cr && check.nl.load(Ordering::SeqCst) == 0 {
                        warn("The first three values end in CR-NL. Consider using -d \"\\r\\n\"");
                    }
                }
                record.truncate(record.len() - self.delimiter.len());
                return Ok(Some(record));
            }
            if record.last() != Some(&last) {
                return Ok(Some(record));
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<Value, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_record() {
                Err(source) => {
                    self.done = true;
                    return Some(Err(InputError::Read {
                        path: self.name.clone(),
                        source,
                    }));
                }
                Ok(None) => self.done = true,
                Ok(Some(record)) => {
                    if self.eof.as_ref() == Some(&record) {
                        self.done = true;
                    } else if self.skip_blank && record.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    } else {
                        return Some(Ok(record));
                    }
                }
            }
        }
        None
    }
}

fn open(
    source: &Source,
    options: &InputOptions,
    check: &Arc<CrCheck>,
) -> Result<Values, InputError> {
    let delimiter = options.delimiter.clone().unwrap_or_else(|| b"\n".to_vec());
    let (reader, name): (Box<dyn BufRead + Send>, String) = match source {
        Source::Args(values) => {
            let mut bytes = Vec::new();
            for v in values {
                bytes.extend_from_slice(v);
                bytes.extend_from_slice(&delimiter);
            }
            (Box::new(Cursor::new(bytes)), ":::".into())
        }
        Source::File(path) if path.as_os_str() == "-" => {
            (Box::new(BufReader::new(io::stdin())), "-".into())
        }
        Source::File(path) => {
            let name = path.display().to_string();
            let file = File::open(path).map_err(|source| InputError::Read {
                path: name.clone(),
                source,
            })?;
            (Box::new(BufReader::with_capacity(64 * 1024, file)), name)
        }
    };
    let check = match (&options.warn, options.delimiter.is_none()) {
        (Some(warn), true) => Some((check.clone(), warn.clone())),
        _ => None,
    };
    Ok(Box::new(Records {
        reader,
        name,
        delimiter,
        eof: options.eof.clone(),
        skip_blank: options.skip_blank,
        done: false,
        check,
    }))
}

/// A source after its first value was looked at: empty ones give one empty value.
fn with_first(first: Option<Result<Value, InputError>>, rest: Values) -> Values {
    match first {
        None => Box::new(std::iter::once(Ok(Vec::new()))),
        Some(first) => Box::new(std::iter::once(first).chain(rest)),
    }
}

/// The rows of one group of linked sources, zipped to the shortest.
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

/// `--link`: every source paired, the shorter ones recycled, until the longest ends.
fn link(mut sources: Vec<Values>) -> Box<dyn Iterator<Item = Row> + Send> {
    let mut seen: Vec<Vec<Value>> = vec![Vec::new(); sources.len()];
    let mut ended = vec![false; sources.len()];
    let mut round = 0usize;
    Box::new(std::iter::from_fn(move || {
        let mut row = Vec::with_capacity(sources.len());
        let mut fresh = false;
        for (i, s) in sources.iter_mut().enumerate() {
            let next = if ended[i] { None } else { s.next() };
            match next {
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(v)) => {
                    seen[i].push(v.clone());
                    row.push(v);
                    fresh = true;
                }
                None => {
                    ended[i] = true;
                    let values = &seen[i];
                    row.push(if values.is_empty() {
                        Vec::new()
                    } else {
                        values[round % values.len()].clone()
                    });
                }
            }
        }
        round += 1;
        fresh.then_some(Ok(row))
    }))
}

/// The rows of every job, in order.
pub type Rows = Box<dyn Iterator<Item = Row> + Send>;

/// Every job's arguments, in order. No specs: standard input, one value per record.
pub fn rows(specs: &[SourceSpec], options: &InputOptions) -> Result<Rows, InputError> {
    rows_with_header(specs, options).map(|(_, rows)| rows)
}

/// As [`rows`], and with `--header` the column names the first records gave (empty without).
pub fn rows_with_header(
    specs: &[SourceSpec],
    options: &InputOptions,
) -> Result<(Vec<Value>, Rows), InputError> {
    let stdin = [SourceSpec {
        source: Source::File(PathBuf::from("-")),
        linked: false,
    }];
    let specs = if specs.is_empty() { &stdin[..] } else { specs };
    if specs[0].linked && !options.link {
        return Err(InputError::LinkWithoutSource);
    }
    let check = Arc::new(CrCheck::default());
    // GNU reads one value from every source first: an empty source becomes one empty value,
    // unless they all are empty.
    let mut opened = Vec::with_capacity(specs.len());
    let mut names = Vec::new();
    for spec in specs {
        let mut values = open(&spec.source, options, &check)?;
        let mut first = values.next();
        if options.header {
            if let Some(header) = first.take().transpose()? {
                match &options.colsep {
                    Some(re) => names.extend(re.split(&header).map(<[u8]>::to_vec)),
                    None => names.push(header),
                }
            }
            first = values.next();
        }
        opened.push((spec.linked, first, values));
    }
    if opened.iter().all(|(_, first, _)| first.is_none()) {
        return Ok((names, Box::new(std::iter::empty())));
    }
    let sources: Vec<(bool, Values)> = opened
        .into_iter()
        .map(|(linked, first, rest)| (linked, with_first(first, rest)))
        .collect();
    let product: Box<dyn Iterator<Item = Row> + Send> = if options.link {
        link(sources.into_iter().map(|(_, v)| v).collect())
    } else {
        let mut groups: Vec<Vec<Values>> = Vec::new();
        for (linked, values) in sources {
            match groups.last_mut() {
                Some(group) if linked => group.push(values),
                _ => groups.push(vec![values]),
            }
        }
        let mut groups = groups.into_iter();
        let first = zip(groups.next().unwrap_or_default());
        // The other groups are needed once per row of the first: read them now.
        let rest: Vec<Vec<Vec<Value>>> = groups
            .map(|g| zip(g).collect::<Result<Vec<_>, _>>())
            .collect::<Result<_, _>>()?;
        Box::new(
            first.flat_map(move |head| -> Box<dyn Iterator<Item = Row> + Send> {
                match head {
                    Err(e) => Box::new(std::iter::once(Err(e))),
                    Ok(head) => Box::new(product(head, rest.clone()).map(Ok)),
                }
            }),
        )
    };
    let (colsep, trim, warn) = (options.colsep.clone(), options.trim, options.warn.clone());
    let rows: Rows = Box::new(product.map(move |row| {
        row.map(|values| match &colsep {
            None => values.into_iter().map(|v| trimmed(v, trim)).collect(),
            Some(re) => values
                .iter()
                .flat_map(|v| -> Vec<Value> {
                    if v.is_empty() {
                        return vec![Vec::new()];
                    }
                    perl_split(re, v)
                        .into_iter()
                        .map(|c| trimmed(c.to_vec(), trim))
                        .collect()
                })
                .collect(),
        })
        .map(|values| without_nul(values, warn.as_ref()))
    }));
    Ok((names, rows))
}

/// A NUL cannot be passed in an argument: as GNU parallel, one after the first byte becomes
/// the two characters `\0` (with its warning); a value that starts with NUL ends there, as
/// the C string it becomes would.
fn without_nul(mut values: Vec<Value>, warn: Option<&Warn>) -> Vec<Value> {
    let mut warned = false;
    for v in &mut values {
        match v.iter().position(|&b| b == 0) {
            None => {}
            Some(0) => v.clear(),
            Some(_) => {
                if !warned && let Some(warn) = warn {
                    warn("A NUL character in the input was replaced with \\0.");
                    warn("NUL cannot be passed through in the argument list.");
                    warn("Did you mean to use the --null option?");
                }
                warned = true;
                *v = v
                    .iter()
                    .flat_map(|&b| if b == 0 { vec![b'\\', b'0'] } else { vec![b] })
                    .collect();
            }
        }
    }
    values
}

/// Perl's `split /RE/, $v, -1`, which GNU's `--colsep` is: empty fields kept, except that
/// an empty match at the start or the end of the value splits nothing.
fn perl_split<'v>(re: &Regex, v: &'v [u8]) -> Vec<&'v [u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    for m in re.find_iter(v) {
        if m.start() == m.end() && (m.start() == 0 || m.start() == v.len()) {
            continue;
        }
        fields.push(&v[start..m.start()]);
        start = m.end();
    }
    fields.push(&v[start..]);
    fields
}

fn trimmed(mut v: Value, trim: Trim) -> Value {
    let space = |b: &u8| b.is_ascii_whitespace() || *b == 0x0b;
    if matches!(trim, Trim::Right | Trim::Both) {
        let keep = v.len() - v.iter().rev().take_while(|b| space(b)).count();
        v.truncate(keep);
    }
    if matches!(trim, Trim::Left | Trim::Both) {
        let cut = v.iter().take_while(|b| space(b)).count();
        v.drain(..cut);
    }
    v
}

/// `head` followed by every combination of one row from each of `rest`, first varying
/// slowest.
fn product(
    head: Vec<Value>,
    rest: Vec<Vec<Vec<Value>>>,
) -> impl Iterator<Item = Vec<Value>> + Send {
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

/// The number of jobs, when every source is `:::` values (files and stdin are streamed) and
/// they hold no delimiter, `-E` or `-r` to change their count.
pub fn known_total(sources: &[SourceSpec], options: &InputOptions) -> Option<u64> {
    if options.eof.is_some() || options.skip_blank || options.link {
        return None;
    }
    let delimiter = options.delimiter.clone().unwrap_or_else(|| b"\n".to_vec());
    let mut total: u64 = 1;
    let mut group: Option<u64> = None;
    for spec in sources {
        let Source::Args(values) = &spec.source else {
            return None;
        };
        if values
            .iter()
            .any(|v| v.windows(delimiter.len()).any(|w| w == delimiter))
        {
            return None;
        }
        let len = (values.len() as u64).max(1);
        group = Some(match group {
            Some(g) if spec.linked => g.min(len),
            Some(g) => {
                total = total.saturating_mul(g);
                len
            }
            None => len,
        });
    }
    if sources
        .iter()
        .all(|s| matches!(&s.source, Source::Args(v) if v.is_empty()))
    {
        return Some(0);
    }
    group.map(|g| total.saturating_mul(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Value> {
        s.split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    fn args(values: &[&str], linked: bool) -> SourceSpec {
        SourceSpec {
            source: Source::Args(values.iter().map(|s| s.as_bytes().to_vec()).collect()),
            linked,
        }
    }

    fn collect(specs: &[SourceSpec], options: &InputOptions) -> Vec<Vec<String>> {
        rows(specs, options)
            .unwrap()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| String::from_utf8(v).unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_command_and_its_sources_split_at_the_markers() {
        let seps = Separators::default();
        let (command, sources) =
            split_command_line(&words("gzip -9 {} ::: a b :::+ 1 2 :::: f"), &[], &seps);
        assert_eq!(command, words("gzip -9 {}"));
        assert_eq!(sources.len(), 3);
        assert!(sources[1].linked && !sources[2].linked);
        assert_eq!(sources[2].source, Source::File("f".into()));
        // GNU never looks at the last word: `echo x :::` is `echo x` reading stdin.
        let (command, sources) = split_command_line(&words("echo x :::"), &[], &seps);
        assert_eq!((command, sources.len()), (words("echo x"), 0));
        let (_, sources) = split_command_line(&words("echo ::: a :::"), &[], &seps);
        assert_eq!(sources.len(), 2);
        let (_, sources) = split_command_line(&words("echo ::: a ::::"), &[], &seps);
        assert_eq!(sources.len(), 1);
    }

    #[test]
    fn sources_multiply_first_slowest_and_linked_ones_pair_up() {
        let o = InputOptions::default();
        let got = collect(&[args(&["a", "b"], false), args(&["1", "2"], false)], &o);
        assert_eq!(got, [["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]]);
        let got = collect(
            &[args(&["a", "b"], false), args(&["1", "2", "3"], true)],
            &o,
        );
        assert_eq!(got, [["a", "1"], ["b", "2"]]);
        let linked = InputOptions {
            link: true,
            ..InputOptions::default()
        };
        let got = collect(
            &[args(&["a", "b", "c"], false), args(&["1", "2"], false)],
            &linked,
        );
        assert_eq!(got, [["a", "1"], ["b", "2"], ["c", "1"]]);
    }

    #[test]
    fn an_empty_source_is_one_empty_value_unless_all_are_empty() {
        let o = InputOptions::default();
        assert_eq!(
            collect(&[args(&["a"], false), args(&[], false)], &o),
            [["a", ""]]
        );
        assert_eq!(
            collect(&[args(&[], false), args(&["a", "b"], false)], &o),
            [["", "a"], ["", "b"]]
        );
        assert!(collect(&[args(&[], false), args(&[], false)], &o).is_empty());
        assert!(collect(&[args(&[], false)], &o).is_empty());
    }

    #[test]
    fn values_are_records_split_at_the_delimiter_with_eof_and_blank_rules() {
        let o = InputOptions::default();
        assert_eq!(
            collect(&[args(&["x\ny", "z"], false)], &o),
            [["x"], ["y"], ["z"]]
        );
        let comma = InputOptions {
            delimiter: Some(b",".to_vec()),
            ..InputOptions::default()
        };
        assert_eq!(collect(&[args(&["a,b"], false)], &comma), [["a"], ["b"]]);
        let eof = InputOptions {
            eof: Some(b"END".to_vec()),
            skip_blank: true,
            ..InputOptions::default()
        };
        assert_eq!(
            collect(&[args(&["a", " ", "b", "END", "c"], false)], &eof),
            [["a"], ["b"]]
        );
    }

    #[test]
    fn files_keep_cr_and_split_into_columns_keeping_empty_ones() {
        let path = std::env::temp_dir().join(format!("conlab-input-{}", std::process::id()));
        std::fs::write(&path, "a\tb\t\r\nc\td\n").unwrap();
        let spec = SourceSpec {
            source: Source::File(path.clone()),
            linked: false,
        };
        let warned = Arc::new(AtomicU32::new(0));
        let counter = warned.clone();
        let options = InputOptions {
            colsep: Some(Regex::new("\t").unwrap()),
            warn: Some(Arc::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
            ..InputOptions::default()
        };
        assert_eq!(
            collect(std::slice::from_ref(&spec), &options),
            [vec!["a", "b", "\r"], vec!["c", "d"]]
        );
        assert_eq!(
            warned.load(Ordering::SeqCst),
            0,
            "one CR-LF line is no pattern"
        );
        std::fs::write(&path, "1\r\n2\r\n3\r\n").unwrap();
        collect(std::slice::from_ref(&spec), &options);
        assert_eq!(warned.load(Ordering::SeqCst), 1);
        std::fs::write(&path, "x y\0z\0").unwrap();
        let options = InputOptions {
            delimiter: Some(vec![0]),
            ..InputOptions::default()
        };
        assert_eq!(collect(&[spec], &options), [["x y"], ["z"]]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn columns_split_as_perl_splits_them() {
        let split = |re: &str, v: &str| -> Vec<String> {
            perl_split(&Regex::new(re).unwrap(), v.as_bytes())
                .iter()
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(split("|", "a|b"), ["a", "|", "b"]);
        assert_eq!(split(",", "a,b,"), ["a", "b", ""]);
        assert_eq!(split(",", ",a"), ["", "a"]);
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
        let got: Vec<Vec<Value>> = group(rows, 2).map(Result::unwrap).collect();
        assert_eq!(got, vec![words("a b"), words("c d"), words("e")]);
    }

    #[test]
    fn delimiters_take_gnus_escapes_only() {
        assert_eq!(unescape("\\t"), b"\t");
        assert_eq!(unescape("\\r\\n"), b"\r\n");
        assert_eq!(unescape("\\101,"), b"A,");
        assert_eq!(unescape("\\0"), b"\0");
        assert_eq!(unescape("\\1"), b"\x01");
        assert_eq!(unescape("\\189"), b"\x0189");
        for literal in ["\\\\", "\\x58", ","] {
            assert_eq!(unescape(literal), literal.as_bytes(), "{literal}");
        }
    }

    #[test]
    fn the_job_count_is_known_for_value_sources_only() {
        let seps = Separators::default();
        let o = InputOptions::default();
        let (_, sources) = split_command_line(&words("echo ::: a b c ::: 1 2 :::+ x"), &[], &seps);
        assert_eq!(known_total(&sources, &o), Some(3));
        let (_, sources) = split_command_line(&words("echo ::: a b :::: f"), &[], &seps);
        assert_eq!(known_total(&sources, &o), None);
    }
}
