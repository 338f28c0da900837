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
        self.bytes.len()
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
    /// the buffer grows (doubling) only when that is not enough.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.bytes.len() - self.end < min {
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.bytes.len() - self.end < min {
                let grown = (self.bytes.len() * 2).max(self.end + min);
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
}
