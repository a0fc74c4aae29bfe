//! Filling command lines: which input records go on one job's line, by GNU parallel's rules
//! (`CommandLine::populate`, 20221122).
//!
//! A line takes records until `-n`/`-N` says stop or GNU's estimate of its length
//! ([`LengthModel`]) reaches the usable length; then the last record waits for the next line.
//! A single record that does not fit is an error (GNU's "Command line too long"), in every
//! mode, not only `-X`. With `-X` or `-m`, the line that meets the end of the input is spread
//! once over the job slots (ten records at `-j4` become lines of 3, 3, 3 and 1), and that
//! count holds for the lines after it; `--xargs` never spreads.
//!
//! The usable length is GNU's: the longest command line this machine runs, found as GNU finds
//! it (a search over `echo ccc...` with a clean environment), less 3000 for wrapping, halved;
//! `-s N` lowers it. The search spawns about ten `echo`s, so it runs only when a line could
//! come near the limit.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::input::{InputError, Row, Rows};
use crate::template::{LengthModel, Value};

/// Below this estimate no line is near any limit GNU's search can find, so it is not run.
const SURELY_FITS: usize = 4096;

/// How many records each line takes, and how long a line may be.
#[derive(Debug, Clone)]
pub struct Fill {
    /// GNU's length estimate for this command.
    pub model: LengthModel,
    /// `-n`/`-N`: at most this many records a line (`None`: as many as fit, `-X`/`-m`).
    pub max_records: Option<usize>,
    /// `-X`/`-m`: spread the line that meets the end of the input over this many slots.
    pub spread_over: Option<usize>,
    /// `-s N`: a usable length below the machine's.
    pub max_chars: Option<usize>,
    /// Build each line before the one before it is given out (GNU's `-X`/`-m` path): a
    /// line too long is then an error before the line before it runs.
    pub read_ahead: bool,
}

/// The usable command line length, and whether `-s` asked for more than that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usable {
    /// The length a line's estimate must stay below.
    pub length: usize,
    /// `-s` was more than the machine allows and was not used.
    pub max_chars_ignored: bool,
}

impl Fill {
    /// The usable length: GNU's `int((max_length - 3000) / 2)`, or `-s` when that is lower.
    pub fn usable(&self) -> Usable {
        let machine = (max_line_length().saturating_sub(3000)) / 2;
        match self.max_chars {
            Some(s) if s <= machine => Usable {
                length: s,
                max_chars_ignored: false,
            },
            Some(_) => Usable {
                length: machine,
                max_chars_ignored: true,
            },
            None => Usable {
                length: machine,
                max_chars_ignored: false,
            },
        }
    }

    /// Groups `rows` (one record each) into the records of each job's line, flattened.
    pub fn lines(self, rows: Rows) -> Rows {
        let read_ahead = self.read_ahead;
        let mut lines = Lines {
            rows,
            pending: std::collections::VecDeque::new(),
            limit: None,
            spread_done: false,
            seq: 0,
            input: 0,
            fill: self,
            sums: Vec::new(),
        };
        let mut ahead: Option<Row> = None;
        Box::new(std::iter::from_fn(move || {
            if !read_ahead {
                return lines.next_line();
            }
            let current = ahead.take().or_else(|| lines.next_line())?;
            if current.is_ok() {
                ahead = lines.next_line();
                if matches!(ahead, Some(Err(_))) {
                    return ahead.take();
                }
            }
            Some(current)
        }))
    }
}

struct Lines {
    rows: Rows,
    /// Records read and given back (GNU's `unget`), with their input numbers.
    pending: std::collections::VecDeque<(usize, Vec<Value>)>,
    limit: Option<usize>,
    spread_done: bool,
    seq: u64,
    input: usize,
    fill: Fill,
    /// The per-string sums, kept between lines to spare an allocation each.
    sums: Vec<usize>,
}

impl Lines {
    fn next_record(&mut self) -> Option<Result<(usize, Vec<Value>), InputError>> {
        if let Some(r) = self.pending.pop_front() {
            return Some(Ok(r));
        }
        let row = self.rows.next()?;
        self.input += 1;
        Some(row.map(|r| (self.input, r)))
    }

    /// True at the end of the input (reads one record ahead to know).
    fn at_end(&mut self) -> Result<bool, InputError> {
        if !self.pending.is_empty() {
            return Ok(false);
        }
        match self.rows.next() {
            None => Ok(true),
            Some(row) => {
                self.input += 1;
                self.pending.push_back((self.input, row?));
                Ok(false)
            }
        }
    }

