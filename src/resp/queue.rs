//! [`RequestQueue`]: requests copied out of the client's input buffer, to be handled
//! later (a transaction's commands, queued by `MULTI` and run by `EXEC`).
//!
//! A decoded request borrows the input buffer, which the next read reuses; keeping one
//! beyond its turn means copying it. The queue keeps every argument of every request back
//! to back in one buffer, so queueing allocates only while its buffers grow, and hands the
//! requests back as [`Args`], as the decoder made them.

use super::{Args, Span};

/// Requests copied out of the input buffer, in order.
///
/// # Examples
/// ```
/// use muxd::resp::{RequestQueue, RespCodec, RespSession};
/// use muxd::{Codec, Decoded};
///
/// let mut codec = RespCodec::default();
/// let mut queue = RequestQueue::default();
/// let input = b"ECHO hi\r\nPING\r\n";
/// let mut pos = 0;
/// while let Ok(Decoded::Request(args, used)) =
///     codec.decode(RespSession::default(), &mut Default::default(), &input[pos..])
/// {
///     queue.push(&args);
///     pos += used;
/// }
/// let names: Vec<&[u8]> = queue.iter().map(|args| args.command()).collect();
/// assert_eq!(names, [&b"ECHO"[..], b"PING"]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct RequestQueue {
    /// Every argument's bytes, back to back.
    bytes: Vec<u8>,
    /// Where each argument lies in `bytes`.
    spans: Vec<Span>,
    /// Where each request's arguments end in `spans`.
    ends: Vec<usize>,
}

impl RequestQueue {
    /// Appends a copy of `request`.
    pub fn push(&mut self, request: &Args<'_>) {
        for arg in request.iter() {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(arg);
            self.spans.push(Span {
                start,
                end: self.bytes.len(),
            });
        }
        self.ends.push(self.spans.len());
    }

    /// Number of requests queued.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Memory the queue holds, in bytes (its buffers' capacity).
    pub fn memory(&self) -> usize {
        self.bytes.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// Memory `request` takes once queued, bookkeeping included (before any growth of the
    /// buffers' capacity).
    pub fn cost(request: &Args<'_>) -> usize {
        request.iter().map(<[u8]>::len).sum::<usize>()
            + request.len() * std::mem::size_of::<Span>()
            + std::mem::size_of::<usize>()
    }

    /// The queued requests, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Args<'_>> + '_ {
        (0..self.ends.len()).map(|i| {
            let from = match i.checked_sub(1) {
                Some(before) => self.ends.get(before).copied().unwrap_or_default(),
                None => 0,
            };
            let to = self.ends.get(i).copied().unwrap_or_default();
            Args {
                buf: &self.bytes,
                spans: self.spans.get(from..to).unwrap_or_default(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Decoded};
    use crate::resp::{RespCodec, RespDecodeState, RespSession, encode_request};

    #[test]
    fn queued_requests_come_back_as_they_were() {
        let mut input = Vec::new();
        encode_request([&b"SET"[..], b"k", b"a\r\nb\0"], &mut input);
        input.extend_from_slice(b"PING\r\n");
        encode_request([&b"ECHO"[..], b""], &mut input);
        let mut codec = RespCodec::default();
        let mut state = RespDecodeState::default();
        let mut queue = RequestQueue::default();
        let mut pos = 0;
        let mut total = 0;
        while let Ok(Decoded::Request(args, used)) =
            codec.decode(RespSession::default(), &mut state, &input[pos..])
        {
            total += RequestQueue::cost(&args);
            queue.push(&args);
            pos += used;
        }
        assert_eq!(queue.len(), 3);
        assert!(queue.memory() >= total);
        let got: Vec<Vec<Vec<u8>>> = queue
            .iter()
            .map(|a| a.iter().map(<[u8]>::to_vec).collect())
            .collect();
        assert_eq!(
            got,
            vec![
                vec![b"SET".to_vec(), b"k".to_vec(), b"a\r\nb\0".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"ECHO".to_vec(), Vec::new()],
            ]
        );
        assert!(RequestQueue::default().iter().next().is_none());
    }
}
