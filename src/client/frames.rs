//! Shared frames in a client's output: bytes encoded once for many clients (published
//! messages), queued by reference between the client's own response bytes, and written
//! together with them in one `writev`.
//!
//! The bytes live in the loop's [`Arena`] of batches: the messages published on one
//! topic, in one encoding form, are appended to that topic's open batch, so every
//! subscriber of the topic is owed the same growing range of it. A client's output is
//! its own bytes (`output[written..]`, responses encoded for it alone) and a queue of
//! ranges of batches, each placed after a given number of those bytes: a range queued
//! when the client owed `n` own bytes goes out after them and before any own bytes
//! encoded later. A message that extends the range a client was last queued is merged
//! into it, so a subscriber sent a hundred messages in a turn is written one slice, not
//! a hundred. Queuing copies nothing and, once the queue and the batches have grown to
//! their working size, allocates nothing: a batch is counted by the ranges that
//! reference it, cleared for reuse once none does.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::time::Instant;

use crate::config::OutputLimit;
use crate::stream::Stream;

/// Slices gathered into one `writev` at most (well under the kernel's `IOV_MAX` of 1024).
const MAX_SLICES: usize = 64;
/// A batch is closed to new messages past this many bytes, so that a slow subscriber
/// keeps no more than this much alive beyond what it is owed.
const BATCH_CAP: usize = 64 * 1024;
/// Emptied batches kept for reuse.
const POOL: usize = 64;

/// Bytes shared by the clients they are sent to.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Ranges of client queues (and messages to the client being served) that refer to it.
    refs: usize,
    /// Still taking messages: some topic appends to it.
    open: bool,
}

/// The loop's batches of published messages.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    batches: slab::Slab<Batch>,
    /// Buffers of batches gone, for new ones.
    pool: Vec<Vec<u8>>,
    /// Bytes of memory the live batches hold.
    memory: usize,
}

