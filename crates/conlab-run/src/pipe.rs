//! `--pipe` and `--pipe-part`: standard input (or a seekable file) cut into blocks of whole
//! records, each block the standard input of one job — how people run `wc`, `grep` or `gzip`
//! over one big file on every core. Cut as GNU parallel 20221122 cuts:
//!
//! - `--pipe`: a block is at most `--block` bytes (1M by default) ending after the last
//!   record end (`--recend`, newline by default) inside it; a record longer than the block
//!   grows it. `-N n`: n records per block instead. A last record without its end is passed
//!   as it is.
//! - `--pipe-part -a FILE`: the file is not read to cut it: a block ends at the first record
//!   end at or after `--block` bytes from the last cut (by default the size / slots / 10),
//!   and each job reads its own range.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::input::{InputError, Rows, Source, SourceSpec};

/// `--block SIZE` as GNU reads it: `k m g t p` are powers of 1000, `K M G T P` and `Ki Mi...`
/// powers of 1024; a fraction is allowed (`1.5M`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        "K" | "Ki" | "ki" => 1024.0,
        "M" | "Mi" | "mi" => 1024f64.powi(2),
        "G" | "Gi" | "gi" => 1024f64.powi(3),
        "T" | "Ti" | "ti" => 1024f64.powi(4),
        "P" | "Pi" | "pi" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

/// How the input is cut.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Bytes per block (at most, for `--pipe`).
    pub block: u64,
    /// What ends a record.
    pub recend: Vec<u8>,
    /// `-N`: records per block instead of bytes.
    pub records: Option<usize>,
}

/// `--pipe`: the blocks of `reader`, in order.
pub fn blocks(
    mut reader: Box<dyn Read + Send>,
    cut: Cut,
) -> impl Iterator<Item = Result<Vec<u8>, InputError>> + Send {
    let mut carry: Vec<u8> = Vec::new();
    let mut eof = false;
    let block = usize::try_from(cut.block).unwrap_or(usize::MAX).max(1);
    std::iter::from_fn(move || {
        let read_error = |source| InputError::Read {
            path: "-".into(),
            source,
        };
        loop {
            // Enough in hand to cut a block?
            if let Some(end) = cut_point(&carry, &cut, block, eof) {
                let rest = carry.split_off(end);
                return Some(Ok(std::mem::replace(&mut carry, rest)));
            }
            if eof {
                return (!carry.is_empty()).then(|| Ok(std::mem::take(&mut carry)));
            }
            let want = block.max(64 * 1024);
            let start = carry.len();
            carry.resize(start + want, 0);
            match reader.read(&mut carry[start..]) {
                Ok(0) => {
                    carry.truncate(start);
                    eof = true;
                }
                Ok(n) => carry.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => carry.truncate(start),
                Err(e) => {
                    carry.truncate(start);
                    eof = true;
                    return Some(Err(read_error(e)));
                }
            }
        }
    })
}

/// Where the next block ends in `data`, if it can be told yet.
fn cut_point(data: &[u8], cut: &Cut, block: usize, eof: bool) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    let ends = |data: &[u8]| -> Vec<usize> {
        let r = &cut.recend;
        let mut at = Vec::new();
        let mut i = 0;
        while let Some(p) = find(&data[i..], r) {
            at.push(i + p + r.len());
            i += p + r.len();
        }
        at
    };
    if let Some(n) = cut.records {
        let found = ends(data);
        return match found.get(n.max(1) - 1) {
            Some(&end) => Some(end),
            None if eof && !data.is_empty() => Some(data.len()),
            None => None,
        };
    }
    if data.len() < block && !eof {
        return None;
    }
    let window = &data[..data.len().min(block)];
    match rfind(window, &cut.recend) {
        Some(p) => Some(p + cut.recend.len()),
        // One record longer than a block: the block grows to its end.
        None => match find(data, &cut.recend) {
            Some(p) => Some(p + cut.recend.len()),
            None if eof => Some(data.len()),
            None => None,
        },
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().rposition(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// `--pipe-part`: the byte ranges of `path`, each starting after a record end.
pub fn part_ranges(path: &Path, block: u64, recend: &[u8]) -> io::Result<Vec<(u64, u64)>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let block = block.max(1);
    let mut cuts = vec![0u64];
    let mut buf = vec![0u8; 128 * 1024];
    // GNU's find_split_positions: from `pos`, the first record end starts the next block,
    // and the next search begins a block after that cut.
    let mut pos = block;
    while pos < size {
        let mut at = pos;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = file.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            carry.extend_from_slice(&buf[..n]);
            if let Some(i) = find(&carry, recend) {
                pos += (i + recend.len()) as u64;
                cuts.push(pos);
                break;
            }
            at += n as u64;
        }
        pos += block;
    }
    if cuts.last() == Some(&size) {
        cuts.pop();
    }
    cuts.push(size);
    Ok(cuts
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| (w[0], w[1] - w[0]))
        .collect())
}

