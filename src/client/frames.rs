//! Shared frames in a client's output: bytes encoded once for many clients (a published
//! message), queued by reference between the client's own response bytes, and written
//! together with them in one `writev`.
//!
//! A client's output is its own bytes (`output[written..]`, responses encoded for it
//! alone) and a queue of [`Frame`]s, each placed after a given number of those bytes:
//! a frame queued when the client owed `n` own bytes goes out after them and before any
//! own bytes encoded later. Queuing a frame copies nothing and, once the queue has grown
//! to its working size, allocates nothing: it is a reference count and a place in a ring.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::config::OutputLimit;
use crate::stream::Stream;

/// Slices gathered into one `writev` at most (well under the kernel's `IOV_MAX` of 1024,
/// and enough to fill a socket buffer with small frames).
const MAX_SLICES: usize = 128;

/// Encoded bytes shared by every client they are sent to.
#[derive(Debug, Clone)]
pub(crate) struct Frame(Arc<[u8]>);

impl Frame {
    /// A frame holding a copy of `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Frame {
        Frame(Arc::from(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A frame waiting in a client's output, after the first `at` bytes of its own output.
#[derive(Debug)]
struct Queued {
    at: usize,
    frame: Frame,
}

/// The frames a client is owed, in order.
#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    queue: VecDeque<Queued>,
    /// Bytes of the first frame already written.
    front_written: usize,
    /// Bytes of every queued frame, the first one's written part included.
    bytes: usize,
    /// Since when the client's unsent output has been above the soft limit, if it is.
    over_soft_since: Option<Instant>,
}

/// Which output limit a client went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// At or above the hard limit.
    Hard,
    /// Above the soft limit for longer than allowed.
    Soft,
}

impl LimitHit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LimitHit::Hard => "hard",
            LimitHit::Soft => "soft",
        }
    }
}

impl FrameQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Frame bytes not yet written.
    #[inline]
    pub(crate) fn owed(&self) -> usize {
        self.bytes - self.front_written
    }

    /// Queues `frame` after the first `at` bytes of the client's own output.
    pub(crate) fn push(&mut self, at: usize, frame: Frame) {
        let len = frame.bytes().len();
        if len > 0 {
            self.bytes += len;
            self.queue.push_back(Queued { at, frame });
        }
    }

    /// The client's own output lost its first `by` bytes (written, then dropped).
    pub(crate) fn shift(&mut self, by: usize) {
        for queued in &mut self.queue {
            queued.at = queued.at.saturating_sub(by);
        }
    }

    /// Where each queued frame sits in the own output (for tests).
    #[cfg(test)]
    pub(crate) fn places(&self) -> Vec<usize> {
        self.queue.iter().map(|q| q.at).collect()
    }

    /// Gives back the ring's memory after a backlog (a slow reader that caught up).
    pub(crate) fn shrink_if_idle(&mut self, keep: usize) {
        if self.queue.is_empty() && self.queue.capacity() > keep {
            self.queue = VecDeque::new();
        }
    }

    /// Memory held: the frames' bytes (shared ones counted in full: each is owed to this
    /// client) and the ring.
    pub(crate) fn memory(&self) -> usize {
        self.owed() + self.queue.capacity() * std::mem::size_of::<Queued>()
    }

    /// Checks the client's unsent output, `owed` bytes, against `limit` (Redis's
    /// `client-output-buffer-limit`): at the hard limit, or above the soft one for longer
    /// than its time, the client must go.
    pub(crate) fn check_limit(
        &mut self,
        owed: usize,
        limit: &OutputLimit,
        now: Instant,
    ) -> Option<LimitHit> {
        if limit.hard > 0 && owed >= limit.hard {
            return Some(LimitHit::Hard);
        }
        if limit.soft == 0 || owed < limit.soft {
            self.over_soft_since = None;
            return None;
        }
        let since = *self.over_soft_since.get_or_insert(now);
        (now.saturating_duration_since(since) > limit.soft_time).then_some(LimitHit::Soft)
    }
}

