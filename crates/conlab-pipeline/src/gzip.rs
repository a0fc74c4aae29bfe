//! Parallel gzip, built as pigz builds it, on [`Pipeline`]: a reader cuts the input into
//! blocks (128 KiB by default), N compressors deflate them at once, each block primed with
//! the last 32 KiB of the one before (so the output is as small as one stream's), and the
//! sink writes them in input order behind one gzip header, then the CRC-32 (combined from
//! the blocks' own) and the length. Every block but the last ends with a sync flush, which
//! byte-aligns it, so the blocks concatenate into one valid deflate stream that `gunzip`
//! restores byte for byte. The permits of an ordered pipeline are the bounded pool of
//! buffers: at most a few dozen blocks are in memory, whatever the input's size. Several
//! inputs (a directory's files) are one stream of blocks through the same pipeline, each
//! file its own gzip member in its own output.

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
    /// An output is already there, and overwriting was not asked for.
    #[error("{} already exists; not overwritten (-f overwrites)", .0.display())]
    Exists(PathBuf),
    /// One output named for several inputs.
    #[error("-o {}: with several inputs, leave -o out (each INPUT becomes INPUT.gz)", .0.display())]
    OneOutputForSeveral(PathBuf),
    /// A file or directory could not be created, listed or renamed.
    #[error("{action} {}", path.display())]
    File {
        /// What was being done: `reading`, `writing`, `creating`, `listing`, `renaming to`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// What to compress into what: `-` is standard input, and an output of `None` standard
/// output.
pub type Job = (PathBuf, Option<PathBuf>);

/// The jobs for `inputs` and an optional `-o`, as gzip plans them: each file to `FILE.gz`
/// beside it (or to `-o` when it is the only input); `-o -` sends everything to standard
/// output, one member after the other (gzip's `-c`); standard input goes to standard output
/// unless `-o` names a file; each file under a directory goes to `OUTDIR/RELATIVE.gz`, or
/// beside itself without `-o` (gzip's `-r`), and files already ending in `.gz` there are
/// left alone, as gzip -r leaves them. A file named with a `.gz` suffix is refused unless
/// `force` (then it becomes `FILE.gz.gz`), and so is a regular file already under an output's
/// name; a device (`-o /dev/null`) is written to.
pub fn plan(inputs: &[PathBuf], output: Option<&Path>, force: bool) -> Result<Vec<Job>, GzipError> {
    let with_gz = |path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".gz");
        PathBuf::from(name)
    };
    let is_gz = |path: &Path| path.extension().is_some_and(|e| e == "gz");
    let to_stdout = output.is_some_and(|o| o.as_os_str() == "-");
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
            for file in files_under(input)? {
                let target = match output {
                    _ if to_stdout => None,
                    _ if is_gz(&file) => continue,
                    Some(out_dir) => {
                        let relative = file.strip_prefix(input).unwrap_or(&file);
                        Some(with_gz(&out_dir.join(relative)))
                    }
                    None => Some(with_gz(&file)),
                };
                jobs.push((file, target));
            }
            continue;
        }
        let target = match output {
            _ if to_stdout => None,
            Some(o) if inputs.len() > 1 => {
                return Err(GzipError::OneOutputForSeveral(o.to_path_buf()));
            }
            Some(o) => Some(o.to_path_buf()),
            None if input.as_os_str() == "-" => None,
            None if is_gz(input) && !force => return Err(GzipError::HasGzSuffix(input.clone())),
            None => Some(with_gz(input)),
        };
        jobs.push((input.clone(), target));
    }
    if !force
        && let Some(path) = jobs
            .iter()
            .filter_map(|(_, out)| out.as_ref())
            .find(|out| std::fs::metadata(out).is_ok_and(|m| m.is_file()))
    {
        return Err(GzipError::Exists(path.clone()));
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
    /// Which input (and gzip member) it belongs to.
    member: usize,
    data: Vec<u8>,
    /// The end of the block before in the same member (up to 32 KiB).
    dictionary: Vec<u8>,
    first: bool,
    last: bool,
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
        options,
        cancel,
    )
}

