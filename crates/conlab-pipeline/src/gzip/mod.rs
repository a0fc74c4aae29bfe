//! Parallel gzip, built as pigz builds it, on [`Pipeline`]: a reader cuts the input into
//! blocks (128 KiB by default), N compressors deflate them at once, each block primed with
//! the last 32 KiB of the one before (so the output is as small as one stream's), and the
//! sink writes them in input order behind one gzip header, then the CRC-32 (combined from
//! the blocks' own) and the length. Every block but the last ends with a sync flush, which
//! byte-aligns it, so the blocks concatenate into one valid deflate stream that `gunzip`
//! restores byte for byte; a block that deflate would make larger is stored instead. The
//! permits of an ordered pipeline are the bounded pool of buffers: at most a few dozen
//! blocks are in memory, whatever the input's size. Several inputs (a directory's files)
//! are one stream of blocks through the same pipeline, each file its own gzip member in its
//! own output; one that cannot be read is reported and the others go on, as with gzip.
//! [`plan`] decides what goes where; [`files`] writes the outputs.

mod files;
mod plan;

pub use files::Unfinished;
pub use plan::{Job, Plan, files_under, plan};

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::{Cancel, Model, Pipeline, Report, Stage};

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipOptions {
    /// 0 (store) to 9 (smallest); gzip's default is 6.
    pub level: u32,
    /// Compressing workers (at most [`MAX_WORKERS`] are started).
    pub workers: usize,
    /// Bytes per block.
    pub block: usize,
}

/// The most compressors started: more than a few per core only queue for the cores, and a
/// thread each for pigz's `-p 65535` would not start at all.
pub const MAX_WORKERS: usize = 256;

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
#[derive(Debug)]
pub struct GzipSummary {
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written (headers and trailers included).
    pub bytes_out: u64,
    /// The pipeline's figures: read, compress, in-order write.
    pub report: Report,
    /// The inputs that could not be compressed, in order (their outputs were removed); the
    /// others were.
    pub failures: Vec<GzipError>,
}

