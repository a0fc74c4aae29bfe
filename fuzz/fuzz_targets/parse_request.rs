//! `cargo +nightly fuzz run parse_request`: the request parser must never panic, and a
//! complete request must never claim more bytes than it was given.
#![no_main]

use conlab_http::{Limits, Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_header_bytes: 1024, max_headers: 16, max_body_bytes: 4096 };
    if let Ok(Parsed::Complete { consumed, .. }) = parse(data, &limits) {
        assert!(consumed <= data.len());
    }
});