/// Compresses each job's input into its output (a file, written under a temporary name
/// beside it, `.NAME.conlab-PID.tmp`, and renamed when complete; or standard output) as one
/// stream through one pipeline: the compressors go on from one file's blocks to the next
/// file's without draining, and files smaller than a block are compressed side by side, so
/// a directory of many small files keeps every worker busy. Each file is its own gzip
/// member and its own file, as `gzip -r` makes them. A failure or a cancel removes the file
/// being written; the files finished before it stay, as gzip leaves them.
pub fn compress_jobs(
    jobs: &[Job],
    options: GzipOptions,
    cancel: &Cancel,
) -> Result<GzipSummary, GzipError> {
    let inputs = jobs
        .iter()
        .map(|(input, _)| -> Result<Box<dyn Read + Send>, GzipError> {
            if input.as_os_str() == "-" {
                return Ok(Box::new(io::stdin()));
            }
            std::fs::File::open(input)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|source| GzipError::File {
                    action: "reading",
                    path: input.clone(),
                    source,
                })
        });
    let read_error = |member: usize, source| GzipError::File {
        action: "reading",
        path: jobs[member].0.clone(),
        source,
    };
    compress_members(
        inputs,
        &mut Files { jobs, temp: None },
        read_error,
        options,
        cancel,
    )
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

/// The members of [`compress_jobs`]: files under temporary names, or standard output.
struct Files<'a> {
    jobs: &'a [Job],
    /// The temporary name of the file being written, and the name it gets when complete.
    temp: Option<(PathBuf, PathBuf)>,
}

impl Members for Files<'_> {
    type Out = Box<dyn Write + Send>;

    fn open(&mut self, i: usize) -> Result<Self::Out, GzipError> {
        let Some(path) = &self.jobs[i].1 else {
            return Ok(Box::new(io::BufWriter::with_capacity(
                1 << 20,
                io::stdout(),
            )));
        };
        let file_error = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| GzipError::File {
                action,
                path,
                source,
            }
        };
        // A device or a pipe (`-o /dev/null`) is written as it is: a rename would put a
        // regular file in its place. A symbolic link is followed, so the file it names is
        // replaced, not the link.
        let mut path = path.clone();
        if let Ok(meta) = std::fs::metadata(&path) {
            if !meta.is_file() {
                let device = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(file_error("opening", &path))?;
                return Ok(Box::new(io::BufWriter::with_capacity(1 << 20, device)));
            }
            path = std::fs::canonicalize(&path).map_err(file_error("resolving", &path))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error("creating", dir))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.conlab-{}.tmp", std::process::id()));
        let file = std::fs::File::create(&temp).map_err(file_error("creating", &temp))?;
        self.temp = Some((temp, path));
        Ok(Box::new(io::BufWriter::with_capacity(1 << 20, file)))
    }

    fn close(&mut self, i: usize, mut out: Self::Out) -> Result<(), GzipError> {
        let flushed = out.flush();
        drop(out);
        let temp = self.temp.take();
        let result = flushed
            .map_err(|e| self.write_error(i, e))
            .and_then(|()| match &temp {
                Some((temp, path)) => {
                    std::fs::rename(temp, path).map_err(|source| GzipError::File {
                        action: "renaming to",
                        path: path.clone(),
                        source,
                    })
                }
                None => Ok(()),
            });
        if result.is_err()
            && let Some((temp, _)) = temp
        {
            let _ = std::fs::remove_file(temp);
        }
        result
    }

    fn abandon(&mut self, i: usize, out: Self::Out) -> Option<PathBuf> {
        drop(out);
        let (temp, _) = self.temp.take()?;
        let _ = std::fs::remove_file(temp);
        self.jobs[i].1.clone()
    }

    fn write_error(&self, i: usize, source: io::Error) -> GzipError {
        match &self.jobs[i].1 {
            Some(path) => GzipError::File {
                action: "writing",
                path: path.clone(),
                source,
            },
            None => GzipError::Write(source),
        }
    }
}

