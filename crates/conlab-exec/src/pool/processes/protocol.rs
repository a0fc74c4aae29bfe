//! The bytes between a process pool and its workers: length-prefixed frames over a pipe.
//!
//! ```text
//! parent -> worker   [len: u32 LE][id: u64 LE][kind: u64 LE][flags: u8][payload: postcard]
//! worker -> parent   [len: u32 LE][id: u64 LE][status: u8][payload]
//! ```
//! `len` counts the bytes after itself. `kind` is the FNV-1a hash of the task's
//! [`RemoteTask::NAME`](crate::RemoteTask::NAME); flag bit 0 marks a batch (the payload is a
//! `Vec` of tasks, the reply a `Vec<Result<Output, String>>`). A reply's status says whether
//! the payload is the output ([`OK`]), a panic message ([`PANICKED`]) or why the worker could
//! not run the task at all ([`UNRUNNABLE`]). A worker announces itself with [`HELLO`] before
//! anything else, so a program that is not a conlab worker is caught at once.

use std::io::{self, Read};

/// The first bytes a worker writes: name and protocol version.
pub(crate) const HELLO: &[u8; 8] = b"CONLABW1";

/// Reply status: the payload is the postcard-encoded output.
pub(crate) const OK: u8 = 0;
/// Reply status: the task panicked; the payload is the message.
pub(crate) const PANICKED: u8 = 1;
/// Reply status: the worker could not decode or find the task; the payload says why.
pub(crate) const UNRUNNABLE: u8 = 2;

/// Frame flag: the payload is a batch of tasks.
pub(crate) const BATCH: u8 = 1;

/// Bytes of a request header after the length: id, kind, flags.
pub(crate) const REQUEST_HEADER: usize = 8 + 8 + 1;
/// Bytes of a reply header after the length: id, status.
pub(crate) const REPLY_HEADER: usize = 8 + 1;

/// A frame larger than this is a protocol error, not an allocation to attempt.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// FNV-1a: a stable 64-bit id for a task name, the same in every process.
pub(crate) const fn kind_of(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Starts a frame in `buf`: a length placeholder and the header; [`finish`] patches the length.
pub(crate) fn begin_request(buf: &mut Vec<u8>, id: u64, kind: u64, flags: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&kind.to_le_bytes());
    buf.push(flags);
    start
}

/// Starts a reply frame in `buf`.
pub(crate) fn begin_reply(buf: &mut Vec<u8>, id: u64, status: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.push(status);
    start
}

/// Writes the frame's length once its payload is in `buf`.
pub(crate) fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Reads one frame's body (everything after the length) into `body`; `Ok(false)` on a clean
/// end of stream before a frame starts.
pub(crate) fn read_frame(input: &mut impl Read, body: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is larger than the {MAX_FRAME}-byte limit"),
        ));
    }
    body.clear();
    body.resize(len, 0);
    input.read_exact(body)?;
    Ok(true)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut buf = Vec::new();
        let start = begin_request(&mut buf, 7, kind_of("x"), BATCH);
        buf.extend_from_slice(b"payload");
        finish(&mut buf, start);
        let mut body = Vec::new();
        assert!(read_frame(&mut &buf[..], &mut body).unwrap());
        assert_eq!(u64_at(&body, 0), 7);
        assert_eq!(u64_at(&body, 8), kind_of("x"));
        assert_eq!(body[16], BATCH);
        assert_eq!(&body[REQUEST_HEADER..], b"payload");
    }

    #[test]
    fn a_clean_end_is_not_an_error_but_a_torn_frame_is() {
        let mut body = Vec::new();
        assert!(!read_frame(&mut &[][..], &mut body).unwrap());
        assert!(read_frame(&mut &[9, 0, 0, 0, 1][..], &mut body).is_err());
    }

    #[test]
    fn task_kinds_differ_by_name() {
        assert_ne!(kind_of("primes"), kind_of("is-prime"));
        assert_eq!(kind_of("primes"), kind_of("primes"));
    }
}
