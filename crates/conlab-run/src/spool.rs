//! A job's captured output: held in memory up to a bound, then in an unlinked temporary
//! file, as GNU parallel keeps output in files. Two jobs printing 500 MB each cost a few MB
//! of memory, not a gigabyte each; the common few-line job never touches the disk.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes of one stream held in memory before the rest goes to a temporary file.
pub const MEMORY_LIMIT: usize = 1 << 20;

/// One captured stream.
#[derive(Debug, Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl Spool {
    /// Appends `data`.
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        if self.file.is_none() && self.memory.len() + data.len() <= MEMORY_LIMIT {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        if self.file.is_none() {
            let mut file = temp_file()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(data),
            None => Ok(()),
        }
    }

    /// Bytes captured.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes everything captured to `out`, in order, and empties the spool.
    pub fn drain_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.memory)?;
        self.memory.clear();
        if let Some(mut file) = self.file.take() {
            file.seek(SeekFrom::Start(0))?;
            io::copy(&mut file, out)?;
        }
        self.len = 0;
        Ok(())
    }

    /// Everything captured, read back (for `--results`).
    pub fn to_vec(&mut self) -> io::Result<Vec<u8>> {
        let mut all = self.memory.clone();
        if let Some(file) = &mut self.file {
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut all)?;
            file.seek(SeekFrom::End(0))?;
        }
        Ok(all)
    }
}

/// A new file in the temporary directory named `PREFIX` + five random characters + `SUFFIX`
/// (GNU parallel's `--files` names), kept after the run.
pub fn named_temp_file(prefix: &str, suffix: &str) -> io::Result<(std::path::PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    loop {
        let mut name = String::from(prefix);
        for _ in 0..5 {
            // xorshift: names only need to differ, not to be unpredictable (create_new
            // refuses an existing file, and the next try gets another name).
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            name.push(char::from(LETTERS[(seed % LETTERS.len() as u64) as usize]));
        }
        name.push_str(suffix);
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A file in the temporary directory that has no name: gone when closed, even after a crash.
fn temp_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir);
    match unnamed {
        Ok(file) => Ok(file),
        // A file system without O_TMPFILE: a named file, unlinked at once.
        Err(_) => {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.join(format!("conlab-spool-{}-{n}", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_beyond_the_memory_bound_goes_to_a_file_and_comes_back_in_order() {
        let mut spool = Spool::default();
        let chunk = vec![b'x'; MEMORY_LIMIT / 2 + 1];
        spool.push(b"start").unwrap();
        spool.push(&chunk).unwrap();
        assert!(spool.file.is_none());
        spool.push(&chunk).unwrap();
        assert!(spool.file.is_some(), "past the bound the spool is a file");
        assert!(spool.memory.is_empty());
        spool.push(b"end").unwrap();
        assert_eq!(spool.len(), 5 + 2 * chunk.len() as u64 + 3);
        let copy = spool.to_vec().unwrap();
        let mut out = Vec::new();
        spool.drain_to(&mut out).unwrap();
        assert_eq!(out, copy);
        assert!(out.starts_with(b"startx") && out.ends_with(b"xend"));
        assert!(spool.is_empty());
    }
}
