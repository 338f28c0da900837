//! Reply checking: every complete reply at the start of the bytes a read delivered is
//! judged against what the test expects, where it lies, without copying. The expected
//! bytes are matched directly; anything else is framed by the library's [`Framer`],
//! which also proves it is RESP at all.

use muxd::resp::{Framer, MalformedReply, parse_int};

use super::tally::{Ring, Tally};
use crate::report::printable;
use crate::workload::Expect;

/// What reply checking needs of a connection (apart from its input).
pub(super) struct ReplyState {
    pub(super) framer: Framer,
    pub(super) times: Ring,
    pub(super) in_flight: usize,
    /// `add`: the integer the next reply must be.
    pub(super) counter: i64,
}

/// Why checking replies stopped the connection.
pub(super) enum Fault {
    Malformed(MalformedReply, Vec<u8>),
    Unsolicited(Vec<u8>),
}

/// Checks every complete reply at the start of `data`; returns the bytes they used.
/// A reply split at the end is left for the next read (the framer keeps its place).
#[inline]
pub(super) fn check_replies(
    data: &[u8],
    state: &mut ReplyState,
    expect: &Expect,
    now: u64,
    tally: &mut Tally,
) -> Result<usize, Fault> {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        // Fast path: the expected bytes themselves. RESP is self-delimiting, so a buffer
        // that starts with a complete expected reply holds exactly that reply first. (An
        // expected error reply, learned by --command, still counts as an error.)
        let exact = match expect {
            Expect::Exact(e)
                if state.framer.is_fresh()
                    && rest.starts_with(e)
                    && rest.first() != Some(&b'-') =>
            {
                Some(e.len())
            }
            _ => None,
        };
        let len = match exact {
            Some(len) => len,
            None => match state.framer.advance(rest) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(m) => return Err(Fault::Malformed(m, rest.to_vec())),
            },
        };
        let frame = rest.get(..len).unwrap_or_default();
        let Some(sent) = state.times.pop() else {
            return Err(Fault::Unsolicited(rest.to_vec()));
        };
        state.in_flight -= 1;
        tally.replies += 1;
        tally.record(now.saturating_sub(sent));
        pos += len;
        if exact.is_some() {
            continue;
        }
        if frame.first() == Some(&b'-') {
            tally.error(|| format!("error reply: \"{}\"", printable(frame, 200)));
            continue;
        }
        match expect {
            Expect::Exact(e) => {
                if frame != e.as_slice() {
                    tally.wrong(|| {
                        format!(
                            "wrong reply: expected \"{}\", got \"{}\"",
                            printable(e, 120),
                            printable(frame, 120)
                        )
                    });
                }
            }
            Expect::Counter => match integer_reply(frame) {
                Some(n) if n == state.counter => state.counter = n.wrapping_add(1),
                got => {
                    let expected = state.counter;
                    tally.wrong(|| {
                        format!(
                            "wrong reply: expected \":{expected}\", got \"{}\"",
                            printable(frame, 120)
                        )
                    });
                    // Judge the next reply against this one, so one bad reply is one.
                    if let Some(n) = got {
                        state.counter = n.wrapping_add(1);
                    }
                }
            },
        }
    }
    Ok(pos)
}

/// The integer of a complete `:n\r\n` reply, if that is what `frame` is.
fn integer_reply(frame: &[u8]) -> Option<i64> {
    let body = frame.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    parse_int(body)
}

#[cfg(test)]
mod tests {
    use muxd::buffer::InputBuf;

    use super::*;

    fn state(in_flight: usize) -> ReplyState {
        let mut times = Ring::new(in_flight.max(1));
        for _ in 0..in_flight {
            times.push(0);
        }
        ReplyState {
            framer: Framer::new(),
            times,
            in_flight,
            counter: 1,
        }
    }