/// `--pipe` and `--pipe-part` as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--pipe-part` (else `--pipe`).
    pub part: bool,
    /// `--block SIZE` as written.
    pub block: Option<String>,
    /// `--recend STR` as written (GNU's escapes).
    pub recend: Option<String>,
    /// `-N` / `-n`: records per block.
    pub records: Option<usize>,
    /// Job slots (for `--pipe-part`'s default block).
    pub jobs: usize,
}

/// Why `--pipe` cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// A setting that is not one.
    #[error("{0}")]
    Setting(String),
    /// The file could not be read.
    #[error("--pipe-part: {path}")]
    File {
        /// The file.
        path: String,
        /// What the OS said.
        source: io::Error,
    },
}

/// The rows of a `--pipe` run: one per block (the block itself), or for `--pipe-part` one
/// per range (its offset and length, as decimal numbers: [`crate::Pipe::Part`]).
pub fn rows(sources: &[SourceSpec], s: &Settings) -> Result<Rows, PipeError> {
    let recend = s
        .recend
        .as_deref()
        .map_or_else(|| b"\n".to_vec(), crate::input::unescape);
    if recend.is_empty() {
        return Err(PipeError::Setting(
            "--recend takes at least one character".into(),
        ));
    }
    let block = s
        .block
        .as_deref()
        .map(|b| {
            parse_size(b).ok_or_else(|| {
                PipeError::Setting(format!(
                    "bad --block `{b}`: a size such as 1M, 100k or 4096"
                ))
            })
        })
        .transpose()?;
    let file = match sources {
        [] => None,
        [
            SourceSpec {
                source: Source::File(path),
                ..
            },
        ] => Some(path.clone()),
        _ => {
            return Err(PipeError::Setting(
                "--pipe and --pipe-part read one input: standard input or -a FILE".into(),
            ));
        }
    };
    if s.part {
        let Some(path) = file.filter(|p| p.as_os_str() != "-") else {
            return Err(PipeError::Setting(
                "--pipe-part needs a seekable file: -a FILE".into(),
            ));
        };
        let file_error = |source| PipeError::File {
            path: path.display().to_string(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(file_error)?.len();
        // GNU's default: ten blocks per job slot.
        let block = block.unwrap_or(1 + size / s.jobs.max(1) as u64 / 10);
        let ranges = part_ranges(&path, block, &recend).map_err(file_error)?;
        return Ok(Box::new(ranges.into_iter().map(|(offset, len)| {
            Ok(vec![
                offset.to_string().into_bytes(),
                len.to_string().into_bytes(),
            ])
        })));
    }
    let reader: Box<dyn Read + Send> = match file {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(File::open(&path).map_err(|source| PipeError::File {
                path: path.display().to_string(),
                source,
            })?)
        }
        _ => Box::new(io::stdin()),
    };
    let cut = Cut {
        block: block.unwrap_or(1 << 20),
        recend,
        records: s.records.filter(|&n| n > 0),
    };
    Ok(Box::new(
        blocks(reader, cut).map(|b| b.map(|block| vec![block])),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(data: &str, cut: Cut) -> Vec<String> {
        blocks(Box::new(io::Cursor::new(data.as_bytes().to_vec())), cut)
            .map(|b| String::from_utf8(b.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn blocks_end_after_the_last_whole_record_as_gnu_cuts_them() {
        let lines = |n: usize| Cut {
            block: 1 << 20,
            recend: b"\n".to_vec(),
            records: Some(n),
        };
        // seq 10 | parallel --pipe -N3 wc -l: 3 3 3 1
        let data: String = (1..=10).map(|i| format!("{i}\n")).collect();
        let sizes: Vec<usize> = cut_all(&data, lines(3))
            .iter()
            .map(|b| b.lines().count())
            .collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        let bytes = Cut {
            block: 5,
            recend: b"\n".to_vec(),
            records: None,
        };
        assert_eq!(
            cut_all("ab\ncd\nefghij\nk", bytes.clone()),
            ["ab\n", "cd\n", "efghij\n", "k"]
        );
        assert_eq!(cut_all("ab\n", bytes.clone()), ["ab\n"]);
        assert!(cut_all("", bytes).is_empty());
    }

    #[test]
    fn file_parts_start_after_a_record_end() {
        // parallel --pipe-part -a s20 --block 20 wc -l: 10 7 3
        let path = std::env::temp_dir().join(format!("conlab-pipe-part-{}", std::process::id()));
        let data: String = (1..=20).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, &data).unwrap();
        let ranges = part_ranges(&path, 20, b"\n").unwrap();
        let counts: Vec<usize> = ranges
            .iter()
            .map(|&(o, l)| data[o as usize..(o + l) as usize].lines().count())
            .collect();
        assert_eq!(counts, [10, 7, 3]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn sizes_take_gnus_prefixes() {
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("100k"), Some(100_000));
        assert_eq!(parse_size("2Ki"), Some(2048));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("0"), None);
    }
}
