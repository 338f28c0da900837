//! Fuzz target for the PROXY protocol header parser: whatever the bytes, parsing never
//! panics, never claims more bytes than it was given nor more than `MAX_HEADER`, agrees
//! with itself on every prefix (a header is incomplete until its last byte arrives, and
//! bytes after it change nothing), and refuses whatever `signature` says begins no
//! header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use muxd::listener::proxy::header::{MAX_HEADER, Parsed, Signature, parse, signature};

fuzz_target!(|bytes: &[u8]| {
    let whole = parse(bytes);
    if signature(bytes) == Signature::Absent {
        assert!(whole.is_err(), "no signature, yet {whole:?}");
    }
    if let Ok(Parsed::Complete { len, .. }) = whole {
        assert!(len <= bytes.len() && len <= MAX_HEADER, "len {len}");
        let header = &bytes[..len];
        assert_eq!(parse(header), whole, "the header alone parses the same");
        for end in 0..len {
            assert_eq!(parse(&bytes[..end]), Ok(Parsed::Incomplete), "prefix {end}");
        }
    }
    if let Ok(Parsed::Incomplete) = whole {
        // Incomplete only while a header may still come: bounded.
        assert!(bytes.len() < MAX_HEADER, "incomplete at {} bytes", bytes.len());
    }
});