    fn limit(&mut self) -> usize {
        *self.limit.get_or_insert_with(|| self.fill.usable().length)
    }

    fn next_line(&mut self) -> Option<Row> {
        let mut sums = std::mem::take(&mut self.sums);
        let line = self.fill_line(&mut sums);
        self.sums = sums;
        line
    }

    fn fill_line(&mut self, sums: &mut Vec<usize>) -> Option<Row> {
        let seq = self.seq + 1;
        let mut records: Vec<(usize, Vec<Value>)> = Vec::new();
        sums.clear();
        sums.resize(self.fill.model.strings(), 0);
        while let Some(next) = self.next_record() {
            let (number, record) = match next {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            self.fill.model.add_record(&record, seq, 1, sums);
            records.push((number, record));
            // GNU counts every record as wide as the first (its `number_of_recargs`).
            let width = records[0].1.len().max(1);
            let len = self.fill.model.len(sums, records.len(), width);
            let surely_fits = SURELY_FITS.min(self.fill.max_chars.unwrap_or(usize::MAX));
            if len >= surely_fits && len >= self.limit() {
                if records.len() > 1 {
                    let last = records.pop().expect("two records");
                    self.pending.push_front(last);
                    break;
                }
                let (number, record) = &records[0];
                let joined = record.join(&b' ');
                return Some(Err(InputError::TooLong {
                    len,
                    limit: self.limit(),
                    input: *number,
                    start: String::from_utf8_lossy(&joined[..joined.len().min(50)]).into_owned()
                        + if joined.len() > 50 { "..." } else { "" },
                }));
            }
            if self
                .fill
                .max_records
                .is_some_and(|max| records.len() >= max)
            {
                break;
            }
        }
        if records.is_empty() {
            return None;
        }
        if let Some(slots) = self.fill.spread_over.filter(|_| !self.spread_done) {
            match self.at_end() {
                Err(e) => return Some(Err(e)),
                Ok(true) => {
                    self.spread_done = true;
                    if records.len() > 1 {
                        let per_line = records.len().div_ceil(slots.max(1));
                        self.fill.max_records = Some(per_line);
                        for r in records.drain(per_line..).rev() {
                            self.pending.push_front(r);
                        }
                    }
                }
                Ok(false) => {}
            }
        }
        self.seq = seq;
        if records.len() == 1 {
            // The usual line of one record: no new vector.
            return records.pop().map(|(_, r)| Ok(r));
        }
        Some(Ok(records.into_iter().flat_map(|(_, r)| r).collect()))
    }
}

/// The longest command line this machine runs, found once per process as GNU parallel finds
/// it (`Limits::Command::real_max_length`): `echo` with one argument of `c`s, run with only
/// GNU's kept variables in the environment, searched upwards by 16x from 324 and then halved
/// until within 1%.
pub fn max_line_length() -> usize {
    static FOUND: OnceLock<usize> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let echo = crate::shell::which(b"echo")
            .map_or_else(|| b"/bin/echo".to_vec(), |p| p.into_os_string().into_vec());
        find_max(|len| runs(&echo, len))
    })
}

/// GNU's `find_max` and `binary_find_max` over the predicate "a line of this length runs".
fn find_max(mut fits: impl FnMut(usize) -> bool) -> usize {
    let upper = 100_000_000;
    let mut len = 324;
    loop {
        if len > upper {
            return len;
        }
        len *= 16;
        if !fits(len) {
            break;
        }
    }
    let (mut lower, mut upper) = (len / 16, len);
    loop {
        if lower == upper || lower + 1 == upper || lower as f64 / upper as f64 > 0.99 {
            return lower;
        }
        let middle = (upper - lower) / 2 + lower;
        if fits(middle) {
            lower = middle;
        } else {
            upper = middle;
        }
    }
}