/// Why compressing stopped, or why one input was left out.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The input could not be read.
    #[error("reading the input")]
    Read(#[source] io::Error),
    /// The output could not be written.
    #[error("writing the output")]
    Write(#[source] io::Error),
    /// A block could not be compressed.
    #[error("compressing: {0}")]
    Compress(String),
    /// Cancelled (Ctrl-C) before the end; the output then being written (removed), if a
    /// file.
    #[error("cancelled before the end of the input{}", .0.as_ref().map(|p| format!("; {} not written", p.display())).unwrap_or_default())]
    Cancelled(Option<PathBuf>),
    /// A bad level.
    #[error("level {0}: gzip levels are 0 to 9")]
    Level(u32),
    /// The pipeline could not start.
    #[error(transparent)]
    Pipeline(#[from] crate::PipelineError),
    /// A file named to compress that is compressed already, by its name.
    #[error("{} already has the .gz suffix; not compressed (-f compresses it to FILE.gz.gz)", .0.display())]
    HasGzSuffix(PathBuf),
    /// A symbolic link, without `-f`.
    #[error("{} is a symbolic link; not compressed (-f follows it)", .0.display())]
    SymbolicLink(PathBuf),
    /// A symbolic link to a directory, under a directory: never followed (it could loop).
    #[error("{} is a symbolic link to a directory; not followed", .0.display())]
    LinkedDirectory(PathBuf),
    /// Neither a file nor a directory (a FIFO, a socket), under a directory.
    #[error("{} is not a directory or a regular file; ignored", .0.display())]
    NotAFile(PathBuf),
    /// A directory to compress into something that is not a directory.
    #[error("{}: -o {} is not a directory", .0.display(), .1.display())]
    DirectoryIntoFile(PathBuf, PathBuf),
    /// An output is already there, and overwriting was not asked for.
    #[error("{} already exists; not overwritten (-f overwrites)", .0.display())]
    Exists(PathBuf),
    /// An output that is its own input.
    #[error("{} is its own input; not compressed", .0.display())]
    SameFile(PathBuf),
    /// Standard input into an output directory.
    #[error("standard input has no name to put in an output directory; give -o FILE")]
    StdinHasNoName,
    /// One output named for several inputs.
    #[error("-o {}: with several inputs, leave -o out (each INPUT becomes INPUT.gz) or name a directory (-o DIR/)", .0.display())]
    OneOutputForSeveral(PathBuf),
    /// A file or directory could not be read, created, listed or renamed.
    #[error("{action} {}", path.display())]
    File {
        /// What was being done: `reading`, `writing`, `creating`, `opening`, `listing`,
        /// `renaming to`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl GzipError {
    /// The error of doing `action` (`reading`, `creating`, ...) to `path`, for `map_err`.
    pub(crate) fn at(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> GzipError {
        let path = path.to_path_buf();
        move |source| GzipError::File {
            action,
            path,
            source,
        }
    }

    /// gzip's exit status for an input left out this way: 2 (a warning) for an output
    /// already there, a link to a directory or what is not a file, 0 for a name that ends
    /// in `.gz` (gzip only notes it), 1 for the rest.
    pub fn exit_status(&self) -> u8 {
        match self {
            GzipError::Exists(_) | GzipError::LinkedDirectory(_) | GzipError::NotAFile(_) => 2,
            GzipError::HasGzSuffix(_) => 0,
            _ => 1,
        }
    }
}

/// gzip's exit status for a run with these inputs left out or failed: 1 if any was an
/// error, else 2 if any was a warning, else 0.
pub fn exit_status<'a>(problems: impl IntoIterator<Item = &'a GzipError>) -> u8 {
    problems
        .into_iter()
        .map(GzipError::exit_status)
        .fold(0, |worst, s| {
            if worst == 1 || s == 1 {
                1
            } else {
                worst.max(s)
            }
        })
}

/// pigz's `-b`: a number counts KiB (`128`); a number with a unit (`512k`, `1M`, `1g`, in
/// either case) is binary, since a block size is never decimal. 32 KiB to 1 GiB, else `None`.
pub fn parse_block_size(text: &str) -> Option<usize> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit {
        "" | "k" | "K" | "KiB" => 10,
        "m" | "M" | "MiB" => 20,
        "g" | "G" | "GiB" => 30,
        _ => return None,
    };
    let bytes = number.parse::<u64>().ok()?.checked_shl(shift)?;
    (32 * 1024..=1 << 30)
        .contains(&bytes)
        .then(|| usize::try_from(bytes).ok())
        .flatten()
}

/// The window deflate may refer back to: the dictionary each block starts with.
const WINDOW: usize = 32 * 1024;

/// One block on its way through the pipeline.
struct Block {
    /// Which input (and gzip member) it belongs to.
    member: usize,
    data: Vec<u8>,
    /// The end of the block before in the same member (up to 32 KiB).
    dictionary: Vec<u8>,
    first: bool,
    last: bool,
    /// The input failed here: the member is abandoned (the block carries no data).
    fault: Option<Fault>,
    deflated: Vec<u8>,
    crc: Crc,
}

/// Compresses `input` into `output` as one gzip member.
pub fn compress(
    input: impl Read + Send,
    output: impl Write + Send,
    options: GzipOptions,
    cancel: &Cancel,
) -> Result<GzipSummary, GzipError> {
    struct One<W>(Option<W>);
    impl<W: Write> Members for One<W> {
        type Out = W;
        fn open(&mut self, _: usize) -> Result<W, GzipError> {
            self.0
                .take()
                .ok_or(GzipError::Compress("a second member for one output".into()))
        }
        fn close(&mut self, _: usize, mut out: W) -> Result<(), GzipError> {
            out.flush().map_err(GzipError::Write)
        }
        fn abandon(&mut self, _: usize, _: W) -> Option<PathBuf> {
            None
        }
        fn write_error(&self, _: usize, e: io::Error) -> GzipError {
            GzipError::Write(e)
        }
    }
    compress_members(
        std::iter::once(Ok(input)),
        &mut One(Some(output)),
        |_, e| GzipError::Read(e),
        false,
        options,
        cancel,
    )
}

/// Compresses each job's input into its output as one stream through one pipeline: the
/// compressors go on from one file's blocks to the next file's without draining, and files
/// smaller than a block are compressed side by side, so a directory of many small files
/// keeps every worker busy. Each file is its own gzip member and its own file (see
/// [`files`]: a temporary name, the input's permissions and times, never replacing an
/// output without `force`). An input that cannot be read, or an output that cannot be
/// made, is a failure of that file alone ([`GzipSummary::failures`]), as with gzip; a write
/// that fails (a full disk) stops the run. `unfinished` lets a signal handler remove the
/// file being written before it exits.
pub fn compress_jobs(
    jobs: &[Job],
    force: bool,
    options: GzipOptions,
    cancel: &Cancel,
    unfinished: &Unfinished,
) -> Result<GzipSummary, GzipError> {
    let inputs = jobs
        .iter()
        .map(|job| -> Result<Box<dyn Read + Send>, GzipError> {
            if job.input.as_os_str() == "-" {
                return Ok(Box::new(io::stdin()));
            }
            std::fs::File::open(&job.input)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(GzipError::at("reading", &job.input))
        });
    let read_error = |member: usize, source| GzipError::at("reading", &jobs[member].input)(source);
    let mut files = files::Files {
        jobs,
        force,
        unfinished: unfinished.clone(),
    };
    compress_members(inputs, &mut files, read_error, true, options, cancel)
}

/// Where each member's compressed bytes go.
trait Members {
    type Out: Write;
    /// The output of member `i`, when its first block is ready to write.
    fn open(&mut self, i: usize) -> Result<Self::Out, GzipError>;
    /// Member `i` is complete.
    fn close(&mut self, i: usize, out: Self::Out) -> Result<(), GzipError>;
    /// Member `i` will not be completed: undo what `open` made; the path not written.
    fn abandon(&mut self, i: usize, out: Self::Out) -> Option<PathBuf>;
    /// A failed write to member `i`, as the caller names it.
    fn write_error(&self, i: usize, e: io::Error) -> GzipError;
}

/// What went wrong in the sink: one member's output (`keep_going` goes on to the next), or
/// everything (a write that failed).
enum SinkError {
    Member(GzipError),
    Fatal(GzipError),
}

/// The engine: every input's blocks through one ordered pipeline of compressors, each
/// member written behind its own header and closed by its own CRC-32 and length. With
/// `keep_going`, a member that fails is abandoned and the run goes on to the next.
fn compress_members<R, M>(
    inputs: impl Iterator<Item = Result<R, GzipError>> + Send,
    members: &mut M,
    read_error: impl Fn(usize, io::Error) -> GzipError + Send + Sync,
    keep_going: bool,
    options: GzipOptions,
    cancel: &Cancel,
) -> Result<GzipSummary, GzipError>
where
    R: Read + Send,
    M: Members + Send,
    M::Out: Send,
{
    if options.level > 9 {
        return Err(GzipError::Level(options.level));
    }
    let level = options.level;
    let workers = options.workers.clamp(1, MAX_WORKERS);
    let bytes_in = Arc::new(AtomicU64::new(0));
    let blocks = Blocks {
        inputs,
        input: None,
        opened: 0,
        member: 0,
        at_first: false,
        size: options.block.max(1024),
        next: None,
        previous_tail: Vec::new(),
        done: false,
        read: Arc::clone(&bytes_in),
    };
    let stage = Stage::func("compress", workers, move |_, block: Block| {
        if block.fault.is_some() {
            return Ok(block);
        }
        deflate(block, level)
    });
    let pipeline = Pipeline::new(vec![stage]).ordered(true).queue(workers * 2);
    // gzip's header: magic, deflate, no flags, no time, extra flags, OS = Unix.
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3];
    let mut fatal: Option<GzipError> = None;
    let mut failures = Vec::new();
    let mut bytes_out = 0u64;
    // The member being written: its index, output and CRC so far.
    let mut open: Option<(usize, M::Out, Crc)> = None;
    // A member whose output failed: the rest of its blocks are dropped.
    let mut skipping: Option<usize> = None;
    let report = pipeline.run(blocks, Model::Threads, cancel, |_, mut block: Block| {
        if fatal.is_some() {
            return;
        }
        if skipping == Some(block.member) {
            if block.last {
                skipping = None;
            }
            return;
        }
        let step = (|| -> Result<(), SinkError> {
            if let Some(fault) = block.fault.take() {
                return Err(SinkError::Member(match fault {
                    Fault::Open(e) => e,
                    Fault::Read(e) => read_error(block.member, e),
                }));
            }
            if block.first {
                let mut out = members.open(block.member).map_err(SinkError::Member)?;
                out.write_all(&header)
                    .map_err(|e| SinkError::Fatal(members.write_error(block.member, e)))?;
                bytes_out += header.len() as u64;
                open = Some((block.member, out, Crc::new()));
            }
            let Some((i, out, crc)) = open.as_mut() else {
                return Err(SinkError::Fatal(GzipError::Compress(
                    "a block before its member's first".into(),
                )));
            };
            out.write_all(&block.deflated)
                .map_err(|e| SinkError::Fatal(members.write_error(*i, e)))?;
            bytes_out += block.deflated.len() as u64;
            crc.combine(&block.crc);
            if block.last {
                let (i, mut out, crc) = open.take().expect("a member is open");
                let mut trailer = [0u8; 8];
                trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
                trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
                if let Err(e) = out.write_all(&trailer) {
                    open = Some((i, out, crc));
                    return Err(SinkError::Fatal(members.write_error(i, e)));
                }
                bytes_out += 8;
                members.close(i, out).map_err(|e| match e {
                    GzipError::File {
                        action: "writing", ..
                    }
                    | GzipError::Write(_) => SinkError::Fatal(e),
                    other => SinkError::Member(other),
                })?;
            }
            Ok(())
        })();
        match step {
            Ok(()) => {}
            Err(SinkError::Member(e)) if keep_going && !matches!(e, GzipError::Cancelled(_)) => {
                if let Some((i, out, _)) = open.take() {
                    members.abandon(i, out);
                }
                if !block.last {
                    skipping = Some(block.member);
                }
                failures.push(e);
            }
            Err(SinkError::Member(e) | SinkError::Fatal(e)) => {
                fatal = Some(e);
                cancel.cancel();
            }
        }
    })?;
    let unfinished = open.take().and_then(|(i, out, _)| members.abandon(i, out));
    if let Some(e) = fatal {
        return Err(e);
    }
    if let Some(failure) = &report.failure {
        return Err(GzipError::Compress(failure.to_string()));
    }
    if report.cancelled || report.items_out != report.items_in {
        return Err(GzipError::Cancelled(unfinished));
    }
    Ok(GzipSummary {
        bytes_in: bytes_in.load(Ordering::Relaxed),
        bytes_out,
        report,
        failures,
    })
}

/// Deflates one block: raw deflate primed with the dictionary, ended with a sync flush (or,
/// for the last block, the stream's end). When that would be larger than the block itself
/// (incompressible data, where zlib-rs's fastest level adds 5%), the block is stored.
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
    if out.len() > stored_len(block.data.len()) {
        out = stored(&block.data, block.last);
    }
    let mut crc = Crc::new();
    crc.update(&block.data);
    block.crc = crc;
    block.deflated = out;
    block.data = Vec::new();
    block.dictionary = Vec::new();
    Ok(block)
}

