//! Parallel gzip, built as pigz builds it, on [`Pipeline`]: a reader cuts the input into
//! blocks (128 KiB by default), N compressors deflate them at once, each block primed with
//! the last 32 KiB of the one before (so the output is as small as one stream's), and the
//! sink writes them in input order behind one gzip header, then the CRC-32 (combined from
//! the blocks' own) and the length. Every block but the last ends with a sync flush, which
//! byte-aligns it, so the blocks concatenate into one valid deflate stream that `gunzip`
//! restores byte for byte. The permits of an ordered pipeline are the bounded pool of
//! buffers: at most a few dozen blocks are in memory, whatever the input's size.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::{Cancel, Model, Pipeline, Report, Stage};

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipOptions {
    /// 0 (store) to 9 (smallest); gzip's default is 6.
    pub level: u32,
    /// Compressing workers.
    pub workers: usize,
    /// Bytes per block.
    pub block: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        GzipOptions {
            level: 6,
            workers: crate::cores::allowed(),
            block: 128 * 1024,
        }
    }
}

/// What compressing did.
#[derive(Debug, Clone)]
pub struct GzipSummary {
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written (header and trailer included).
    pub bytes_out: u64,
    /// The pipeline's figures: read, compress, in-order write.
    pub report: Report,
}