/// A range of a batch: one message, or several sent back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameRef {
    pub(crate) batch: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl FrameRef {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

impl Arena {
    /// A new open batch.
    pub(crate) fn open(&mut self) -> usize {
        let bytes = self.pool.pop().unwrap_or_default();
        self.memory += bytes.capacity();
        self.batches.insert(Batch {
            bytes,
            refs: 0,
            open: true,
        })
    }

    /// Appends what `encode` writes to `batch`; returns its range (empty if it wrote
    /// nothing, or if there is no such batch) and whether the batch is now full (to be
    /// closed).
    pub(crate) fn append(
        &mut self,
        batch: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> (FrameRef, bool) {
        let Some(b) = self.batches.get_mut(batch) else {
            return (
                FrameRef {
                    batch,
                    start: 0,
                    end: 0,
                },
                true,
            );
        };
        let (start, capacity) = (b.bytes.len(), b.bytes.capacity());
        encode(&mut b.bytes);
        let end = b.bytes.len();
        self.memory = self.memory - capacity + b.bytes.capacity();
        (FrameRef { batch, start, end }, end >= BATCH_CAP)
    }

    /// No more messages go to `batch`; it goes once nothing refers to it.
    pub(crate) fn close(&mut self, batch: usize) {
        if let Some(b) = self.batches.get_mut(batch) {
            b.open = false;
            if b.refs == 0 {
                self.recycle(batch);
            }
        }
    }

    fn retain(&mut self, batch: usize) {
        if let Some(b) = self.batches.get_mut(batch) {
            b.refs += 1;
        }
    }

    /// A range of `batch` is no longer referred to.
    fn release(&mut self, batch: usize) {
        let Some(b) = self.batches.get_mut(batch) else {
            return;
        };
        b.refs = b.refs.saturating_sub(1);
        if b.refs > 0 {
            return;
        }
        if b.open {
            // Everyone has what it held: it starts again empty, its memory kept (unless a
            // huge message made it huge).
            b.bytes.clear();
            if b.bytes.capacity() > 2 * BATCH_CAP {
                self.memory -= b.bytes.capacity();
                b.bytes = Vec::new();
            }
        } else {
            self.recycle(batch);
        }
    }

    fn recycle(&mut self, batch: usize) {
        let Some(mut b) = self.batches.try_remove(batch) else {
            return;
        };
        self.memory -= b.bytes.capacity();
        if self.pool.len() < POOL && b.bytes.capacity() <= 2 * BATCH_CAP {
            b.bytes.clear();
            self.pool.push(b.bytes);
        }
    }

    /// Bytes of memory the live batches hold: the shared part of the clients' output
    /// (each subscriber is owed ranges of it).
    pub(crate) fn memory(&self) -> usize {
        self.memory
    }

    fn bytes(&self, r: &FrameRef) -> &[u8] {
        self.batches
            .get(r.batch)
            .and_then(|b| b.bytes.get(r.start..r.end))
            .unwrap_or_default()
    }

    /// Batches alive (for tests and introspection).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }
}

/// A range waiting in a client's output, after the first `at` bytes of its own output.
#[derive(Debug)]
struct Queued {
    at: usize,
    frame: FrameRef,
}

/// The shared bytes a client is owed, in order.
#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    queue: VecDeque<Queued>,
    /// Bytes of the first range already written.
    front_written: usize,
    /// Bytes of every queued range, the first one's written part included.
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

    /// Shared bytes not yet written.
    #[inline]
    pub(crate) fn owed(&self) -> usize {
        self.bytes - self.front_written
    }

    /// Queues `frame` after the first `at` bytes of the client's own output: merged into
    /// the last range if it continues it, else as a range of its own.
    pub(crate) fn push(&mut self, at: usize, frame: FrameRef, arena: &mut Arena) {
        if frame.len() == 0 {
            return;
        }
        self.bytes += frame.len();
        if let Some(last) = self.queue.back_mut()
            && last.at == at
            && last.frame.batch == frame.batch
            && last.frame.end == frame.start
        {
            last.frame.end = frame.end;
            return;
        }
        arena.retain(frame.batch);
        self.queue.push_back(Queued { at, frame });
    }

    /// The client's own output lost its first `by` bytes (written, then dropped).
    pub(crate) fn shift(&mut self, by: usize) {
        for queued in &mut self.queue {
            queued.at = queued.at.saturating_sub(by);
        }
    }

    /// Drops every range (the client is gone).
    pub(crate) fn release_all(&mut self, arena: &mut Arena) {
        for queued in self.queue.drain(..) {
            arena.release(queued.frame.batch);
        }
        self.bytes = 0;
        self.front_written = 0;
    }

    /// Gives back the ring's memory after a backlog (a slow reader that caught up).
    pub(crate) fn shrink_if_idle(&mut self, keep: usize) {
        if self.queue.is_empty() && self.queue.capacity() > keep {
            self.queue = VecDeque::new();
        }
    }

    /// Where each queued range sits in the own output (for tests).
    #[cfg(test)]
    pub(crate) fn places(&self) -> Vec<usize> {
        self.queue.iter().map(|q| q.at).collect()
    }

    /// Memory of its own: the ring (the bytes it is owed are the batches', shared).
    pub(crate) fn memory(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Queued>()
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
    arena: &mut Arena,
) -> io::Result<usize> {
    let mut sent = 0;
    loop {
        let k = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = gather(own, *written, frames, arena, &mut slices);
            if n == 0 {
                return Ok(sent);
            }
            match stream.write_vectored(slices.get(..n).unwrap_or_default()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        advance(own.len(), written, frames, arena, k);
        sent += k;
    }
}

/// Fills `slices` with what is owed, in order; returns how many it filled.
fn gather<'a>(
    own: &'a [u8],
    written: usize,
    frames: &FrameQueue,
    arena: &'a Arena,
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
        push(
            arena.bytes(&queued.frame).get(skip..).unwrap_or_default(),
            &mut n,
        );
    }
    push(own.get(pos..).unwrap_or_default(), &mut n);
    n
}

/// Marks `k` more bytes written, in the order [`gather`] lays them out; a range written
/// out no longer refers to its batch.
fn advance(
    own_len: usize,
    written: &mut usize,
    frames: &mut FrameQueue,
    arena: &mut Arena,
    mut k: usize,
) {
    while k > 0 {
        let Some(front) = frames.queue.front() else {
            *written = (*written + k).min(own_len);
            return;
        };
        let before = front.at.saturating_sub(*written).min(k);
        *written += before;
        k -= before;
        let len = front.frame.len();
        let rest = (len - frames.front_written).min(k);
        frames.front_written += rest;
        k -= rest;
        if frames.front_written == len {
            let batch = front.frame.batch;
            frames.queue.pop_front();
            frames.bytes -= len;
            frames.front_written = 0;
            arena.release(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid_out(own: &[u8], written: usize, frames: &FrameQueue, arena: &Arena) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = gather(own, written, frames, arena, &mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn message(arena: &mut Arena, batch: usize, text: &[u8]) -> FrameRef {
        arena.append(batch, |out| out.extend_from_slice(text)).0
    }

    #[test]
    fn ranges_interleave_with_own_bytes_and_partial_writes_resume() {
        let mut arena = Arena::default();
        let a = arena.open();
        let b = arena.open();
        let own = b"+OK\r\n:1\r\n".to_vec();
        let mut frames = FrameQueue::default();
        let m1 = message(&mut arena, a, b"<a>");
        frames.push(0, m1, &mut arena);
        let m2 = message(&mut arena, a, b"<b>");
        frames.push(5, m2, &mut arena);
        let m3 = message(&mut arena, a, b"<c>");
        frames.push(5, m3, &mut arena);
        let m4 = message(&mut arena, b, b"<d>");
        frames.push(5, m4, &mut arena);
        let empty = message(&mut arena, b, b"");
        frames.push(5, empty, &mut arena);
        assert_eq!(frames.queue.len(), 3, "<b><c> merged: one range");
        let all = b"<a>+OK\r\n<b><c><d>:1\r\n".to_vec();
        assert_eq!(laid_out(&own, 0, &frames, &arena), all);
        assert_eq!(frames.owed(), 12);
        // Write it out a few bytes at a time: what is left is always the rest.
        let mut written = 0;
        let mut done = 0;
        for step in [2, 3, 1, 4, 1, 4, 6] {
            advance(own.len(), &mut written, &mut frames, &mut arena, step);
            done += step;
            assert_eq!(
                laid_out(&own, written, &frames, &arena),
                all[done..].to_vec(),
                "after {done}"
            );
        }
        assert!(frames.is_empty());
        assert_eq!((written, frames.owed()), (own.len(), 0));
        // Nothing refers to the open batches: emptied, kept for the next messages.
        assert_eq!(arena.len(), 2);
        assert_eq!(
            message(&mut arena, a, b"x"),
            FrameRef {
                batch: a,
                start: 0,
                end: 1
            }
        );
    }

    #[test]
    fn a_closed_batch_goes_once_nothing_refers_to_it() {
        let mut arena = Arena::default();
        let a = arena.open();
        let m = message(&mut arena, a, b"hello");
        let mut one = FrameQueue::default();
        let mut two = FrameQueue::default();
        one.push(0, m, &mut arena);
        two.push(0, m, &mut arena);
        arena.close(a);
        assert_eq!(arena.len(), 1);
        one.release_all(&mut arena);
        assert_eq!(arena.len(), 1, "still owed to the other");
        let mut written = 0;
        advance(0, &mut written, &mut two, &mut arena, 5);
        assert_eq!(arena.len(), 0);
        assert_eq!(arena.pool.len(), 1, "its memory kept for the next batch");
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
