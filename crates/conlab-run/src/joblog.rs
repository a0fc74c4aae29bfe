//! The joblog, in GNU parallel's format, so existing tools (and `parallel --resume`) read it:
//! tab-separated `Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`, e.g.
//! `1 : 1795560419.164 0.006 0 2 0 0 echo a` (the runtime right-aligned in 10 columns).
//! A line is written and flushed as each job finishes, so a run stopped by Ctrl-C or a crash
//! leaves a joblog of exactly the jobs that finished; `--resume` then runs the others.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HEADER: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

/// One finished job, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// When it started.
    pub start: SystemTime,
    /// How long it ran.
    pub runtime: Duration,
    /// Bytes of output it produced (stdout + stderr).
    pub received: u64,
    /// Its exit status (-1 when killed by a signal).
    pub exitval: i32,
    /// The signal that killed it, 0 if none.
    pub signal: i32,
    /// The command line (bytes: the inputs need not be UTF-8).
    pub command: Vec<u8>,
}

/// An open joblog.
#[derive(Debug)]
pub struct JobLog {
    file: File,
}

impl JobLog {
    /// Opens `path`: appends when resuming (adding the header to an empty file), else starts
    /// it afresh.
    pub fn open(path: &Path, append: bool) -> io::Result<JobLog> {
        let mut file = if append {
            OpenOptions::new().create(true).append(true).open(path)?
        } else {
            File::create(path)?
        };
        if file.metadata()?.len() == 0 {
            writeln!(file, "{HEADER}")?;
        }
        Ok(JobLog { file })
    }

    /// Writes one line, in one `write`.
    pub fn record(&mut self, e: &Entry) -> io::Result<()> {
        self.file.write_all(&line(e))
    }
}

/// The joblog's header line (`--joblog -` writes it to standard output first).
pub fn header() -> Vec<u8> {
    format!("{HEADER}\n").into_bytes()
}

/// One entry as a joblog line, newline included.
pub fn line(e: &Entry) -> Vec<u8> {
    let start = e
        .start
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut line = format!(
        "{}\t:\t{start:.3}\t{:>10.3}\t0\t{}\t{}\t{}\t",
        e.seq,
        e.runtime.as_secs_f64(),
        e.received,
        e.exitval,
        e.signal,
    )
    .into_bytes();
    line.extend(e.command.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
    line.push(b'\n');
    line
}

/// What an earlier joblog says of each sequence number: its exit value and signal.
pub fn read(path: &Path) -> io::Result<HashMap<u64, (i32, i32)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut done = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 9 {
            continue;
        }
        let (Ok(seq), Ok(exitval), Ok(signal)) =
            (fields[0].parse(), fields[6].parse(), fields[7].parse())
        else {
            continue; // the header, or a torn last line
        };
        done.insert(seq, (exitval, signal));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_gnu_parallels_and_read_back() {
        let path = std::env::temp_dir().join(format!("conlab-joblog-{}", std::process::id()));
        let mut log = JobLog::open(&path, false).unwrap();
        let entry = Entry {
            seq: 2,
            start: UNIX_EPOCH + Duration::from_millis(1_795_560_419_170),
            runtime: Duration::from_millis(6),
            received: 4,
            exitval: 3,
            signal: 0,
            command: b"echo 'b c'".to_vec(),
        };
        log.record(&entry).unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("{HEADER}\n2\t:\t1795560419.170\t     0.006\t0\t4\t3\t0\techo 'b c'\n")
        );
        let mut log = JobLog::open(&path, true).unwrap();
        log.record(&Entry {
            seq: 5,
            exitval: 0,
            ..entry
        })
        .unwrap();
        let done = read(&path).unwrap();
        assert_eq!(done.get(&2), Some(&(3, 0)));
        assert_eq!(done.get(&5), Some(&(0, 0)));
        assert_eq!(
            std::fs::read_to_string(&path)
                .unwrap()
                .matches("Seq")
                .count(),
            1
        );
        std::fs::remove_file(&path).unwrap();
    }
}