/// Why compressing stopped.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The input could not be read.
    #[error("reading the input: {0}")]
    Read(io::Error),
    /// The output could not be written.
    #[error("writing the output: {0}")]
    Write(io::Error),
    /// A block could not be compressed.
    #[error("compressing: {0}")]
    Compress(String),
    /// Cancelled (Ctrl-C) before the end.
    #[error("cancelled before the end of the input")]
    Cancelled,
    /// A bad level.
    #[error("level {0}: gzip levels are 0 to 9")]
    Level(u32),
    /// The pipeline could not start.
    #[error(transparent)]
    Pipeline(#[from] crate::PipelineError),
    /// A directory to compress, with no `-o OUTDIR` to put its files in.
    #[error("{}: a directory needs -o OUTDIR (its files go there as FILE.gz)", .0.display())]
    DirectoryNeedsOutput(PathBuf),
    /// One output named for several inputs.
    #[error("-o {}: with several inputs, leave -o out (each INPUT becomes INPUT.gz)", .0.display())]
    OneOutputForSeveral(PathBuf),
    /// A file or directory could not be created, listed or renamed.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done: `creating`, `listing`, `renaming to`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// Compresses `input` into the file `path`, writing under a temporary name beside it
/// (`.NAME.conlab-PID.tmp`) and renaming it to `path` only when complete: a failure or a
/// cancel removes it, so nothing partial ever sits under the final name.
pub fn compress_to_file(
    input: impl Read + Send,
    path: &Path,
    options: GzipOptions,
    cancel: &Cancel,
) -> Result<GzipSummary, GzipError> {
    let file_error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| GzipError::File {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error("creating", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.conlab-{}.tmp", std::process::id()));
    let file = std::fs::File::create(&temp).map_err(file_error("creating", &temp))?;
    let result = compress(
        input,
        io::BufWriter::with_capacity(1 << 20, file),
        options,
        cancel,
    )
    .and_then(|summary| {
        std::fs::rename(&temp, path).map_err(file_error("renaming to", path))?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// What to compress into what: `-` is standard input, and an output of `None` standard
/// output.
pub type Job = (PathBuf, Option<PathBuf>);

/// The jobs for `inputs` and an optional `-o`: each file to `FILE.gz` beside it (or to `-o`
/// when it is the only input; `-o -` is standard output), standard input to standard output
/// unless `-o` names a file, each file under a directory to `OUTDIR/RELATIVE.gz`.
pub fn plan(inputs: &[PathBuf], output: Option<&Path>) -> Result<Vec<Job>, GzipError> {
    let with_gz = |path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".gz");
        PathBuf::from(name)
    };
    let mut jobs = Vec::new();
    for input in inputs {
        let is_dir = input.as_os_str() != "-"
            && std::fs::metadata(input)
                .map_err(|source| GzipError::File {
                    action: "reading",
                    path: input.clone(),
                    source,
                })?
                .is_dir();
        if is_dir {
            let out_dir = output.ok_or_else(|| GzipError::DirectoryNeedsOutput(input.clone()))?;
            for file in files_under(input)? {
                let relative = file.strip_prefix(input).unwrap_or(&file);
                jobs.push((file.clone(), Some(with_gz(&out_dir.join(relative)))));
            }
            continue;
        }
        let target = match output {
            Some(o) if inputs.len() > 1 => {
                return Err(GzipError::OneOutputForSeveral(o.to_path_buf()));
            }
            Some(o) if o.as_os_str() == "-" => None,
            Some(o) => Some(o.to_path_buf()),
            None if input.as_os_str() == "-" => None,
            None => Some(with_gz(input)),
        };
        jobs.push((input.clone(), target));
    }
    Ok(jobs)
}

/// Every regular file under `dir`, recursively, sorted: a directory's files, compressed one
/// after the other.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, GzipError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = |source| GzipError::File {
            action: "listing",
            path: d.clone(),
            source,
        };
        for entry in std::fs::read_dir(&d).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let kind = entry.file_type().map_err(listing)?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The window deflate may refer back to: the dictionary each block starts with.
const WINDOW: usize = 32 * 1024;

/// One block on its way through the pipeline.
struct Block {
    data: Vec<u8>,
    /// The end of the block before (up to 32 KiB).
    dictionary: Vec<u8>,
    last: bool,
    deflated: Vec<u8>,
    crc: Crc,
}

/// Compresses `input` into `output` as one gzip member.
pub fn compress(
    input: impl Read + Send,
    mut output: impl Write + Send,
    options: GzipOptions,
    cancel: &Cancel,
) -> Result<GzipSummary, GzipError> {
    if options.level > 9 {
        return Err(GzipError::Level(options.level));
    }
    let level = options.level;
    let read_error: Arc<Mutex<Option<io::Error>>> = Arc::default();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let blocks = Blocks {
        input,
        size: options.block.max(1024),
        next: None,
        previous_tail: Vec::new(),
        started: false,
        done: false,
        error: Arc::clone(&read_error),
        read: Arc::clone(&bytes_in),
    };
    let stage = Stage::func(
        "compress",
        options.workers.max(1),
        move |_, block: Block| deflate(block, level),
    );
    let pipeline = Pipeline::new(vec![stage])
        .ordered(true)
        .queue(options.workers.max(1) * 2);
    // gzip's header: magic, deflate, no flags, no time, extra flags, OS = Unix.
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let mut write_error: Option<io::Error> = None;
    let mut bytes_out = 0u64;
    let mut total = Crc::new();
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3];
    if let Err(e) = output.write_all(&header) {
        return Err(GzipError::Write(e));
    }
    bytes_out += header.len() as u64;
    let report = pipeline.run(blocks, Model::Threads, cancel, |_, block: Block| {
        if write_error.is_some() {
            return;
        }
        match output.write_all(&block.deflated) {
            Ok(()) => {
                bytes_out += block.deflated.len() as u64;
                total.combine(&block.crc);
            }
            Err(e) => {
                write_error = Some(e);
                cancel.cancel();
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(GzipError::Write(e));
    }
    if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(GzipError::Read(e));
    }
    if let Some(failure) = &report.failure {
        return Err(GzipError::Compress(failure.to_string()));
    }
    if report.cancelled || report.items_out != report.items_in {
        return Err(GzipError::Cancelled);
    }
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&total.sum().to_le_bytes());
    trailer[4..].copy_from_slice(&total.amount().to_le_bytes());
    output
        .write_all(&trailer)
        .and_then(|()| output.flush())
        .map_err(GzipError::Write)?;
    bytes_out += 8;
    Ok(GzipSummary {
        bytes_in: bytes_in.load(Ordering::Relaxed),
        bytes_out,
        report,
    })
}

/// Deflates one block: raw deflate primed with the dictionary, ended with a sync flush (or,
/// for the last block, the stream's end).
fn deflate(mut block: Block, level: u32) -> Result<Block, String> {
    let mut z = Compress::new(Compression::new(level), false);
    if !block.dictionary.is_empty() {
        z.set_dictionary(&block.dictionary)
            .map_err(|e| format!("setting the dictionary: {e}"))?;
    }
    let flush = if block.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.data.len() / 2 + 1024);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .compress_vec(&block.data[in_before as usize..], &mut out, flush)
            .map_err(|e| e.to_string())?;
        if status == Status::StreamEnd {
            break;
        }
        // zlib's rule: a sync flush is complete when all input is in and the call left
        // output room unused.
        let all_in = z.total_in() as usize == block.data.len();
        if !block.last && all_in && out.len() < out.capacity() {
            break;
        }
        if z.total_in() == in_before && z.total_out() == out_before && out.len() < out.capacity() {
            return Err("deflate made no progress".into());
        }
    }
    let mut crc = Crc::new();
    crc.update(&block.data);
    block.crc = crc;
    block.deflated = out;
    block.data = Vec::new();
    block.dictionary = Vec::new();
    Ok(block)
}

/// The reader: blocks of the input, each knowing whether it is the last (one block of
/// read-ahead) and carrying the end of the one before as its dictionary.
struct Blocks<R> {
    input: R,
    size: usize,
    next: Option<Vec<u8>>,
    previous_tail: Vec<u8>,
    started: bool,
    done: bool,
    error: Arc<Mutex<Option<io::Error>>>,
    read: Arc<AtomicU64>,
}

impl<R: Read> Blocks<R> {
    /// Reads up to one block; `None` at the end of the input or on an error (kept).
    fn read_block(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; self.size];
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    self.done = true;
                    return None;
                }
            }
        }
        if filled == 0 {
            return None;
        }
        buf.truncate(filled);
        self.read.fetch_add(filled as u64, Ordering::Relaxed);
        Some(buf)
    }
}

