//! [`InputBuf`]: the buffer a connection's bytes are read into and parsed from, in place.
//!
//! A plain `Vec<u8>` would have to be zero-filled before every read (safe Rust cannot read
//! into uninitialised memory); [`InputBuf`] keeps its bytes initialised once and tracks
//! the filled window `start..end` instead, so a read costs no memset and consuming a
//! request is an index bump. The server reads each client's requests into one; a RESP
//! client (`muxd-bench`) reads replies split across reads into one.

/// A growable byte window: data lives in `bytes[start..end]`, free space after `end`.
///
/// Read into [`spare`](InputBuf::spare), mark what arrived with
/// [`filled`](InputBuf::filled), parse [`data`](InputBuf::data), drop what was parsed
/// with [`consume`](InputBuf::consume).
///
/// # Examples
/// ```
/// use std::io::Read;
/// use muxd::buffer::InputBuf;
///
/// let mut socket: &[u8] = b"+PONG\r\n+PO";
/// let mut input = InputBuf::with_capacity(4);
/// let n = socket.read(input.spare(16))?;
/// input.filled(n);
/// assert_eq!(input.data(), b"+PONG\r\n+PO");
/// input.consume(7);
/// assert_eq!(input.data(), b"+PO");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct InputBuf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl InputBuf {
    /// A buffer with `capacity` bytes of room.
    pub fn with_capacity(capacity: usize) -> InputBuf {
        InputBuf {
            bytes: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The bytes received and not yet consumed.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.bytes.get(self.start..self.end).unwrap_or_default()
    }

    /// Bytes of data: the length of [`data`](InputBuf::data).
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there is no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes of memory held.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Drops the first `n` bytes of data (all of it if `n` is larger). Once the data is
    /// all consumed, the window starts again at the front of the memory.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops all data; the memory is kept.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Free space after the data, at least `min` bytes: data is moved to the front, and
    /// the buffer grows only when that is not enough, to a quarter more than the data it
    /// holds (or the data and `min`, if more): a buffer never holds much more memory than
    /// data, which keeps the memory of a client sending a huge request close to what it
    /// sent (the server-wide client memory limit counts it).
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.bytes.len() - self.end < min {
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.bytes.len() - self.end < min {
                let grown = (self.end + self.end / 4).max(self.end + min);
                // Exactly: `resize` alone would at least double the allocation.
                self.bytes.reserve_exact(grown - self.bytes.len());
                self.bytes.resize(grown, 0);
            }
        }
        self.bytes.get_mut(self.end..).unwrap_or_default()
    }

    /// Marks `n` bytes of the space returned by [`spare`](InputBuf::spare) as data (at
    /// most as many as there is room for).
    #[inline]
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }

    /// Appends a copy of `data`, growing as needed.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let room = self.spare(data.len());
        if let Some(dst) = room.get_mut(..data.len()) {
            dst.copy_from_slice(data);
            self.filled(data.len());
        }
    }

    /// Gives the memory back when the buffer is empty and holds more than `limit` bytes.
    pub fn shrink_if_idle(&mut self, limit: usize) {
        if self.is_empty() && self.bytes.len() > limit {
            *self = InputBuf::default();
        }
    }

    /// Gives most of the memory back when the buffer holds more than `limit` bytes and
    /// four times its data: it keeps its data, and room for a quarter more.
    pub fn shrink_to_data(&mut self, limit: usize) {
        let len = self.len();
        if self.bytes.len() > limit && self.bytes.len() / 4 > len {
            let mut smaller = InputBuf::with_capacity((len + len / 4).max(limit));
            smaller.extend_from_slice(self.data());
            *self = smaller;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_moves_and_grows() {
        let mut b = InputBuf::with_capacity(8);
        b.spare(1)[..5].copy_from_slice(b"hello");
        b.filled(5);
        assert_eq!(b.data(), b"hello");
        b.consume(3);
        assert_eq!(b.data(), b"lo");
        // Needs 7 free bytes: data moves to the front, no growth.
        assert!(b.spare(6).len() >= 6);
        assert_eq!(b.capacity(), 8);
        assert_eq!(b.data(), b"lo");
        b.extend_from_slice(b" world, long");
        assert_eq!(b.data(), b"lo world, long");
        assert!(b.capacity() >= 14);
        b.consume(100);
        assert!(b.is_empty());
        b.shrink_if_idle(4);
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn grows_by_a_quarter_and_gives_memory_back() {
        let mut b = InputBuf::with_capacity(0);
        let mut grown = Vec::new();
        for _ in 0..100 {
            b.extend_from_slice(&[7; 1000]);
            grown.push(b.capacity());
        }
        assert_eq!(b.len(), 100_000);
        assert!(b.capacity() <= 100_000 + 100_000 / 4, "{}", b.capacity());
        assert!(
            grown
                .windows(2)
                .all(|w| w[1] == w[0] || w[1] <= w[0] + w[0] / 4 + 1000)
        );
        b.consume(99_000);
        b.shrink_to_data(4096);
        assert_eq!(b.data(), &[7; 1000][..]);
        assert_eq!(b.capacity(), 4096);
        b.shrink_to_data(4096);
        assert_eq!(b.capacity(), 4096, "small enough already");
    }
}