/// The most bytes a stored block may carry (RFC 1951, 3.2.4).
const STORED_MAX: usize = 65_535;

/// The length of `len` bytes as stored deflate blocks.
fn stored_len(len: usize) -> usize {
    len + 5 * len.div_ceil(STORED_MAX).max(1)
}

/// `data` as stored deflate blocks, starting on a byte boundary (every block before ends
/// with a sync flush, which aligns it) and ending on one; the last is final when `last`.
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored_len(data.len()));
    let mut chunks: Vec<&[u8]> = data.chunks(STORED_MAX).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let n = chunks.len();
    for (k, chunk) in chunks.into_iter().enumerate() {
        // BFINAL, BTYPE 00, and five bits of padding to the byte's end.
        out.push(u8::from(last && k + 1 == n));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// What stopped the reader on one input.
enum Fault {
    /// The input could not be opened (the error names it).
    Open(GzipError),
    /// The input failed mid-read.
    Read(io::Error),
}

/// The reader: the inputs one after the other, each cut into blocks that know whether they
/// are their member's first or last (one block of read-ahead) and carry the end of the block
/// before as their dictionary. Inputs are opened one at a time, when the one before ends;
/// one that fails becomes a block carrying the fault, in its place in the order.
struct Blocks<I, R> {
    inputs: I,
    /// The input being read, `None` between inputs.
    input: Option<R>,
    /// Inputs opened so far.
    opened: usize,
    /// The member the input being read belongs to.
    member: usize,
    /// The next block is its member's first.
    at_first: bool,
    size: usize,
    next: Option<Vec<u8>>,
    previous_tail: Vec<u8>,
    done: bool,
    read: Arc<AtomicU64>,
}

impl<I, R: Read> Blocks<I, R> {
    /// Reads up to one block; `None` at the end of the input.
    fn read_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(input) = self.input.as_mut() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; self.size];
        let mut filled = 0;
        while filled < buf.len() {
            match input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        self.read.fetch_add(filled as u64, Ordering::Relaxed);
        Ok(Some(buf))
    }

    /// The block that ends member `member` with `fault`.
    fn failed(&mut self, fault: Fault) -> Block {
        self.input = None;
        self.next = None;
        let first = std::mem::take(&mut self.at_first);
        Block {
            member: self.member,
            data: Vec::new(),
            dictionary: Vec::new(),
            first,
            last: true,
            fault: Some(fault),
            deflated: Vec::new(),
            crc: Crc::new(),
        }
    }
}