impl<R: Read> Iterator for Blocks<R> {
    type Item = Block;

    fn next(&mut self) -> Option<Block> {
        if self.done {
            return None;
        }
        let current = match self.next.take() {
            Some(b) => b,
            None if !self.started => {
                self.started = true;
                // An empty input is one empty last block: gzip's empty member.
                self.read_block().unwrap_or_default()
            }
            None => return None,
        };
        self.started = true;
        if self.done {
            return None;
        }
        self.next = self.read_block();
        if self.done {
            return None;
        }
        let last = self.next.is_none();
        let dictionary = std::mem::take(&mut self.previous_tail);
        self.previous_tail = current[current.len().saturating_sub(WINDOW)..].to_vec();
        if last {
            self.done = true;
        }
        Some(Block {
            data: current,
            dictionary,
            last,
            deflated: Vec::new(),
            crc: Crc::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn roundtrip(data: &[u8], options: GzipOptions) -> Vec<u8> {
        let mut gz = Vec::new();
        let summary = compress(data, &mut gz, options, &Cancel::default()).unwrap();
        assert_eq!(summary.bytes_out, gz.len() as u64);
        let mut back = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn empty_one_byte_and_block_boundaries_round_trip() {
        let options = GzipOptions {
            level: 6,
            workers: 3,
            block: 1024,
        };
        let text: Vec<u8> = (0..10_000u32)
            .flat_map(|i| format!("line {i} of the manuals\n").into_bytes())
            .collect();
        for len in [0, 1, 1023, 1024, 1025, 2048, 4097, 50_000, text.len()] {
            assert_eq!(
                roundtrip(&text[..len], options),
                &text[..len],
                "{len} bytes"
            );
        }
        for level in [0, 1, 9] {
            let options = GzipOptions { level, ..options };
            assert_eq!(roundtrip(&text, options), text, "level {level}");
        }
    }

    #[test]
    fn the_dictionary_keeps_the_output_as_small_as_one_stream() {
        // Log-like text: words drawn by a small generator, 2 MB.
        let words = [
            "GET",
            "POST",
            "/index.html",
            "200",
            "404",
            "gopher",
            "cart",
            "pile",
        ];
        let mut x = 12345u64;
        let text: Vec<u8> = (0..300_000)
            .flat_map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("{} {} {}\n", i, words[(x >> 60) as usize % 8], x >> 44).into_bytes()
            })
            .collect();
        let mut ours = Vec::new();
        compress(
            &text[..],
            &mut ours,
            GzipOptions::default(),
            &Cancel::default(),
        )
        .unwrap();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&text).unwrap();
        let one = one.finish().unwrap();
        assert!(
            (ours.len() as f64) < one.len() as f64 * 1.01,
            "{} vs one stream {}",
            ours.len(),
            one.len()
        );
    }

    #[test]
    fn the_plan_puts_each_input_where_gzip_would() {
        let dir = std::env::temp_dir().join(format!("conlab-gzip-plan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d/sub")).unwrap();
        std::fs::write(dir.join("a"), "x").unwrap();
        std::fs::write(dir.join("d/sub/b"), "y").unwrap();
        let p = |s: &str| dir.join(s);
        assert_eq!(plan(&[p("a")], None).unwrap(), [(p("a"), Some(p("a.gz")))]);
        assert_eq!(
            plan(&[p("a")], Some(Path::new("-"))).unwrap(),
            [(p("a"), None)]
        );
        assert_eq!(plan(&["-".into()], None).unwrap(), [("-".into(), None)]);
        assert_eq!(
            plan(&[p("d")], Some(&p("out"))).unwrap(),
            [(p("d/sub/b"), Some(p("out/sub/b.gz")))]
        );
        assert!(matches!(
            plan(&[p("d")], None),
            Err(GzipError::DirectoryNeedsOutput(_))
        ));
        assert!(matches!(
            plan(&[p("a"), p("a")], Some(&p("x"))),
            Err(GzipError::OneOutputForSeveral(_))
        ));
        assert!(
            plan(&[p("missing")], None)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_read_error_is_reported_not_a_short_file() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                buf[..n].fill(b'a');
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let e = compress(
            Failing(300_000),
            &mut out,
            GzipOptions::default(),
            &Cancel::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }
}