    #[test]
    fn exact_replies_split_anywhere_are_all_checked() {
        let expect = Expect::Exact(b"$3\r\nxxx\r\n".to_vec());
        let stream = b"$3\r\nxxx\r\n$3\r\nxxx\r\n$3\r\nxxx\r\n";
        for cut in 0..stream.len() {
            let mut st = state(3);
            let mut tally = Tally::new();
            let mut input = InputBuf::default();
            input.extend_from_slice(&stream[..cut]);
            let used = check_replies(input.data(), &mut st, &expect, 1000, &mut tally)
                .unwrap_or_else(|_| panic!("fault at cut {cut}"));
            input.consume(used);
            input.extend_from_slice(&stream[cut..]);
            let used = check_replies(input.data(), &mut st, &expect, 1000, &mut tally)
                .unwrap_or_else(|_| panic!("fault at cut {cut}"));
            input.consume(used);
            assert!(input.is_empty(), "cut {cut}");
            assert_eq!((tally.replies, tally.errors, tally.wrong), (3, 0, 0));
            assert_eq!(st.in_flight, 0);
        }
    }

    #[test]
    fn errors_wrong_and_counter_are_told_apart() {
        let mut tally = Tally::new();
        let mut st = state(5);
        let data = b":1\r\n:2\r\n-ERR no\r\n:4\r\n:5\r\n";
        let used = check_replies(data, &mut st, &Expect::Counter, 0, &mut tally).ok();
        assert_eq!(used, Some(data.len()));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (5, 1, 1));
        assert_eq!(st.counter, 6, "resynchronised after the wrong reply");
        assert!(tally.wrong_samples[0].contains("expected \":3\", got \":4\\r\\n\""));
        assert!(tally.error_samples[0].contains("-ERR no"));

        let mut tally = Tally::new();
        let mut st = state(2);
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let used = check_replies(b"+PONG\r\n+PANG\r\n", &mut st, &expect, 0, &mut tally).ok();
        assert_eq!(used, Some(14));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (2, 0, 1));

        // A learned error reply is still an error, every time.
        let mut tally = Tally::new();
        let mut st = state(2);
        let expect = Expect::Exact(b"-ERR unknown\r\n".to_vec());
        let used = check_replies(
            b"-ERR unknown\r\n-ERR unknown\r\n",
            &mut st,
            &expect,
            0,
            &mut tally,
        );
        assert_eq!(used.ok(), Some(28));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (2, 2, 0));
    }

    #[test]
    fn malformed_and_unsolicited_replies_are_faults() {
        let mut tally = Tally::new();
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let mut st = state(2);
        assert!(matches!(
            check_replies(b"+PONG\r\nPONG\r\n", &mut st, &expect, 0, &mut tally),
            Err(Fault::Malformed(MalformedReply::UnknownType(b'P'), _))
        ));
        assert_eq!(tally.replies, 1);
        let mut st = state(1);
        assert!(matches!(
            check_replies(b"+PONG\r\n+PONG\r\n", &mut st, &expect, 0, &mut tally),
            Err(Fault::Unsolicited(_))
        ));
    }

    #[test]
    fn latency_is_measured_from_each_timestamp() {
        let mut tally = Tally::new();
        let mut st = state(0);
        st.times = Ring::new(3);
        for t in [1_000_000, 2_000_000, 2_000_000] {
            st.times.push(t);
            st.in_flight += 1;
        }
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let data = b"+PONG\r\n".repeat(3);
        check_replies(&data, &mut st, &expect, 5_000_000, &mut tally).ok();
        tally.flush_run();
        assert_eq!(tally.hist.len(), 3);
        assert_eq!(tally.hist.max(), tally.hist.highest_equivalent(4000));
        assert_eq!(tally.hist.min(), tally.hist.lowest_equivalent(3000));
    }

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(integer_reply(b":17\r\n"), Some(17));
        assert_eq!(integer_reply(b"+17\r\n"), None);
        assert_eq!(integer_reply(b":17"), None);
    }
}