/// Writes `own[*written..]` and `frames`, interleaved, until all is written or the socket
/// would block; returns how many bytes were written.
///
/// # Errors
/// A failed write; what was written before it is accounted for in `written` and `frames`.
pub(crate) fn write_gathered(
    stream: &mut Stream,
    own: &[u8],
    written: &mut usize,
    frames: &mut FrameQueue,
) -> io::Result<usize> {
    let mut sent = 0;
    loop {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = gather(own, *written, frames, &mut slices);
        if n == 0 {
            return Ok(sent);
        }
        match stream.write_vectored(slices.get(..n).unwrap_or_default()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => {
                advance(own.len(), written, frames, k);
                sent += k;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Fills `slices` with what is owed, in order; returns how many it filled.
fn gather<'a>(
    own: &'a [u8],
    written: usize,
    frames: &'a FrameQueue,
    slices: &mut [IoSlice<'a>; MAX_SLICES],
) -> usize {
    let mut n = 0;
    let mut pos = written;
    let mut push = |bytes: &'a [u8], n: &mut usize| {
        if !bytes.is_empty()
            && let Some(slot) = slices.get_mut(*n)
        {
            *slot = IoSlice::new(bytes);
            *n += 1;
        }
    };
    for (i, queued) in frames.queue.iter().enumerate() {
        if n + 2 > MAX_SLICES {
            return n;
        }
        if queued.at > pos {
            push(own.get(pos..queued.at).unwrap_or_default(), &mut n);
            pos = queued.at;
        }
        let skip = if i == 0 { frames.front_written } else { 0 };
        push(queued.frame.bytes().get(skip..).unwrap_or_default(), &mut n);
    }
    push(own.get(pos..).unwrap_or_default(), &mut n);
    n
}

/// Marks `k` more bytes written, in the order [`gather`] lays them out.
fn advance(own_len: usize, written: &mut usize, frames: &mut FrameQueue, mut k: usize) {
    while k > 0 {
        let Some(front) = frames.queue.front() else {
            *written = (*written + k).min(own_len);
            return;
        };
        let before = front.at.saturating_sub(*written).min(k);
        *written += before;
        k -= before;
        let len = front.frame.bytes().len();
        let rest = (len - frames.front_written).min(k);
        frames.front_written += rest;
        k -= rest;
        if frames.front_written == len {
            frames.queue.pop_front();
            frames.bytes -= len;
            frames.front_written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid_out(own: &[u8], written: usize, frames: &FrameQueue) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = gather(own, written, frames, &mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn frames_interleave_with_own_bytes_and_partial_writes_resume() {
        let own = b"+OK\r\n:1\r\n".to_vec();
        let mut frames = FrameQueue::default();
        frames.push(0, Frame::new(b"<a>"));
        frames.push(5, Frame::new(b"<b>"));
        frames.push(5, Frame::new(b"<c>"));
        frames.push(5, Frame::new(b""));
        let all = b"<a>+OK\r\n<b><c>:1\r\n".to_vec();
        assert_eq!(laid_out(&own, 0, &frames), all);
        assert_eq!(frames.owed(), 9);
        // Write it out a few bytes at a time: what is left is always the rest.
        let mut written = 0;
        let mut done = 0;
        for step in [2, 3, 1, 4, 1, 7] {
            advance(own.len(), &mut written, &mut frames, step);
            done += step;
            assert_eq!(
                laid_out(&own, written, &frames),
                all[done..].to_vec(),
                "after {done}"
            );
        }
        assert!(frames.is_empty());
        assert_eq!((written, frames.owed()), (own.len(), 0));
    }

    #[test]
    fn limits_as_redis_applies_them() {
        let limit = OutputLimit {
            hard: 100,
            soft: 10,
            soft_time: std::time::Duration::from_secs(60),
        };
        let mut q = FrameQueue::default();
        let t0 = Instant::now();
        assert_eq!(q.check_limit(5, &limit, t0), None);
        assert_eq!(
            q.check_limit(50, &limit, t0),
            None,
            "soft: the clock starts"
        );
        let t1 = t0 + std::time::Duration::from_secs(60);
        assert_eq!(
            q.check_limit(50, &limit, t1),
            None,
            "not longer than allowed yet"
        );
        let t2 = t0 + std::time::Duration::from_secs(61);
        assert_eq!(q.check_limit(50, &limit, t2), Some(LimitHit::Soft));
        assert_eq!(
            q.check_limit(5, &limit, t2),
            None,
            "below soft: the clock stops"
        );
        assert_eq!(q.check_limit(50, &limit, t2), None, "and starts again");
        assert_eq!(q.check_limit(100, &limit, t0), Some(LimitHit::Hard));
        let off = OutputLimit {
            hard: 0,
            soft: 0,
            soft_time: std::time::Duration::ZERO,
        };
        assert_eq!(q.check_limit(usize::MAX, &off, t2), None);
    }
}