impl<I, R> Iterator for Blocks<I, R>
where
    I: Iterator<Item = Result<R, GzipError>>,
    R: Read,
{
    type Item = Block;

    fn next(&mut self) -> Option<Block> {
        if self.done {
            return None;
        }
        if self.input.is_none() {
            let opened = self.inputs.next();
            self.member = self.opened;
            self.opened += 1;
            self.at_first = true;
            self.previous_tail.clear();
            match opened {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => return Some(self.failed(Fault::Open(e))),
                Some(Ok(input)) => {
                    self.input = Some(input);
                    match self.read_block() {
                        Ok(block) => self.next = block,
                        Err(e) => return Some(self.failed(Fault::Read(e))),
                    }
                }
            }
        }
        // An empty input is one empty last block: gzip's empty member.
        let current = self.next.take().unwrap_or_default();
        match self.read_block() {
            Ok(block) => self.next = block,
            Err(e) => return Some(self.failed(Fault::Read(e))),
        }
        let last = self.next.is_none();
        if last {
            // The next call opens the next input.
            self.input = None;
        }
        let dictionary = std::mem::take(&mut self.previous_tail);
        self.previous_tail = current[current.len().saturating_sub(WINDOW)..].to_vec();
        Some(Block {
            member: self.member,
            data: current,
            dictionary,
            first: std::mem::take(&mut self.at_first),
            last,
            fault: None,
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

    fn gunzip(path: &std::path::Path) -> Vec<u8> {
        let mut back = Vec::new();
        GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    fn job(input: PathBuf, output: PathBuf) -> Job {
        Job {
            input,
            output: Some(output),
            make_dirs: true,
        }
    }

    fn run(jobs: &[Job], force: bool) -> Result<GzipSummary, GzipError> {
        compress_jobs(
            jobs,
            force,
            GzipOptions::default(),
            &Cancel::default(),
            &Unfinished::default(),
        )
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conlab-gzip-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn many_files_go_through_one_stream_each_to_its_own_member() {
        let dir = scratch("jobs");
        std::fs::create_dir_all(dir.join("in")).unwrap();
        // Sizes around the block (1 KiB here), an empty file, and one of many blocks.
        let sizes = [0usize, 1, 1023, 1024, 1025, 5000, 100, 0, 40_000];
        let mut jobs = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8 % 61 + 32).collect();
            let input = dir.join(format!("in/{i}"));
            std::fs::write(&input, &data).unwrap();
            jobs.push(job(input, dir.join(format!("out/{i}.gz"))));
        }
        let options = GzipOptions {
            level: 6,
            workers: 3,
            block: 1024,
        };
        let summary = compress_jobs(
            &jobs,
            false,
            options,
            &Cancel::default(),
            &Unfinished::default(),
        )
        .unwrap();
        assert!(summary.failures.is_empty());
        let mut total_out = 0;
        for job in &jobs {
            let output = job.output.as_ref().unwrap();
            let input = std::fs::read(&job.input).unwrap();
            assert_eq!(gunzip(output), input, "{}", job.input.display());
            total_out += std::fs::metadata(output).unwrap().len();
        }
        assert_eq!(summary.bytes_in, sizes.iter().sum::<usize>() as u64);
        assert_eq!(summary.bytes_out, total_out);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_input_that_fails_is_that_files_failure_and_the_others_go_on() {
        let dir = scratch("miss");
        std::fs::write(dir.join("a"), "first").unwrap();
        std::fs::write(dir.join("c"), "third").unwrap();
        let jobs = [
            job(dir.join("a"), dir.join("a.gz")),
            job(dir.join("gone"), dir.join("gone.gz")),
            // A directory opens but fails at its first read.
            job(dir.clone(), dir.join("dir.gz")),
            job(dir.join("c"), dir.join("c.gz")),
        ];
        let summary = run(&jobs, false).unwrap();
        let failed: Vec<_> = summary.failures.iter().map(|e| e.to_string()).collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed[0].contains("gone") && failed[1].contains(dir.to_str().unwrap()));
        assert_eq!(gunzip(&dir.join("a.gz")), b"first");
        assert_eq!(gunzip(&dir.join("c.gz")), b"third");
        assert!(!dir.join("gone.gz").exists() && !dir.join("dir.gz").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn outputs_keep_the_inputs_permissions_and_times_and_never_replace_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("meta");
        let secret = dir.join("secret");
        std::fs::write(&secret, "the pile").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&secret)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let out = dir.join("secret.gz");
        run(&[job(secret.clone(), out.clone())], false).unwrap();
        let meta = std::fs::metadata(&out).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.modified().unwrap(), old);
        // A file that appeared under the output's name since the plan is not replaced.
        std::fs::write(&out, "someone else's").unwrap();
        let summary = run(&[job(secret.clone(), out.clone())], false).unwrap();
        assert!(matches!(&summary.failures[..], [GzipError::Exists(p)] if *p == out));
        assert_eq!(std::fs::read(&out).unwrap(), b"someone else's");
        // Forced, it is.
        run(&[job(secret.clone(), out.clone())], true).unwrap();
        assert_eq!(gunzip(&out), b"the pile");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_output_is_written_not_replaced() {
        let jobs = [job("/dev/zero".into(), "/dev/full".into())];
        // /dev/zero never ends: a full device must stop the run with its error.
        let e = run(&jobs, false).unwrap_err();
        assert!(
            matches!(&e, GzipError::File { action: "writing", source, .. }
                if source.raw_os_error() == Some(libc::ENOSPC)),
            "{e:?}"
        );
        let meta = std::fs::metadata("/dev/full").unwrap();
        assert!(!meta.is_file(), "/dev/full is still a device");
    }

    #[test]
    fn an_abandoned_run_removes_the_file_being_written_and_writes_no_other() {
        let dir = scratch("abandon");
        std::fs::write(dir.join("a"), "x").unwrap();
        let unfinished = Unfinished::default();
        assert_eq!(unfinished.abandon(), None);
        let e = compress_jobs(
            &[job(dir.join("a"), dir.join("a.gz"))],
            false,
            GzipOptions::default(),
            &Cancel::default(),
            &unfinished,
        )
        .unwrap_err();
        assert!(matches!(e, GzipError::Cancelled(_)), "{e:?}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "only the input"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn incompressible_blocks_are_stored_not_grown() {
        // A generator's bytes: nothing for deflate to find.
        let mut x = 88172645463325252u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for level in [1, 6, 9] {
            let options = GzipOptions {
                level,
                workers: 2,
                block: 128 * 1024,
            };
            let mut gz = Vec::new();
            compress(&noise[..], &mut gz, options, &Cancel::default()).unwrap();
            assert!(
                gz.len() <= stored_len(noise.len()) + 18 + 10,
                "level {level}: {} for {}",
                gz.len(),
                noise.len()
            );
            assert_eq!(roundtrip(&noise, options), noise, "level {level}");
        }
        // Stored blocks: none, one and several per block; final or not.
        let mut s = stored(&[], true);
        s.extend(b"");
        assert_eq!(s, [1, 0, 0, 0xff, 0xff]);
        assert_eq!(stored(&noise[..70_000], false).len(), stored_len(70_000));
    }

    #[test]
    fn block_sizes_are_pigz_kib_or_binary_units_and_an_error_outranks_a_warning() {
        assert_eq!(parse_block_size("128"), Some(128 * 1024));
        assert_eq!(parse_block_size("64k"), Some(64 * 1024));
        assert_eq!(parse_block_size("1m"), Some(1 << 20));
        assert_eq!(parse_block_size("1M"), Some(1 << 20));
        for bad in ["16", "2G", "x", "", "1.5M", "-1"] {
            assert_eq!(parse_block_size(bad), None, "{bad}");
        }
        let exists = GzipError::Exists("a.gz".into());
        let missing = GzipError::SameFile("b".into());
        let note = GzipError::HasGzSuffix("c.gz".into());
        assert_eq!(exit_status([&note]), 0);
        assert_eq!(exit_status([&note, &exists]), 2);
        assert_eq!(exit_status([&exists, &missing, &note]), 1);
        assert_eq!(exit_status([]), 0);
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
        assert!(
            matches!(&e, GzipError::Read(source) if source.to_string() == "disk on fire"),
            "{e:?}"
        );
    }
}
