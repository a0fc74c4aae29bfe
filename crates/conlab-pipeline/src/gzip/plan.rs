//! What to compress into what, decided before anything is compressed, as gzip decides it:
//! which inputs become which outputs, and which inputs are left out and why (a symbolic link,
//! an output already there, a name that ends in `.gz`), so that one bad input never stops
//! the others.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::GzipError;

/// One input and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The file to read; `-` is standard input.
    pub input: PathBuf,
    /// The file to write; `None` is standard output.
    pub output: Option<PathBuf>,
    /// The output's directories may be made (a directory compressed into `-o OUTDIR`); a
    /// single `-o FILE` in a directory that does not exist is an error instead.
    pub make_dirs: bool,
}

/// The jobs, and the inputs left out.
#[derive(Debug, Default)]
pub struct Plan {
    /// What to compress, in order.
    pub jobs: Vec<Job>,
    /// The inputs left out, each with why ([`GzipError::exit_status`] says how gzip rates
    /// it).
    pub skipped: Vec<GzipError>,
}

/// Plans `inputs` with an optional `-o`, as gzip would:
/// - each file to `FILE.gz` beside it, or to `-o FILE` when it is the only input;
/// - `-o -` sends everything to standard output, one member after the other (gzip's `-c`);
/// - standard input goes to standard output unless `-o` names a file;
/// - `-o DIR/` (or an existing directory) takes each file as `DIR/NAME.gz`;
/// - each file under a directory goes to `OUTDIR/RELATIVE.gz`, or beside itself without
///   `-o` (gzip's `-r`), where files already ending in `.gz` are left alone.
///
/// Left out, as gzip leaves them out: a symbolic link unless `force` (then followed; a link
/// to a directory is never followed), a file named with a `.gz` suffix unless `force` (then
/// `FILE.gz.gz`), an output that is already there unless `force` (a device such as
/// `/dev/null` is written to, never replaced), an output that is its own input, and what
/// cannot be read or listed. Several inputs with one `-o FILE` is the only error that stops
/// the whole plan.
pub fn plan(inputs: &[PathBuf], output: Option<&Path>, force: bool) -> Result<Plan, GzipError> {
    let to_stdout = output.is_some_and(|o| o.as_os_str() == "-");
    let out_dir = output
        .filter(|o| !to_stdout && (o.as_os_str().to_string_lossy().ends_with('/') || o.is_dir()));
    if let Some(o) = output
        && !to_stdout
        && out_dir.is_none()
        && inputs.len() > 1
    {
        return Err(GzipError::OneOutputForSeveral(o.to_path_buf()));
    }
    let mut plan = Plan::default();
    for input in inputs {
        if input.as_os_str() == "-" {
            let output = match output {
                _ if to_stdout => None,
                Some(_) if out_dir.is_some() => {
                    plan.skipped.push(GzipError::StdinHasNoName);
                    continue;
                }
                Some(o) => Some(o.to_path_buf()),
                None => None,
            };
            plan.jobs.push(Job {
                input: input.clone(),
                output,
                make_dirs: false,
            });
            continue;
        }
        // A link is refused only where gzip refuses it: when its output goes beside it.
        // Read through (-c, -o FILE) it is followed, as `gzip -c link` follows it.
        let through = to_stdout || (output.is_some() && out_dir.is_none());
        let meta = match followed(input, force || through) {
            Ok(meta) => meta,
            Err(e) => {
                plan.skipped.push(e);
                continue;
            }
        };
        if meta.is_dir() {
            if let Some(o) = output
                && !to_stdout
                && std::fs::metadata(o).is_ok_and(|m| !m.is_dir())
            {
                plan.skipped
                    .push(GzipError::DirectoryIntoFile(input.clone(), o.to_path_buf()));
                continue;
            }
            let (found, skipped) = files_under(input, force || to_stdout);
            plan.skipped.extend(skipped);
            for file in found {
                let target = match output {
                    _ if to_stdout => None,
                    _ if has_gz_suffix(&file) && !force => continue,
                    Some(dir) => {
                        let relative = file.strip_prefix(input).unwrap_or(&file);
                        Some(with_gz(&dir.join(relative)))
                    }
                    None => Some(with_gz(&file)),
                };
                // Into `-o OUTDIR`, whose subdirectories may not be there yet.
                let make_dirs = target.is_some() && !to_stdout && output.is_some();
                plan.jobs.push(Job {
                    input: file,
                    output: target,
                    make_dirs,
                });
            }
            continue;
        }
        let output = match (output, out_dir) {
            _ if to_stdout => None,
            (_, Some(dir)) => Some(with_gz(&dir.join(input.file_name().unwrap_or_default()))),
            (Some(o), None) => Some(o.to_path_buf()),
            (None, None) if has_gz_suffix(input) && !force => {
                plan.skipped.push(GzipError::HasGzSuffix(input.clone()));
                continue;
            }
            (None, None) => Some(with_gz(input)),
        };
        plan.jobs.push(Job {
            input: input.clone(),
            make_dirs: out_dir.is_some(),
            output,
        });
    }
    // Outputs already there: a regular file (or a link) is not replaced without `force`,
    // and never when it is the input itself.
    let mut kept = Vec::with_capacity(plan.jobs.len());
    for job in plan.jobs {
        if let Some(target) = &job.output
            && let Ok(there) = std::fs::symlink_metadata(target)
        {
            let device = std::fs::metadata(target).is_ok_and(|m| !m.is_file());
            let same = std::fs::metadata(&job.input)
                .ok()
                .zip(std::fs::metadata(target).ok())
                .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
            if same {
                plan.skipped.push(GzipError::SameFile(target.clone()));
                continue;
            }
            if !device && !force && (there.is_file() || there.file_type().is_symlink()) {
                plan.skipped.push(GzipError::Exists(target.clone()));
                continue;
            }
        }
        kept.push(job);
    }
    plan.jobs = kept;
    Ok(plan)
}