/// GNU's `is_acceptable_command_line_length`: `$echo ccc...` of `len` bytes in all.
fn runs(echo: &[u8], len: usize) -> bool {
    let count = len.saturating_sub(1 + echo.len());
    let keep = [
        "PATH",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "KRB5CCNAME",
        "LC_CTYPE",
        "HOME",
        "LOGNAME",
        "SSHPASS",
    ];
    let mut command = Command::new(OsStr::from_bytes(echo));
    command
        .arg(OsStr::from_bytes(&vec![b'c'; count]))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for name in keep {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.status().is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Template, TemplateOptions};

    fn template(words: &[&str], context: bool) -> Template {
        let words: Vec<Value> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        Template::parse(
            &words,
            &TemplateOptions {
                context,
                ..TemplateOptions::default()
            },
        )
        .unwrap()
    }

    fn rows(values: &[&str]) -> Rows {
        let rows: Vec<Row> = values
            .iter()
            .map(|v| Ok(vec![v.as_bytes().to_vec()]))
            .collect();
        Box::new(rows.into_iter())
    }

    fn lines(fill: Fill, values: &[&str]) -> Vec<String> {
        fill.lines(rows(values))
            .map(|r| String::from_utf8(r.unwrap().join(&b' ')).unwrap())
            .collect()
    }

    fn fill(t: &Template, max_records: Option<usize>, spread_over: Option<usize>) -> Fill {
        Fill {
            model: t.length_model(),
            max_records,
            spread_over,
            max_chars: None,
            read_ahead: false,
        }
    }

    #[test]
    fn the_search_finds_what_gnu_finds_for_a_given_limit() {
        // Linux's 128 KiB per argument with /usr/bin/echo: GNU caches 130329.
        assert_eq!(find_max(|len| len <= 131_085), 130_329);
        assert_eq!(find_max(|len| len <= 2_000), 1_994);
        // No limit at all: GNU stops at the first length past 100 MB (324 * 16^5).
        assert_eq!(find_max(|_| true), 339_738_624);
    }

    #[test]
    fn this_machine_runs_the_line_the_search_finds() {
        let found = max_line_length();
        assert!(found > SURELY_FITS * 2, "{found}");
        let echo = crate::shell::which(b"echo").expect("echo on PATH");
        assert!(runs(echo.as_os_str().as_bytes(), found));
        assert!(!runs(echo.as_os_str().as_bytes(), 2_000_000));
    }

    #[test]
    fn lengths_follow_gnus_formula() {
        // `echo {}` appended: "echo" + one space; the value's quoted length.
        let t = template(&["echo"], false);
        let m = t.length_model();
        let mut sums = vec![0; m.strings()];
        m.add_record(&[b"a b".to_vec()], 1, 1, &mut sums);
        assert_eq!(m.len(&sums, 1, 1), 4 + 1 + 5);
        // -X: the context `a{}b` is counted once per argument, with a blank between groups.
        let t = template(&["echo", "a{}b"], true);
        let m = t.length_model();
        let mut sums = vec![0; m.strings()];
        m.add_record(&[b"1".to_vec()], 1, 1, &mut sums);
        m.add_record(&[b"22".to_vec()], 1, 1, &mut sums);
        assert_eq!(m.len(&sums, 2, 1), 5 + 2 * 2 + 3 + 1);
    }

    #[test]
    fn x_spreads_the_last_line_over_the_slots_once() {
        let values: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let t = template(&["echo"], true);
        assert_eq!(
            lines(fill(&t, None, Some(4)), &values),
            ["1 2 3", "4 5 6", "7 8 9", "10"]
        );
        assert_eq!(
            lines(fill(&t, None, None), &values),
            ["1 2 3 4 5 6 7 8 9 10"]
        );
        // -n2 -j4: full lines until the end, then the last one spread.
        assert_eq!(
            lines(fill(&t, Some(2), Some(4)), &values),
            ["1 2", "3 4", "5 6", "7 8", "9", "10"]
        );
    }

    #[test]
    fn a_line_stops_below_the_usable_length_and_a_record_too_long_is_an_error() {
        let t = template(&["echo"], false);
        let mut f = fill(&t, None, None);
        f.max_chars = Some(5000);
        let a = "a".repeat(2000);
        let got = lines(f.clone(), &[&a, &a, &a, &a]);
        assert_eq!(
            got.len(),
            2,
            "two of 2000 bytes fit under 5000, three do not"
        );
        let big = "b".repeat(6000);
        let mut all = f.lines(rows(&["x", &big]));
        let first = all.next().unwrap();
        assert!(first.is_ok(), "x fits: {first:?}");
        match all.next() {
            Some(Err(InputError::TooLong { input, limit, .. })) => {
                assert_eq!((input, limit), (2, 5000));
            }
            other => panic!("expected too long, got {other:?}"),
        }
    }
}
