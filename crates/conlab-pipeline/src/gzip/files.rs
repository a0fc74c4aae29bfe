//! Where compressed files are written, with gzip's care: each under a temporary name beside
//! its final one (created afresh, readable only by its owner until done), given its input's
//! permissions, owner and times, and then linked under the final name, which is never
//! replaced without `-f`, even by a file that appeared during the run. A device or a pipe
//! (`-o /dev/null`) is written to as it is; standard output is written block by block, so a
//! reader that goes away stops the run at once.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{GzipError, Job, Members};

/// The temporary file being written, shared with whoever must exit at once (a signal
/// handler): [`Unfinished::abandon`] removes it and stops every later file.
#[derive(Debug, Clone, Default)]
pub struct Unfinished(Arc<Mutex<Slot>>);

#[derive(Debug, Default)]
struct Slot {
    /// The temporary file and its final name.
    temp: Option<(PathBuf, PathBuf)>,
    abandoned: bool,
}

impl Unfinished {
    /// Removes the file being written, if any, and makes every later output fail; returns
    /// the final name that will not be written.
    pub fn abandon(&self) -> Option<PathBuf> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.abandoned = true;
        let (temp, target) = slot.temp.take()?;
        let _ = std::fs::remove_file(temp);
        Some(target)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One output being written.
pub(super) enum Output {
    Stdout(io::Stdout),
    /// A device or a pipe named by `-o`.
    Device(File),
    /// A temporary file, with the input's metadata to give it.
    File(io::BufWriter<File>, Option<std::fs::Metadata>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::Device(out) => out.write(buf),
            Output::File(out, _) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::Device(out) => out.flush(),
            Output::File(out, _) => out.flush(),
        }
    }
}

/// The members of [`super::compress_jobs`]: one output per job.
pub(super) struct Files<'a> {
    pub(super) jobs: &'a [Job],
    pub(super) force: bool,
    pub(super) unfinished: Unfinished,
}

/// A temporary name beside `target`: `.NAME.conlab-PID.tmp`, or a short one when that
/// would be longer than a file name may be.
fn temp_name(target: &Path, member: usize) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let long = format!(".{name}.conlab-{pid}.tmp");
    if long.len() <= 255 {
        target.with_file_name(long)
    } else {
        target.with_file_name(format!(".conlab-{pid}-{member}.tmp"))
    }
}

impl Files<'_> {
    /// The error of doing `action` to job `i`'s output (named by its final name, never the
    /// temporary one).
    fn file_error(&self, i: usize, action: &'static str) -> impl FnOnce(io::Error) -> GzipError {
        GzipError::at(
            action,
            self.jobs[i].output.as_deref().unwrap_or(Path::new("")),
        )
    }

    /// Puts the complete temporary file under its final name: a hard link, which fails
    /// rather than replace what is there (unless forced: a rename).
    fn place(&self, temp: &Path, target: &Path, i: usize) -> Result<(), GzipError> {
        if self.force {
            return std::fs::rename(temp, target).map_err(self.file_error(i, "renaming to"));
        }
        match std::fs::hard_link(temp, target) {
            Ok(()) => {
                let _ = std::fs::remove_file(temp);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(GzipError::Exists(target.to_path_buf()))
            }
            // A file system without hard links: look, then rename.
            Err(_) if std::fs::symlink_metadata(target).is_ok() => {
                Err(GzipError::Exists(target.to_path_buf()))
            }
            Err(_) => std::fs::rename(temp, target).map_err(self.file_error(i, "renaming to")),
        }
    }
}

impl Members for Files<'_> {
    type Out = Output;

    fn open(&mut self, i: usize) -> Result<Output, GzipError> {
        if self.unfinished.slot().abandoned {
            return Err(GzipError::Cancelled(None));
        }
        let job = &self.jobs[i];
        let Some(target) = &job.output else {
            return Ok(Output::Stdout(io::stdout()));
        };
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let device = OpenOptions::new()
                .write(true)
                .open(target)
                .map_err(self.file_error(i, "opening"))?;
            return Ok(Output::Device(device));
        }
        if job.make_dirs
            && let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(GzipError::at("creating", dir))?;
        }
        let input = (job.input.as_os_str() != "-")
            .then(|| std::fs::metadata(&job.input).ok())
            .flatten();
        let temp = temp_name(target, i);
        // Created afresh (never through a file or link someone left there), and readable by
        // its owner alone until it has the input's permissions.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if input.is_some() { 0o600 } else { 0o666 })
            .open(&temp)
            .map_err(self.file_error(i, "creating"))?;
        self.unfinished.slot().temp = Some((temp, target.clone()));
        Ok(Output::File(
            io::BufWriter::with_capacity(256 * 1024, file),
            input,
        ))
    }

    fn close(&mut self, i: usize, out: Output) -> Result<(), GzipError> {
        let (writer, input) = match out {
            Output::Stdout(mut out) => return out.flush().map_err(|e| self.write_error(i, e)),
            Output::Device(mut out) => return out.flush().map_err(|e| self.write_error(i, e)),
            Output::File(writer, input) => (writer, input),
        };
        let file = writer
            .into_inner()
            .map_err(|e| self.write_error(i, e.into_error()))?;
        if let Some(input) = input {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // As gzip does: the owner where allowed (root), then the permissions, then the
            // times. A failure to keep them is not a failure to compress.
            let _ = std::os::unix::fs::fchown(&file, Some(input.uid()), Some(input.gid()));
            let _ = file.set_permissions(std::fs::Permissions::from_mode(input.mode() & 0o777));
            let mut times = std::fs::FileTimes::new();
            if let Ok(t) = input.accessed() {
                times = times.set_accessed(t);
            }
            if let Ok(t) = input.modified() {
                times = times.set_modified(t);
            }
            let _ = file.set_times(times);
        }
        drop(file);
        let mut slot = self.unfinished.slot();
        let Some((temp, target)) = slot.temp.take() else {
            return Err(GzipError::Cancelled(None));
        };
        let placed = if slot.abandoned {
            Err(GzipError::Cancelled(Some(target.clone())))
        } else {
            self.place(&temp, &target, i)
        };
        if placed.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        placed
    }

    fn abandon(&mut self, i: usize, out: Output) -> Option<PathBuf> {
        drop(out);
        let (temp, _) = self.unfinished.slot().temp.take()?;
        let _ = std::fs::remove_file(temp);
        self.jobs[i].output.clone()
    }

    fn write_error(&self, i: usize, source: io::Error) -> GzipError {
        match &self.jobs[i].output {
            Some(path) => GzipError::at("writing", path)(source),
            None => GzipError::Write(source),
        }
    }
}