/// `input`'s metadata, following a symbolic link only when `force`.
fn followed(input: &Path, force: bool) -> Result<std::fs::Metadata, GzipError> {
    let meta = std::fs::symlink_metadata(input).map_err(GzipError::at("reading", input))?;
    if !meta.file_type().is_symlink() {
        return Ok(meta);
    }
    if !force {
        return Err(GzipError::SymbolicLink(input.to_path_buf()));
    }
    std::fs::metadata(input).map_err(GzipError::at("reading", input))
}

/// A temporary file of a conlab gzip (this run's, another one's running beside it, or one
/// that was killed): never an input.
fn is_ours(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.starts_with('.') && n.contains(".conlab-") && n.ends_with(".tmp")
            || n.starts_with(".conlab-") && n.ends_with(".tmp")
    })
}

fn with_gz(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

fn has_gz_suffix(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Every file under `dir`, recursively, sorted; and what was left out: symbolic links
/// (followed to files with `force`, never to directories), what is neither a file nor a
/// directory (a FIFO, a socket) and directories that could not be listed. Named here, as
/// gzip -r names them, rather than skipped in silence. conlab's own temporary files (of a
/// run beside this one, or of one that was killed) are passed over.
pub fn files_under(dir: &Path, force: bool) -> (Vec<PathBuf>, Vec<GzipError>) {
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = |e| GzipError::at("listing", &d)(e);
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) => {
                skipped.push(listing(e));
                continue;
            }
        };
        for entry in entries {
            let (path, kind) = match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
                Ok(found) => found,
                Err(e) => {
                    skipped.push(listing(e));
                    continue;
                }
            };
            if is_ours(&path) {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(path);
            } else if kind.is_symlink() {
                match followed(&path, force) {
                    Ok(meta) if meta.is_file() => out.push(path),
                    Ok(meta) if meta.is_dir() => skipped.push(GzipError::LinkedDirectory(path)),
                    Ok(_) => skipped.push(GzipError::NotAFile(path)),
                    Err(e) => skipped.push(e),
                }
            } else {
                skipped.push(GzipError::NotAFile(path));
            }
        }
    }
    out.sort();
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(input: PathBuf, output: Option<PathBuf>, make_dirs: bool) -> Job {
        Job {
            input,
            output,
            make_dirs,
        }
    }

    #[test]
    fn the_plan_puts_each_input_where_gzip_would() {
        let dir = std::env::temp_dir().join(format!("conlab-gzip-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d/sub")).unwrap();
        std::fs::write(dir.join("a"), "x").unwrap();
        std::fs::write(dir.join("d/sub/b"), "y").unwrap();
        let p = |s: &str| dir.join(s);
        let jobs = |inputs: &[PathBuf], out: Option<&Path>, force| {
            let plan = plan(inputs, out, force).unwrap();
            (
                plan.jobs,
                plan.skipped
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            jobs(&[p("a")], None, false).0,
            [job(p("a"), Some(p("a.gz")), false)]
        );
        assert_eq!(
            jobs(&[p("a")], Some(Path::new("-")), false).0,
            [job(p("a"), None, false)]
        );
        assert_eq!(
            jobs(&["-".into()], None, false).0,
            [job("-".into(), None, false)]
        );
        assert_eq!(
            jobs(&[p("d")], Some(&p("out")), false).0,
            [job(p("d/sub/b"), Some(p("out/sub/b.gz")), true)]
        );
        // -o DIR/ for files: each as DIR/NAME.gz.
        let slash = PathBuf::from(format!("{}/", p("new").display()));
        assert_eq!(
            jobs(&[p("a")], Some(&slash), false).0,
            [job(p("a"), Some(p("new/a.gz")), true)]
        );
        assert!(matches!(
            plan(&[p("a"), p("a")], Some(&p("x")), false),
            Err(GzipError::OneOutputForSeveral(_))
        ));
        // A missing input is left out and named; the others go on.
        let (found, skipped) = jobs(&[p("missing"), p("a")], None, false);
        assert_eq!(found, [job(p("a"), Some(p("a.gz")), false)]);
        assert!(skipped[0].contains("missing"), "{skipped:?}");
        // Without -o a directory's files go beside themselves, leaving .gz files alone (gzip
        // -r); with -o - everything goes to standard output, .gz files too (gzip -rc).
        std::fs::write(dir.join("d/sub/c.gz"), "z").unwrap();
        assert_eq!(
            jobs(&[p("d")], None, false).0,
            [job(p("d/sub/b"), Some(p("d/sub/b.gz")), false)]
        );
        assert_eq!(
            jobs(&[p("d"), p("a")], Some(Path::new("-")), false).0,
            [
                job(p("d/sub/b"), None, false),
                job(p("d/sub/c.gz"), None, false),
                job(p("a"), None, false)
            ]
        );
        let (found, skipped) = jobs(&[p("d/sub/c.gz")], None, false);
        assert!(found.is_empty());
        assert!(
            skipped[0].contains("already has the .gz suffix"),
            "{skipped:?}"
        );
        assert_eq!(
            jobs(&[p("d/sub/c.gz")], None, true).0,
            [job(p("d/sub/c.gz"), Some(p("d/sub/c.gz.gz")), false)]
        );
        // An output already there is left out unless forced; a device is written to; an
        // output that is its input never.
        std::fs::write(dir.join("a.gz"), "old").unwrap();
        let (found, skipped) = jobs(&[p("a")], None, false);
        assert!(found.is_empty());
        assert!(skipped[0].contains("already exists"), "{skipped:?}");
        assert_eq!(jobs(&[p("a")], None, true).0.len(), 1);
        assert_eq!(
            jobs(&[p("a")], Some(Path::new("/dev/null")), false).0,
            [job(p("a"), Some("/dev/null".into()), false)]
        );
        let (found, skipped) = jobs(&[p("a")], Some(&p("a")), true);
        assert!(found.is_empty());
        assert!(skipped[0].contains("is its own input"), "{skipped:?}");
        // Symbolic links: refused unless forced, as gzip refuses them, and named inside a
        // directory; a link to a directory is never followed.
        std::os::unix::fs::symlink(p("a"), p("link")).unwrap();
        std::os::unix::fs::symlink(p("a"), p("d/file-link")).unwrap();
        std::os::unix::fs::symlink(p("d/sub"), p("d/dir-link")).unwrap();
        let (found, skipped) = jobs(&[p("link")], None, false);
        assert!(found.is_empty());
        assert!(skipped[0].contains("is a symbolic link"), "{skipped:?}");
        assert_eq!(
            jobs(&[p("link")], None, true).0,
            [job(p("link"), Some(p("link.gz")), false)]
        );
        let (found, skipped) = jobs(&[p("d")], None, false);
        assert_eq!(found.len(), 1);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        // Forced: the file link followed, and the .gz file compressed (c.gz.gz), as gzip -rf.
        let (found, skipped) = jobs(&[p("d")], None, true);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(skipped[0].contains("not followed"), "{skipped:?}");
        // Read through (-c), a link is followed, as `gzip -c link` follows it.
        assert_eq!(
            jobs(&[p("link")], Some(Path::new("-")), false).0,
            [job(p("link"), None, false)]
        );
        // A FIFO is named and left out; conlab's own temporary files are passed over.
        let fifo =
            std::ffi::CString::new(p("d/fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::write(p("d/.b.gz.conlab-1.tmp"), "partial").unwrap();
        let (found, skipped) = jobs(&[p("d")], None, false);
        assert_eq!(found, [job(p("d/sub/b"), Some(p("d/sub/b.gz")), false)]);
        assert!(
            skipped
                .iter()
                .any(|e| e.contains("not a directory or a regular file")),
            "{skipped:?}"
        );
        // A directory into something that is not one.
        let (found, skipped) = jobs(&[p("d")], Some(Path::new("/dev/null")), false);
        assert!(found.is_empty());
        assert!(skipped[0].contains("is not a directory"), "{skipped:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