/// The engine: every input's blocks through one ordered pipeline of compressors, each
/// member written behind its own header and closed by its own CRC-32 and length.
fn compress_members<R, M>(
    inputs: impl Iterator<Item = Result<R, GzipError>> + Send,
    members: &mut M,
    read_error: impl Fn(usize, io::Error) -> GzipError,
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
    let fault: Arc<Mutex<Option<Fault>>> = Arc::default();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let blocks = Blocks {
        inputs,
        input: None,
        opened: 0,
        member: 0,
        size: options.block.max(1024),
        next: None,
        previous_tail: Vec::new(),
        done: false,
        fault: Arc::clone(&fault),
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
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3];
    let mut sink_error: Option<GzipError> = None;
    let mut bytes_out = 0u64;
    // The member being written: its index, output and CRC so far.
    let mut open: Option<(usize, M::Out, Crc)> = None;
    let report = pipeline.run(blocks, Model::Threads, cancel, |_, block: Block| {
        if sink_error.is_some() {
            return;
        }
        let step = (|| -> Result<(), GzipError> {
            if block.first {
                let mut out = members.open(block.member)?;
                out.write_all(&header)
                    .map_err(|e| members.write_error(block.member, e))?;
                bytes_out += header.len() as u64;
                open = Some((block.member, out, Crc::new()));
            }
            let Some((i, out, crc)) = open.as_mut() else {
                return Err(GzipError::Compress(
                    "a block before its member's first".into(),
                ));
            };
            out.write_all(&block.deflated)
                .map_err(|e| members.write_error(*i, e))?;
            bytes_out += block.deflated.len() as u64;
            crc.combine(&block.crc);
            if block.last {
                let (i, mut out, crc) = open.take().expect("a member is open");
                let mut trailer = [0u8; 8];
                trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
                trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
                if let Err(e) = out.write_all(&trailer) {
                    open = Some((i, out, crc));
                    return Err(members.write_error(i, e));
                }
                bytes_out += 8;
                members.close(i, out)?;
            }
            Ok(())
        })();
        if let Err(e) = step {
            sink_error = Some(e);
            cancel.cancel();
        }
    })?;
    let unfinished = open.take().and_then(|(i, out, _)| members.abandon(i, out));
    if let Some(e) = sink_error {
        return Err(e);
    }
    match fault.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(Fault::Open(e)) => return Err(e),
        Some(Fault::Read(i, e)) => return Err(read_error(i, e)),
        None => {}
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

/// What stopped the reader.
enum Fault {
    /// An input could not be opened (the error names it).
    Open(GzipError),
    /// Member `i`'s input failed mid-read.
    Read(usize, io::Error),
}

/// The reader: the inputs one after the other, each cut into blocks that know whether they
/// are their member's first or last (one block of read-ahead) and carry the end of the block
/// before as their dictionary. Inputs are opened one at a time, when the one before ends.
struct Blocks<I, R> {
    inputs: I,
    /// The input being read, `None` between inputs.
    input: Option<R>,
    /// Inputs opened so far.
    opened: usize,
    /// The member the input being read belongs to.
    member: usize,
    size: usize,
    next: Option<Vec<u8>>,
    previous_tail: Vec<u8>,
    done: bool,
    fault: Arc<Mutex<Option<Fault>>>,
    read: Arc<AtomicU64>,
}

impl<I, R: Read> Blocks<I, R> {
    fn fail(&mut self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(fault);
        self.done = true;
    }

    /// Reads up to one block; `None` at the end of the input or on an error (kept).
    fn read_block(&mut self) -> Option<Vec<u8>> {
        let input = self.input.as_mut()?;
        let mut buf = vec![0u8; self.size];
        let mut filled = 0;
        while filled < buf.len() {
            match input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(Fault::Read(self.member, e));
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
        let first = self.input.is_none();
        if first {
            match self.inputs.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.fail(Fault::Open(e));
                    return None;
                }
                Some(Ok(input)) => {
                    self.input = Some(input);
                    self.member = self.opened;
                    self.opened += 1;
                    self.previous_tail.clear();
                    self.next = self.read_block();
                }
            }
        }
        // An empty input is one empty last block: gzip's empty member.
        let current = self.next.take().unwrap_or_default();
        if !self.done {
            self.next = self.read_block();
        }
        if self.done {
            return None;
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
            first,
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
        assert_eq!(
            plan(&[p("a")], None, false).unwrap(),
            [(p("a"), Some(p("a.gz")))]
        );
        assert_eq!(
            plan(&[p("a")], Some(Path::new("-")), false).unwrap(),
            [(p("a"), None)]
        );
        assert_eq!(
            plan(&["-".into()], None, false).unwrap(),
            [("-".into(), None)]
        );
        assert_eq!(
            plan(&[p("d")], Some(&p("out")), false).unwrap(),
            [(p("d/sub/b"), Some(p("out/sub/b.gz")))]
        );
        // Without -o a directory's files go beside themselves, leaving .gz files alone (gzip
        // -r); with -o - everything goes to standard output, .gz files too (gzip -rc).
        std::fs::write(dir.join("d/sub/c.gz"), "z").unwrap();
        assert_eq!(
            plan(&[p("d")], None, false).unwrap(),
            [(p("d/sub/b"), Some(p("d/sub/b.gz")))]
        );
        assert_eq!(
            plan(&[p("d"), p("a")], Some(Path::new("-")), false).unwrap(),
            [
                (p("d/sub/b"), None),
                (p("d/sub/c.gz"), None),
                (p("a"), None)
            ]
        );
        assert!(matches!(
            plan(&[p("d/sub/c.gz")], None, false),
            Err(GzipError::HasGzSuffix(_))
        ));
        assert_eq!(
            plan(&[p("d/sub/c.gz")], None, true).unwrap(),
            [(p("d/sub/c.gz"), Some(p("d/sub/c.gz.gz")))]
        );
        assert!(matches!(
            plan(&[p("a"), p("a")], Some(&p("x")), false),
            Err(GzipError::OneOutputForSeveral(_))
        ));
        assert!(
            plan(&[p("missing")], None, false)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
        // An output already there is refused unless forced; a device is written to.
        std::fs::write(dir.join("a.gz"), "old").unwrap();
        assert!(matches!(
            plan(&[p("a")], None, false),
            Err(GzipError::Exists(e)) if e == p("a.gz")
        ));
        assert_eq!(plan(&[p("a")], None, true).unwrap().len(), 1);
        assert_eq!(
            plan(&[p("a")], Some(Path::new("/dev/null")), false).unwrap(),
            [(p("a"), Some("/dev/null".into()))]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut back = Vec::new();
        GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn many_files_go_through_one_stream_each_to_its_own_member() {
        let dir = std::env::temp_dir().join(format!("conlab-gzip-jobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("in")).unwrap();
        // Sizes around the block (1 KiB here), an empty file, and one of many blocks.
        let sizes = [0usize, 1, 1023, 1024, 1025, 5000, 100, 0, 40_000];
        let mut jobs = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8 % 61 + 32).collect();
            let input = dir.join(format!("in/{i}"));
            std::fs::write(&input, &data).unwrap();
            jobs.push((input, Some(dir.join(format!("out/{i}.gz")))));
        }
        let options = GzipOptions {
            level: 6,
            workers: 3,
            block: 1024,
        };
        let summary = compress_jobs(&jobs, options, &Cancel::default()).unwrap();
        let mut total_out = 0;
        for (input, output) in &jobs {
            let output = output.as_ref().unwrap();
            assert_eq!(
                gunzip(output),
                std::fs::read(input).unwrap(),
                "{}",
                input.display()
            );
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
    fn a_missing_input_mid_stream_is_named_and_its_output_never_appears() {
        let dir = std::env::temp_dir().join(format!("conlab-gzip-miss-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), "first").unwrap();
        let jobs = vec![
            (dir.join("a"), Some(dir.join("a.gz"))),
            (dir.join("gone"), Some(dir.join("gone.gz"))),
        ];
        let e = compress_jobs(&jobs, GzipOptions::default(), &Cancel::default()).unwrap_err();
        assert!(
            matches!(&e, GzipError::File { action: "reading", path, .. } if *path == dir.join("gone")),
            "{e}"
        );
        assert_eq!(gunzip(&dir.join("a.gz")), b"first");
        assert!(!dir.join("gone.gz").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_output_is_written_not_replaced() {
        let jobs = vec![(PathBuf::from("/dev/zero"), Some(PathBuf::from("/dev/full")))];
        // /dev/zero never ends: a full device must stop the run with its error.
        let e = compress_jobs(&jobs, GzipOptions::default(), &Cancel::default()).unwrap_err();
        assert!(
            matches!(&e, GzipError::File { action: "writing", source, .. }
                if source.raw_os_error() == Some(libc::ENOSPC)),
            "{e:?}"
        );
        let meta = std::fs::metadata("/dev/full").unwrap();
        assert!(!meta.is_file(), "/dev/full is still a device");
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
